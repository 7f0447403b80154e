"""Default subscription and custom attribute definitions of a fresh sandbox."""

from __future__ import annotations

import uuid
from typing import Any

from .config import ConfigError

DEFAULT_PRODUCT_KEY = "AP-SANDBOX-2"

ATTRIBUTE_TYPES = ("STRING", "DATE_TIME", "BOOLEAN", "NUMBER")
ATTRIBUTE_STATES = ("ENABLED", "DISABLED", "DELETED")
ATTRIBUTE_ORIGINS = ("CUSTOM", "DEFAULT")

# 2024-01-01T00:00:00Z in epoch milliseconds, so default definitions never change.
_DEFINITIONS_CREATED_MS = 1_704_067_200_000

_ATTRIBUTE_ID_NAMESPACE = uuid.UUID("5b0f4d52-8a41-4f55-9f0e-3f1f2a6c9d10")

_DEFAULT_USER_ATTRIBUTES = (
    ("plan", "Plan", "STRING", "Billing plan of the user's seat"),
    ("trialEnds", "Trial Ends", "DATE_TIME", "End of the trial, epoch milliseconds"),
    ("seats", "Seats", "NUMBER", "Number of seats the user manages"),
    ("beta", "Beta", "BOOLEAN", "Whether the user joined the beta programme"),
)

_DEFAULT_ACCOUNT_ATTRIBUTES = (
    ("arr", "ARR", "NUMBER", "Annual recurring revenue in USD"),
    ("tier", "Tier", "STRING", "Support tier of the account"),
    ("renewal", "Renewal", "DATE_TIME", "Next renewal date, epoch milliseconds"),
    ("churnRisk", "Churn Risk", "BOOLEAN", "Whether the account is flagged at risk"),
)


def default_subscription() -> dict[str, Any]:
    """Return the subscription object of GET /v1/admin/subscription."""
    return {
        "id": "sandbox-subscription",
        "name": "PX Sandbox",
        "iconUrl": "",
        "timeZone": "UTC",
        "website": "https://app.example.com",
        "description": "Local stand-in for a Gainsight PX subscription",
        "products": [
            {
                "name": "Sandbox Web App",
                "description": "Default product of the sandbox",
                "productKeys": [
                    {
                        "channel": "WEB",
                        "productKey": DEFAULT_PRODUCT_KEY,
                        "url": "https://app.example.com",
                    }
                ],
            }
        ],
    }


def default_attributes(model: str) -> list[dict[str, Any]]:
    """Return the default custom attribute definitions for "user" or "account"."""
    rows = _DEFAULT_USER_ATTRIBUTES if model == "user" else _DEFAULT_ACCOUNT_ATTRIBUTES
    definitions = [
        {"apiName": api_name, "name": name, "type": type_, "description": text}
        for api_name, name, type_, text in rows
    ]
    return normalize_attributes(model, definitions, now_ms=_DEFINITIONS_CREATED_MS)


def normalize_attributes(
    model: str, definitions: Any, *, now_ms: int
) -> list[dict[str, Any]]:
    """Validate attribute definitions and fill in the fields a caller left out.

    Each definition needs ``apiName`` and ``type``. Missing ``id``, ``name``,
    ``internalName``, dates, ``state`` (ENABLED) and ``origin`` (CUSTOM) get
    defaults. Raises ConfigError naming the bad definition.
    """
    setting = f"{model}_attributes"
    if not isinstance(definitions, list):
        raise ConfigError(f"{setting} must be a list of attribute definitions")

    normalized = []
    seen: set[str] = set()
    for index, definition in enumerate(definitions):
        where = f"{setting}[{index}]"
        if not isinstance(definition, dict):
            raise ConfigError(f"{where} must be an object")

        api_name = definition.get("apiName")
        if not isinstance(api_name, str) or not api_name:
            raise ConfigError(f"{where}.apiName must be a non-empty string")
        if api_name in seen:
            raise ConfigError(f"{where}.apiName {api_name!r} is defined twice")
        seen.add(api_name)

        for field, allowed, default in (
            ("type", ATTRIBUTE_TYPES, None),
            ("state", ATTRIBUTE_STATES, "ENABLED"),
            ("origin", ATTRIBUTE_ORIGINS, "CUSTOM"),
        ):
            if definition.get(field, default) not in allowed:
                raise ConfigError(f"{where}.{field} must be one of {list(allowed)}")

        attribute_id = uuid.uuid5(_ATTRIBUTE_ID_NAMESPACE, f"{model}:{api_name}")
        normalized.append(
            {
                "id": definition.get("id", str(attribute_id)),
                "name": definition.get("name", api_name),
                "apiName": api_name,
                "internalName": definition.get("internalName", f"custom_{api_name}"),
                "description": definition.get("description", ""),
                "type": definition["type"],
                "state": definition.get("state", "ENABLED"),
                "origin": definition.get("origin", "CUSTOM"),
                "createdDate": definition.get("createdDate", now_ms),
                "modifiedDate": definition.get("modifiedDate", now_ms),
                "defaultValue": definition.get("defaultValue"),
            }
        )
    return normalized
