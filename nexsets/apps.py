from __future__ import annotations

from django.apps import AppConfig


class NexsetsConfig(AppConfig):
    name = "nexsets"
