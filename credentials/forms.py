from __future__ import annotations

from django import forms
from django.conf import settings

from credentials.models import Credential


def region_choices() -> list[tuple[str, str]]:
    choices = [
        (c.value, c.label) for c in Credential.Region if c != Credential.Region.SANDBOX
    ]
    if settings.PX_SANDBOX_URL:
        choices.append(
            (Credential.Region.SANDBOX.value, f"Sandbox ({settings.PX_SANDBOX_URL})")
        )
    return choices


class CredentialForm(forms.Form):
    name = forms.CharField(max_length=100)
    region = forms.ChoiceField(
        choices=region_choices,
        help_text="The data centre of your PX subscription; a key only works in its own.",
    )
    api_key = forms.CharField(
        label="API key",
        widget=forms.PasswordInput(render_value=False),
        strip=True,
        help_text="Administration → REST API in PX. Needs Read to be tested and Write to deliver. Stored encrypted; never shown again.",
    )
    rate_limit = forms.IntegerField(
        label="Rate limit",
        min_value=1,
        max_value=10000,
        initial=200,
        help_text="Requests per second for this key, shared by every worker. PX publishes 200.",
    )

    def __init__(
        self,
        *args: object,
        team: object = None,
        instance: Credential | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.team = team
        self.instance = instance
        if instance is not None:
            # Editing: an empty key field keeps the stored key.
            self.fields["api_key"].required = False
            self.fields["api_key"].help_text = (
                f"Leave empty to keep the stored key ({instance.masked_key}). "
                "A new key is stored encrypted and tested on save."
            )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        others = Credential.objects.filter(team=self.team, name=name)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise forms.ValidationError(
                f"A credential named {name!r} exists already: choose another name."
            )
        return name

    def clean_api_key(self) -> str:
        key = self.cleaned_data["api_key"]
        if not key and self.instance is not None:
            return key
        if len(key) < 8 or any(ch.isspace() for ch in key):
            raise forms.ValidationError(
                "This does not look like a PX API key (at least 8 characters, no spaces): copy it again from Administration → REST API."
            )
        return key
