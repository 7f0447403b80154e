"""Catalogue of the Gainsight PX fields that a mapping can write.

The lists follow the User, Account, Location and CustomEvent definitions of the
Gainsight PX REST API (Swagger contract version 0.1.6). Read-only fields and tracking
data (for example ``lastSeenDate`` on users, ``channelMetricList``) are left out.

Nested fields use dotted paths (``location.coordinates.latitude``). Custom attributes
are not listed: any path that starts with the object's custom prefix
(``customAttributes.<apiName>`` for users and accounts, ``attributes.<name>`` for
events) is a valid target.
"""

from __future__ import annotations

from dataclasses import dataclass

FIELD_TYPES = (
    "string",
    "epoch_ms",
    "integer",
    "number",
    "boolean",
    "string_list",
    "enum",
)
OBJECT_TYPES = ("user", "account", "event")

USER_TYPES = ("LEAD", "USER", "VISITOR", "EMPTY_USER_TYPE")
GENDERS = ("MALE", "FEMALE", "OTHER", "EMPTY_GENDER")

INT32_RANGE = (-(2**31), 2**31 - 1)
INT64_RANGE = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class Field:
    """PX field that a mapping can target.

    ``required`` mirrors the PX contract: PX rejects a request without the field.
    Some required fields are filled without a mapping (see ``PRODUCT_KEY_FIELDS``
    and ``DEFAULT_VALUES``).
    """

    path: str
    type: str
    label: str
    required: bool = False
    choices: tuple[str, ...] = ()


LOCATION_FIELDS = [
    Field("location.countryName", "string", "Country name"),
    Field("location.countryCode", "string", "Country code (ISO 3166)"),
    Field("location.stateName", "string", "State name"),
    Field("location.stateCode", "string", "State code (ISO 3166)"),
    Field("location.city", "string", "City"),
    Field("location.street", "string", "Street"),
    Field("location.postalCode", "string", "Postal code"),
    Field("location.continent", "string", "Continent code"),
    Field("location.regionName", "string", "Region name (ISO 3166-2)"),
    Field("location.timeZone", "string", "Time zone"),
    Field("location.coordinates.latitude", "number", "Latitude"),
    Field("location.coordinates.longitude", "number", "Longitude"),
]

USER_FIELDS = [
    Field("identifyId", "string", "Identify ID", required=True),
    Field("propertyKeys", "string_list", "Product keys", required=True),
    Field("type", "enum", "User type", choices=USER_TYPES),
    Field("gender", "enum", "Gender", choices=GENDERS),
    Field("email", "string", "Email"),
    Field("firstName", "string", "First name"),
    Field("lastName", "string", "Last name"),
    Field("title", "string", "Job title"),
    Field("phone", "string", "Phone"),
    Field("role", "string", "Role"),
    Field("subscriptionId", "string", "Subscription ID"),
    Field("accountId", "string", "Account ID"),
    Field("sfdcContactId", "string", "Salesforce contact ID"),
    Field("signUpDate", "epoch_ms", "Sign-up date"),
    Field("firstVisitDate", "epoch_ms", "First visit date"),
    Field("score", "integer", "Score"),
    Field("globalUnsubscribe", "boolean", "Unsubscribed from all email"),
    *LOCATION_FIELDS,
]

ACCOUNT_FIELDS = [
    Field("id", "string", "Account ID", required=True),
    Field("name", "string", "Account name", required=True),
    Field("propertyKeys", "string_list", "Product keys", required=True),
    Field("trackedSubscriptionId", "string", "Tracked subscription ID"),
    Field("sfdcId", "string", "Salesforce account ID"),
    Field("dunsNumber", "string", "D-U-N-S number"),
    Field("industry", "string", "Industry"),
    Field("sicCode", "string", "SIC code"),
    Field("website", "string", "Website"),
    Field("naicsCode", "string", "NAICS code"),
    Field("plan", "string", "Plan"),
    Field("gsId", "string", "Gainsight CS ID"),
    Field("csm", "string", "Customer success manager"),
    Field("numberOfEmployees", "integer", "Number of employees"),
    Field("healthScore", "integer", "Health score"),
    Field("nps", "number", "NPS"),
    Field("lastSeenDate", "epoch_ms", "Last seen date"),
    Field("renewalDate", "epoch_ms", "Renewal date"),
    Field("parentGroupId", "string", "Parent account ID"),
    *LOCATION_FIELDS,
]

EVENT_FIELDS = [
    Field("identifyId", "string", "Identify ID", required=True),
    Field("eventName", "string", "Event name", required=True),
    Field("propertyKey", "string", "Product key", required=True),
    Field("userType", "enum", "User type", required=True, choices=USER_TYPES),
    Field("date", "epoch_ms", "Event date"),
    Field("accountId", "string", "Account ID"),
]

FIELDS: dict[str, list[Field]] = {
    "user": USER_FIELDS,
    "account": ACCOUNT_FIELDS,
    "event": EVENT_FIELDS,
}

# Prefix of the targets that write custom attributes (users, accounts) or event
# properties (events). The rest of the path is the apiName or property name, taken
# whole even if it contains dots.
CUSTOM_PREFIXES: dict[str, str] = {
    "user": "customAttributes.",
    "account": "customAttributes.",
    "event": "attributes.",
}

# Fields filled from the destination's product key. A mapping cannot target them.
PRODUCT_KEY_FIELDS: dict[str, str] = {
    "user": "propertyKeys",
    "account": "propertyKeys",
    "event": "propertyKey",
}

# Values sent when a field is unmapped or its mapped value is empty. PX requires
# userType on every event, and "USER" is the type of an identified user.
DEFAULT_VALUES: dict[str, dict[str, object]] = {
    "event": {"userType": "USER"},
}

# Integer fields and the range of the PX type behind them. PX declares
# numberOfEmployees and healthScore as int32 and score as int64.
INTEGER_RANGES: dict[str, tuple[int, int]] = {
    "numberOfEmployees": INT32_RANGE,
    "healthScore": INT32_RANGE,
    "score": INT64_RANGE,
}

_FIELDS_BY_PATH = {
    object_type: {field.path: field for field in fields}
    for object_type, fields in FIELDS.items()
}


def get_field(object_type: str, path: str) -> Field | None:
    """Return the catalogue field at ``path``, or None for custom or unknown paths."""
    return _FIELDS_BY_PATH[object_type].get(path)


def custom_name(object_type: str, path: str) -> str | None:
    """Return the custom attribute or property name in ``path``, if it has one.

    Returns None when ``path`` does not start with the object's custom prefix, and
    an empty string for the bare prefix.
    """
    prefix = CUSTOM_PREFIXES[object_type]
    if not path.startswith(prefix):
        return None
    return path[len(prefix) :]


def mappable_fields(object_type: str) -> list[Field]:
    """Return the fields a mapping may target, in catalogue order."""
    product_key_path = PRODUCT_KEY_FIELDS[object_type]
    return [field for field in FIELDS[object_type] if field.path != product_key_path]


def fields_needing_mapping(object_type: str) -> list[Field]:
    """Return the required fields that only a mapping can fill."""
    defaults = DEFAULT_VALUES.get(object_type, {})
    return [
        field
        for field in mappable_fields(object_type)
        if field.required and field.path not in defaults
    ]
