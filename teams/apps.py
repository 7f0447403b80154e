from __future__ import annotations

from django.apps import AppConfig


class TeamsConfig(AppConfig):
    name = "teams"

    def ready(self) -> None:
        from django.contrib import admin

        from teams.forms import ThrottledAdminAuthenticationForm

        # The admin has its own login view; throttle it like the main one.
        admin.site.login_form = ThrottledAdminAuthenticationForm
