from __future__ import annotations

from django.db import models
from django.urls import reverse

from credentials.models import Credential
from nexsets.models import Nexset, Record
from px.templates import TEMPLATES
from teams.models import Team


class Destination(models.Model):
    """A Nexset sent to Gainsight PX with one credential.

    `config` contains the settings of the chosen mode; `destinations.config`
    describes and validates its keys.
    """

    class Mode(models.TextChoices):
        TEMPLATE = "template", "Endpoint template"
        MANUAL = "manual", "Manual"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"

    team = models.ForeignKey(Team, models.CASCADE, related_name="destinations")
    name = models.CharField(max_length=200)
    nexset = models.ForeignKey(Nexset, models.CASCADE, related_name="destinations")
    credential = models.ForeignKey(
        Credential, models.PROTECT, related_name="destinations"
    )
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.TEMPLATE)
    template = models.CharField(max_length=30, blank=True)
    config = models.JSONField(default=dict)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.DRAFT
    )
    # Why the destination was paused by the system, such as a rejected API key.
    status_reason = models.CharField(max_length=500, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    # Records up to this position have been handed to a run.
    cursor = models.PositiveBigIntegerField(default=0)
    response_nexset = models.OneToOneField(
        Nexset,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="response_of",
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("destinations:detail", args=[self.pk])

    @property
    def endpoint_label(self) -> str:
        """Describe what the destination calls: a template name or the manual request."""
        if self.mode == self.Mode.TEMPLATE:
            template = TEMPLATES.get(self.template)
            return template.label if template else self.template
        return f"Manual {self.config.get('method', '')} {self.config.get('url', '')}".strip()


class Run(models.Model):
    """One pass of delivery over a range of a Nexset's records."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Completed with failures"
        FAILED = "failed", "Failed"
        PAUSED = "paused", "Paused"

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)

    class Kind(models.TextChoices):
        DELIVERY = "delivery", "Delivery"
        RETRY = "retry", "Retry of failed records"

    destination = models.ForeignKey(Destination, models.CASCADE, related_name="runs")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.DELIVERY)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.QUEUED
    )
    created = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Last time a worker reported progress; a stale heartbeat means the worker died.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    total = models.PositiveIntegerField(default=0)
    sent = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    retried = models.PositiveIntegerField(default=0)
    requests = models.PositiveIntegerField(default=0)
    throttled = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"Run {self.pk} of {self.destination_id}"

    @property
    def done(self) -> int:
        return self.succeeded + self.failed + self.skipped

    @property
    def progress_percent(self) -> int:
        if not self.total:
            return 100 if self.status not in self.ACTIVE_STATUSES else 0
        return min(100, round(100 * self.done / self.total))

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        if not self.started_at:
            return None
        end = self.finished_at or self.heartbeat_at or self.started_at
        return (end - self.started_at).total_seconds()


class RecordResult(models.Model):
    """The outcome of one record in one run."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        CLAIMED = "claimed", "Sending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped (unchanged)"

    run = models.ForeignKey(Run, models.CASCADE, related_name="results")
    record = models.ForeignKey(Record, models.CASCADE, related_name="results")
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_by = models.CharField(max_length=100, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    # The last request sent for this record (method, url, body), without the key.
    request = models.JSONField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "record_id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "record"], name="result_per_record")
        ]
        indexes = [models.Index(fields=["run", "status"], name="result_run_status")]

    def __str__(self) -> str:
        return f"{self.record_id} in run {self.run_id}: {self.status}"


class DeliveredContent(models.Model):
    """The payload last delivered for a key, to skip unchanged upserts."""

    destination = models.ForeignKey(
        Destination, models.CASCADE, related_name="delivered"
    )
    key = models.CharField(max_length=500)
    digest = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["destination", "key"], name="delivered_key")
        ]


class Exchange(models.Model):
    """One request and its response, kept for the destination's history."""

    class Kind(models.TextChoices):
        TEST = "test", "Send Test Data"
        DELIVERY = "delivery", "Delivery"

    destination = models.ForeignKey(
        Destination, models.CASCADE, related_name="exchanges"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    created = models.DateTimeField(auto_now_add=True)
    method = models.CharField(max_length=10)
    url = models.TextField()
    # Request headers with the API key masked.
    request_headers = models.JSONField(default=dict)
    request_body = models.TextField(blank=True)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict)
    response_body = models.TextField(blank=True)
    elapsed_ms = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created"]


class AuditEntry(models.Model):
    """A configuration change: who, when, and the values before and after."""

    team = models.ForeignKey(Team, models.CASCADE, related_name="audit_entries")
    destination = models.ForeignKey(
        Destination, models.CASCADE, null=True, blank=True, related_name="audit"
    )
    actor = models.CharField(max_length=150)
    action = models.CharField(max_length=50)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]
