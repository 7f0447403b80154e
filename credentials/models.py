from __future__ import annotations

from django.conf import settings
from django.db import models

from credentials import crypto
from px.client import REGION_BASE_URLS, PxClient
from teams.models import Team


class Credential(models.Model):
    """A PX REST API key and the data centre it belongs to."""

    class Region(models.TextChoices):
        US = "US", "US (api.aptrinsic.com)"
        EU = "EU", "EU (api-eu.aptrinsic.com)"
        US2 = "US2", "US2 (api-us2.aptrinsic.com)"
        SANDBOX = "SANDBOX", "Sandbox"

    class Status(models.TextChoices):
        UNTESTED = "untested", "Not tested"
        VALID = "valid", "Valid"
        INVALID = "invalid", "Invalid"

    team = models.ForeignKey(Team, models.CASCADE, related_name="credentials")
    name = models.CharField(max_length=100)
    region = models.CharField(max_length=10, choices=Region.choices)
    encrypted_key = models.TextField(editable=False)
    key_last_four = models.CharField(max_length=4, editable=False)
    # Requests per second shared by every worker that uses this credential.
    rate_limit = models.PositiveIntegerField(default=200)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.UNTESTED
    )
    status_message = models.CharField(max_length=500, blank=True)
    tested_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="credential_name")
        ]

    def __str__(self) -> str:
        return self.name

    def set_api_key(self, api_key: str) -> None:
        self.encrypted_key = crypto.encrypt(api_key)
        self.key_last_four = api_key[-4:]

    def get_api_key(self) -> str:
        return crypto.decrypt(
            self.encrypted_key,
            label=f"The API key of credential {self.pk} ({self.name!r})",
        )

    @property
    def masked_key(self) -> str:
        return "••••" + self.key_last_four

    @property
    def base_url(self) -> str:
        if self.region == self.Region.SANDBOX:
            return settings.PX_SANDBOX_URL
        return REGION_BASE_URLS[self.region]

    def client(self) -> PxClient:
        return PxClient(self.base_url, self.get_api_key())
