from __future__ import annotations

import hashlib
import secrets

from django.db import models
from django.urls import reverse

from teams.models import Team


class Nexset(models.Model):
    """A set of records with a schema inferred from them."""

    class Source(models.TextChoices):
        UPLOAD = "upload", "File upload"
        WEBHOOK = "webhook", "Webhook"
        RESPONSES = "responses", "Destination responses"

    team = models.ForeignKey(Team, models.CASCADE, related_name="nexsets")
    name = models.CharField(max_length=200)
    source = models.CharField(
        max_length=10, choices=Source.choices, default=Source.UPLOAD
    )
    # A list of {"name": ..., "type": ...} in first-seen order.
    schema = models.JSONField(default=list)
    record_count = models.PositiveBigIntegerField(default=0)
    # SHA-256 of the webhook token; the token itself is shown once.
    webhook_token_hash = models.CharField(max_length=64, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("nexsets:detail", args=[self.pk])

    @property
    def attribute_names(self) -> list[str]:
        return [attribute["name"] for attribute in self.schema]

    def new_webhook_token(self) -> str:
        token = secrets.token_urlsafe(32)
        self.webhook_token_hash = hashlib.sha256(token.encode()).hexdigest()
        return token

    def check_webhook_token(self, token: str) -> bool:
        if not self.webhook_token_hash or not token:
            return False
        digest = hashlib.sha256(token.encode()).hexdigest()
        return secrets.compare_digest(digest, self.webhook_token_hash)


class Record(models.Model):
    nexset = models.ForeignKey(Nexset, models.CASCADE, related_name="records")
    # Arrival order within the Nexset, starting at 1 and never reused.
    position = models.PositiveBigIntegerField()
    data = models.JSONField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["nexset", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["nexset", "position"], name="record_position"
            )
        ]

    def __str__(self) -> str:
        return f"{self.nexset_id}#{self.position}"
