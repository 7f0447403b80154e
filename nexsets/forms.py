from __future__ import annotations

from django import forms


class UploadForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="Defaults to the file name.", required=False)
    file = forms.FileField(help_text="CSV (comma, semicolon, tab or pipe), JSON or NDJSON, UTF-8.")


class AppendForm(forms.Form):
    file = forms.FileField(help_text="Records are added after the existing ones.")
