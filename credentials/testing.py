"""The "test credential" call."""

from __future__ import annotations

import logging

from django.utils import timezone

from credentials.crypto import DecryptionError
from credentials.models import Credential
from px.client import PxTransportError

logger = logging.getLogger(__name__)


def test_credential(credential: Credential) -> Credential:
    """Call GET /v1/admin/subscription with the key and store the verdict."""
    try:
        client = credential.client()
    except DecryptionError as exc:
        return _store(credential, Credential.Status.INVALID, str(exc))
    try:
        response = client.get_subscription()
    except PxTransportError as exc:
        status, message = Credential.Status.INVALID, f"PX could not be reached: {exc}"
    else:
        if response.ok:
            body = response.json() or {}
            name = body.get("name") if isinstance(body, dict) else None
            status = Credential.Status.VALID
            message = f"Valid: subscription {name!r}." if name else "Valid."
        elif response.status in (401, 403):
            status = Credential.Status.INVALID
            message = f"Invalid: PX rejected the key ({response.error_message()}). Check the key and its region."
        else:
            status = Credential.Status.INVALID
            message = f"Invalid: PX answered {response.error_message()}"
    finally:
        client.close()
    return _store(credential, status, message)


def _store(credential: Credential, status: str, message: str) -> Credential:
    credential.status = status
    credential.status_message = message[:500]
    credential.tested_at = timezone.now()
    credential.save(update_fields=["status", "status_message", "tested_at"])
    logger.info("Credential %s tested: %s", credential.pk, status)
    return credential
