from __future__ import annotations

from django.apps import AppConfig


class DestinationsConfig(AppConfig):
    name = "destinations"
