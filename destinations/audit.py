"""The audit log of configuration changes."""

from __future__ import annotations

import copy
from typing import Any

from django.http import HttpRequest

from destinations.models import AuditEntry, Destination


def _masked(snapshot: dict[str, Any] | None) -> dict[str, Any] | None:
    """Return a copy without secret values; headers may carry tokens."""
    if snapshot is None:
        return None
    masked = copy.deepcopy(snapshot)
    config = masked.get("config") or {}
    if config.get("headers"):
        pairs = []
        for pair in str(config["headers"]).split(","):
            name, _, value = pair.partition(":")
            pairs.append(
                f"{name.strip()}:{'••••' + value.strip()[-4:] if len(value.strip()) > 8 else '••••'}"
            )
        config["headers"] = ",".join(pairs)
    return masked


def snapshot(destination: Destination) -> dict[str, Any]:
    return {
        "name": destination.name,
        "mode": destination.mode,
        "template": destination.template,
        "credential": destination.credential.name,
        "config": destination.config,
        "status": destination.status,
    }


def record_change(
    request: HttpRequest,
    destination: Destination,
    action: str,
    before: dict[str, Any] | None,
    after: Destination | None,
) -> AuditEntry:
    return AuditEntry.objects.create(
        team_id=destination.team_id,
        destination=destination,
        actor=getattr(request.user, "username", "") or "system",
        action=action,
        before=_masked(before),
        after=_masked(snapshot(after)) if after is not None else None,
    )
