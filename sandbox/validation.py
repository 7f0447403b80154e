"""Validate PX request bodies for users, accounts and custom events.

Each validator returns the fields to store and a list of ``subErrors`` entries.
An empty list means the body is valid. The entry shape (object, field,
rejectedValue, message) follows Spring's validation errors. PX clients are only
known to read ``message``, so the other keys are a model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

SubError = dict[str, Any]
# A problem found inside one value: (field path, rejected value, message).
Problem = tuple[str, Any, str]
Check = Callable[[str, Any], list[Problem]]

INT32_RANGE = (-(2**31), 2**31 - 1)
INT64_RANGE = (-(2**63), 2**63 - 1)

USER_TYPES = ("LEAD", "USER", "VISITOR", "EMPTY_USER_TYPE")
GENDERS = ("MALE", "FEMALE", "OTHER", "EMPTY_GENDER")

# Limits on custom events that Gainsight documents for its SDKs.
MAX_EVENT_NAME_LENGTH = 2000
MAX_EVENT_ATTRIBUTES = 50
MAX_EVENT_ATTRIBUTE_NAME_LENGTH = 1024


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


def check_string(field: str, value: Any) -> list[Problem]:
    """Require a JSON string."""
    if isinstance(value, str):
        return []
    return [(field, value, "must be a string")]


def check_id(field: str, value: Any) -> list[Problem]:
    """Require a non-blank string, the only form of id that PX stores."""
    if not isinstance(value, str):
        return [(field, value, "must be a string")]
    if not value.strip():
        return [(field, value, "must not be blank")]
    return []


def _integer_check(bounds: tuple[int, int], label: str) -> Check:
    def check(field: str, value: Any) -> list[Problem]:
        if not _is_integer(value):
            return [(field, value, f"must be an integer ({label})")]
        if not bounds[0] <= value <= bounds[1]:
            return [(field, value, f"is out of range for {label}")]
        return []

    return check


check_int32 = _integer_check(INT32_RANGE, "int32")
check_int64 = _integer_check(INT64_RANGE, "int64")
check_epoch_ms = _integer_check(INT64_RANGE, "epoch milliseconds")


def check_number(field: str, value: Any) -> list[Problem]:
    """Require a finite JSON number."""
    if _is_number(value):
        return []
    return [(field, value, "must be a number")]


def check_boolean(field: str, value: Any) -> list[Problem]:
    """Require a JSON boolean."""
    if isinstance(value, bool):
        return []
    return [(field, value, "must be a boolean")]


def check_object(field: str, value: Any) -> list[Problem]:
    """Require a JSON object."""
    if isinstance(value, dict):
        return []
    return [(field, value, "must be a JSON object")]


def check_property_keys(field: str, value: Any) -> list[Problem]:
    """Require a non-empty list of product keys."""
    if not isinstance(value, list):
        return [(field, value, "must be a list of product key strings")]
    if not value:
        return [(field, value, "must contain at least one product key")]
    if not all(isinstance(key, str) and key for key in value):
        return [(field, value, "must contain only non-empty strings")]
    return []


def enum_check(allowed: Iterable[str]) -> Check:
    """Build a check that accepts only the given strings."""
    choices = tuple(allowed)

    def check(field: str, value: Any) -> list[Problem]:
        if value in choices:
            return []
        return [(field, value, f"must be one of {', '.join(choices)}")]

    return check


def _object_check(fields: dict[str, Check]) -> Check:
    def check(field: str, value: Any) -> list[Problem]:
        if not isinstance(value, dict):
            return [(field, value, "must be a JSON object")]
        problems: list[Problem] = []
        for name, item in value.items():
            item_check = fields.get(name)
            if item_check is not None and item is not None:
                problems.extend(item_check(f"{field}.{name}", item))
        return problems

    return check


check_location = _object_check(
    {
        "countryName": check_string,
        "countryCode": check_string,
        "stateName": check_string,
        "stateCode": check_string,
        "city": check_string,
        "street": check_string,
        "postalCode": check_string,
        "continent": check_string,
        "regionName": check_string,
        "timeZone": check_string,
        "coordinates": _object_check(
            {"latitude": check_number, "longitude": check_number}
        ),
    }
)

_STRING_FIELDS_USER = (
    "email",
    "firstName",
    "lastName",
    "title",
    "phone",
    "role",
    "subscriptionId",
    "accountId",
    "sfdcContactId",
)

USER_FIELDS: dict[str, Check] = {
    "identifyId": check_id,
    "propertyKeys": check_property_keys,
    "type": enum_check(USER_TYPES),
    "gender": enum_check(GENDERS),
    **dict.fromkeys(_STRING_FIELDS_USER, check_string),
    "signUpDate": check_epoch_ms,
    "firstVisitDate": check_epoch_ms,
    "score": check_int64,
    "globalUnsubscribe": check_boolean,
    "location": check_location,
}

# Fields the contract marks read-only. The sandbox ignores them on writes.
USER_READ_ONLY = frozenset(
    {
        "aptrinsicId",
        "id",
        "lastSeenDate",
        "numberOfVisits",
        "createDate",
        "lastModifiedDate",
        "lastInferredLocation",
        "globalId",
        "channelMetricList",
        "lastVisitedUserAgentData",
    }
)

_STRING_FIELDS_ACCOUNT = (
    "trackedSubscriptionId",
    "sfdcId",
    "dunsNumber",
    "industry",
    "sicCode",
    "website",
    "naicsCode",
    "plan",
    "gsId",
    "csm",
    "parentGroupId",
)

ACCOUNT_FIELDS: dict[str, Check] = {
    "id": check_id,
    "name": check_string,
    "propertyKeys": check_property_keys,
    **dict.fromkeys(_STRING_FIELDS_ACCOUNT, check_string),
    "numberOfEmployees": check_int32,
    "healthScore": check_int32,
    "nps": check_number,
    "lastSeenDate": check_epoch_ms,
    "renewalDate": check_epoch_ms,
    "location": check_location,
}

ACCOUNT_READ_ONLY = frozenset({"numberOfUsers", "createDate", "lastModifiedDate"})

_STRING_FIELDS_EVENT = (
    "eventId",
    "eventType",
    "sessionId",
    "accountId",
    "url",
    "referrer",
    "remoteHost",
)

EVENT_FIELDS: dict[str, Check] = {
    "identifyId": check_id,
    "eventName": check_id,
    "propertyKey": check_id,
    "userType": enum_check(USER_TYPES),
    "date": check_epoch_ms,
    "attributes": check_object,
    "globalContext": check_object,
    **dict.fromkeys(_STRING_FIELDS_EVENT, check_string),
}

EVENT_REQUIRED = ("identifyId", "eventName", "propertyKey", "userType")


def sub_error(object_name: str, problem: Problem) -> SubError:
    """Convert a problem into one ``subErrors`` entry."""
    field, rejected, message = problem
    return {
        "object": object_name,
        "field": field,
        "rejectedValue": rejected,
        "message": f"{field} {message}",
    }


def _convert_custom_value(kind: str, value: Any) -> tuple[Any, str | None]:
    """Return the stored form of a custom attribute value and an error message."""
    if kind == "STRING":
        if isinstance(value, str):
            return value, None
        return value, "must be a string (STRING)"
    if kind == "NUMBER":
        if _is_number(value):
            return value, None
        return value, "must be a number (NUMBER)"
    if kind == "DATE_TIME":
        if _is_integer(value) and INT64_RANGE[0] <= value <= INT64_RANGE[1]:
            return value, None
        return value, "must be an integer of epoch milliseconds (DATE_TIME)"
    if isinstance(value, bool):
        return value, None
    # Gainsight's own data loader sends BOOLEAN values as these two strings.
    if value in ("true", "false"):
        return value == "true", None
    return value, 'must be true, false, "true" or "false" (BOOLEAN)'


def validate_custom_attributes(
    value: Any,
    definitions: list[dict[str, Any]],
    *,
    reject_unknown: bool,
) -> tuple[dict[str, Any], list[Problem]]:
    """Check ``customAttributes`` against the enabled custom definitions.

    Returns the values to store, with null values left out, and the problems.
    NOTE: PX's handling of unknown, disabled or wrongly typed attributes is not
    documented. The sandbox rejects them with 400, or stores unknown keys
    unchecked when ``reject_unknown`` is off.
    """
    if not isinstance(value, dict):
        return {}, [("customAttributes", value, "must be a JSON object")]

    kinds = {
        definition["apiName"]: definition["type"]
        for definition in definitions
        if definition["origin"] == "CUSTOM" and definition["state"] == "ENABLED"
    }
    stored: dict[str, Any] = {}
    problems: list[Problem] = []
    for name, item in value.items():
        field = f"customAttributes.{name}"
        if item is None:
            continue
        kind = kinds.get(name)
        if kind is None:
            if reject_unknown:
                problems.append((field, item, "is not an enabled custom attribute"))
            else:
                stored[name] = item
            continue
        converted, message = _convert_custom_value(kind, item)
        if message is None:
            stored[name] = converted
        else:
            problems.append((field, item, message))
    return stored, problems


def _validate_record(
    body: dict[str, Any],
    *,
    object_name: str,
    fields: dict[str, Check],
    read_only: frozenset[str],
    required: Iterable[str],
    definitions: list[dict[str, Any]] | None = None,
    reject_unknown: bool = True,
) -> tuple[dict[str, Any], list[SubError]]:
    """Check a body field by field and collect the storable fields.

    Null values and unknown fields are left out of the result, and read-only
    fields are ignored. NOTE: whether PX treats null as "no change" or as
    "clear" is not documented, so the sandbox leaves the stored value unchanged.
    """
    problems: list[Problem] = []
    stored: dict[str, Any] = {}

    for name in required:
        if body.get(name) is None:
            problems.append((name, None, "must not be null"))

    for name, value in body.items():
        if name in read_only or value is None:
            continue
        if name == "customAttributes" and definitions is not None:
            attributes, attribute_problems = validate_custom_attributes(
                value, definitions, reject_unknown=reject_unknown
            )
            problems.extend(attribute_problems)
            stored[name] = attributes
            continue
        check = fields.get(name)
        if check is None:
            # Unknown properties are ignored, as Spring Boot configures Jackson to do.
            continue
        value_problems = check(name, value)
        if value_problems:
            problems.extend(value_problems)
        else:
            stored[name] = value

    return stored, [sub_error(object_name, problem) for problem in problems]


def validate_user(
    body: dict[str, Any],
    *,
    required: Iterable[str],
    definitions: list[dict[str, Any]],
    reject_unknown: bool,
) -> tuple[dict[str, Any], list[SubError]]:
    """Validate a user body and return the fields to store and the sub-errors."""
    return _validate_record(
        body,
        object_name="user",
        fields=USER_FIELDS,
        read_only=USER_READ_ONLY,
        required=required,
        definitions=definitions,
        reject_unknown=reject_unknown,
    )


def validate_account(
    body: dict[str, Any],
    *,
    required: Iterable[str],
    definitions: list[dict[str, Any]],
    reject_unknown: bool,
) -> tuple[dict[str, Any], list[SubError]]:
    """Validate an account body and return the fields to store and the sub-errors."""
    return _validate_record(
        body,
        object_name="account",
        fields=ACCOUNT_FIELDS,
        read_only=ACCOUNT_READ_ONLY,
        required=required,
        definitions=definitions,
        reject_unknown=reject_unknown,
    )


def validate_event(body: Any) -> tuple[dict[str, Any], list[SubError]]:
    """Validate one custom event and return the fields to store and the sub-errors.

    NOTE: Gainsight documents the name and attribute limits for its SDKs but not
    what the REST endpoint does when they are exceeded. The sandbox returns 400.
    """
    if not isinstance(body, dict):
        problem = ("customEvent", body, "must be a JSON object")
        return {}, [sub_error("customEvent", problem)]

    stored, errors = _validate_record(
        body,
        object_name="customEvent",
        fields=EVENT_FIELDS,
        read_only=frozenset(),
        required=EVENT_REQUIRED,
    )

    limit_problems: list[Problem] = []
    name = stored.get("eventName")
    if isinstance(name, str) and len(name) > MAX_EVENT_NAME_LENGTH:
        limit_problems.append(
            ("eventName", name, f"must be at most {MAX_EVENT_NAME_LENGTH} characters")
        )
    attributes = stored.get("attributes", {})
    if len(attributes) > MAX_EVENT_ATTRIBUTES:
        limit_problems.append(
            (
                "attributes",
                len(attributes),
                f"must have at most {MAX_EVENT_ATTRIBUTES} properties",
            )
        )
    for key in attributes:
        if len(key) > MAX_EVENT_ATTRIBUTE_NAME_LENGTH:
            limit_problems.append(
                (
                    f"attributes.{key[:40]}...",
                    None,
                    f"name must be at most {MAX_EVENT_ATTRIBUTE_NAME_LENGTH} "
                    "characters",
                )
            )
    errors.extend(sub_error("customEvent", problem) for problem in limit_problems)
    return stored, errors
