"""Turning a destination's settings and records into the exact requests to send.

The sample panel, Send Test Data and the workers all build requests here, so
what the panel shows is byte for byte what a worker sends.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from destinations import manual
from destinations.manual import ManualConfigError
from px import payloads
from px.client import encode_json
from px.flows import FLOWS
from px.templates import TEMPLATES

Item = tuple[Hashable, dict[str, Any]]


@dataclass
class PlannedRequest:
    """One HTTP request (or, for templates, the first request of a flow)."""

    method: str
    url: str
    body: bytes
    content_type: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    # The records this request carries, as (key, record sent) pairs.
    items: list[Item] = field(default_factory=list)
    # Template requests run through px.flows; manual ones are sent once.
    template: str | None = None
    # Identity and digest of the content, to skip unchanged upserts.
    object_key: str | None = None

    @property
    def keys(self) -> list[Hashable]:
        return [key for key, _ in self.items]

    @property
    def digest(self) -> str:
        return hashlib.sha256(
            self.method.encode() + self.url.encode() + self.body
        ).hexdigest()


@dataclass
class Rejection:
    key: Hashable
    reason: str


def allowed_hosts(base_url: str) -> tuple[list[str], list[str]]:
    """Return the https hosts and http host:ports a manual URL may target.

    Only the credential's own host: a key belongs to one data centre, and a
    sandbox key must not reach PX (nor a PX key the sandbox).
    """
    parts = urlsplit(base_url)
    sandbox = urlsplit(settings.PX_SANDBOX_URL) if settings.PX_SANDBOX_URL else None
    is_px_host = parts.scheme == "https" and parts.netloc in manual.PX_API_HOSTS
    is_sandbox = sandbox is not None and (parts.scheme, parts.netloc) == (sandbox.scheme, sandbox.netloc)
    if is_px_host or (is_sandbox and parts.scheme == "https"):
        return [parts.netloc], []
    if is_sandbox:
        return [], [parts.netloc]
    return [], []


class DeliveryPlan:
    """The request-building settings of one destination, validated once."""

    def __init__(self, mode: str, template: str, config: dict[str, Any], base_url: str):
        self.mode = mode
        self.template = template
        self.config = config
        self.base_url = base_url.rstrip("/")
        if mode == "template":
            self._init_template()
        else:
            self._init_manual()

    @classmethod
    def for_destination(cls, destination: Any) -> DeliveryPlan:
        return cls(
            destination.mode,
            destination.template,
            destination.config,
            destination.credential.base_url,
        )

    def _init_template(self) -> None:
        if self.template not in TEMPLATES:
            raise ManualConfigError(
                f"Unknown endpoint template {self.template!r}: pick one of the five templates"
            )
        errors = payloads.validate_mapping(
            self.template, self.config.get("mapping", {})
        )
        if errors:
            raise ManualConfigError("; ".join(errors))
        self.options = payloads.BuildOptions(
            product_key=self.config.get("product_key", ""),
            timezone=self.config.get("timezone") or "UTC",
            send_nulls=bool(self.config.get("send_nulls", False)),
        )
        self.flow = FLOWS[self.template]
        self.batching = False

    def _init_manual(self) -> None:
        config = self.config
        self.method = config.get("method", "POST")
        if self.method not in ("POST", "PUT"):
            raise ManualConfigError(
                f"Method {self.method!r} is not supported: use POST or PUT"
            )
        self.content_format = config.get("content_format", "json")
        if self.content_format not in manual.CONTENT_FORMATS:
            raise ManualConfigError(
                f"Content format {self.content_format!r} is unknown: pick one from the list"
            )
        https_hosts, http_hosts = allowed_hosts(self.base_url)
        self.url_template = manual.resolve_url(
            config.get("url", ""),
            self.base_url,
            allowed_hosts=https_hosts,
            allow_http_hosts=http_hosts,
        )
        self.headers = manual.parse_headers(config.get("headers", ""))
        self.excluded = list(config.get("excluded", []))
        batching = config.get("batching") or {}
        self.batching = bool(batching.get("enabled"))
        self.algorithm = batching.get("algorithm", "fixed")
        self.batch_size = int(batching.get("batch_size") or 100)
        self.group_attribute = batching.get("group_attribute") or None
        self.max_bytes = batching.get("max_bytes") or None
        if self.max_bytes is not None:
            self.max_bytes = int(self.max_bytes)

    @property
    def skip_unchanged(self) -> bool:
        """Whether records whose payload was already delivered are skipped.

        Only upserts and updates qualify: sending the same custom event twice
        records it twice in PX.
        """
        return (
            self.mode == "template"
            and self.template != "track_event"
            and bool(self.config.get("skip_unchanged", True))
        )

    def plan(
        self, items: Sequence[Item]
    ) -> tuple[list[PlannedRequest], list[Rejection]]:
        if self.mode == "template":
            return self._plan_template(items)
        return self._plan_manual(items)

    def _plan_template(
        self, items: Sequence[Item]
    ) -> tuple[list[PlannedRequest], list[Rejection]]:
        planned: list[PlannedRequest] = []
        rejected: list[Rejection] = []
        template = TEMPLATES[self.template]
        for key, record in items:
            try:
                payload = payloads.build_payload(
                    self.template,
                    record,
                    self.config.get("mapping", {}),
                    self.options,
                    self.config.get("custom_types") or None,
                )
            except payloads.RecordError as exc:
                rejected.append(Rejection(key, str(exc)))
                continue
            object_key = payload.get(template.key_field)
            planned.append(
                PlannedRequest(
                    method=self.flow.update.method,
                    url=self.base_url + self.flow.update.path,
                    body=encode_json(payload),
                    content_type="application/json",
                    items=[(key, payload)],
                    template=self.template,
                    object_key=None if object_key is None else str(object_key),
                )
            )
        return planned, rejected

    def _plan_manual(
        self, items: Sequence[Item]
    ) -> tuple[list[PlannedRequest], list[Rejection]]:
        # URL macros read the record as stored, so an attribute can name the
        # target in the URL and still be excluded from the body.
        self._originals = dict(items)
        prepared = [
            (key, manual.exclude_attributes(record, self.excluded))
            for key, record in items
        ]
        if not self.batching:
            planned: list[PlannedRequest] = []
            rejected: list[Rejection] = []
            for key, record in prepared:
                try:
                    planned.append(self.request_for([(key, record)], batch=False))
                except manual.RecordError as exc:
                    rejected.append(Rejection(key, str(exc)))
            return planned, rejected
        return self._plan_batches(prepared)

    def _encode_batch(self, records: list[dict[str, Any]]) -> bytes:
        return manual.encode_body(records, self.content_format)[0]

    def _plan_batches(
        self, prepared: Sequence[Item]
    ) -> tuple[list[PlannedRequest], list[Rejection]]:
        planned = []
        rejected = []
        sent = dict(prepared)
        grouped = prepared
        if self.algorithm == "attribute":
            # Group on the stored records, so that an attribute excluded from
            # the body (one a URL macro uses, say) still keeps batches apart.
            grouped = [(key, self._originals[key]) for key, _ in prepared]
        groups = manual.group_records(
            grouped,
            algorithm=self.algorithm,
            batch_size=self.batch_size,
            group_attribute=self.group_attribute,
            max_bytes=self.max_bytes,
            encode=self._encode_batch,
        )
        for group in groups:
            batch = [(key, sent[key]) for key, _ in group]
            too_big = (
                self.algorithm == "max_bytes"
                and self.max_bytes
                and len(batch) == 1
                and manual.oversize(batch, self.max_bytes, encode=self._encode_batch)
            )
            if too_big:
                rejected.append(
                    Rejection(
                        batch[0][0],
                        f"the record alone is larger than the maximum request size of {self.max_bytes} bytes; raise the maximum or exclude attributes",
                    )
                )
                continue
            try:
                planned.append(self.request_for(batch, batch=True))
            except manual.RecordError as exc:
                rejected.extend(Rejection(key, str(exc)) for key, _ in batch)
        return planned, rejected

    def request_for(self, items: Sequence[Item], *, batch: bool) -> PlannedRequest:
        """Build the manual request for one record or one batch.

        URL macros of a batch take their values from its first record; group
        by the macro's attribute so that every record of a batch shares them.
        """
        records = [record for _, record in items]
        first_key = items[0][0]
        originals = getattr(self, "_originals", {})
        url = manual.render_url(self.url_template, originals.get(first_key, records[0]))
        body, content_type = manual.encode_body(
            records if batch else records[0], self.content_format
        )
        return PlannedRequest(
            method=self.method,
            url=url,
            body=body,
            content_type=content_type,
            headers=list(self.headers),
            items=list(items),
        )
