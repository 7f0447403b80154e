"""Infer the attribute types of a Nexset from its records."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time
from typing import Any

__all__ = ["ATTRIBUTE_TYPES", "Attribute", "SchemaBuilder", "infer_value_type"]

ATTRIBUTE_TYPES = (
    "string",
    "integer",
    "number",
    "boolean",
    "datetime",
    "date",
    "object",
    "array",
    "null",
)

# [0-9] rather than \d, because \d also matches non-ASCII digits such as "٣".
_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]"
    r"([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.,][0-9]+)?)?"
    r"(?:[Zz]|[+-]([0-9]{2})(?::?([0-9]{2}))?)?"
)
# Pairs of types that merge into the wider of the two rather than into "string".
_WIDENED = {
    frozenset({"integer", "number"}): "number",
    frozenset({"date", "datetime"}): "datetime",
}


@dataclass(frozen=True)
class Attribute:
    """Name and inferred type of one field of a Nexset's records.

    ``type`` is one of ATTRIBUTE_TYPES, and "null" means every value was empty.
    """

    name: str
    type: str


def infer_value_type(value: Any) -> str | None:
    """Return the attribute type of one value, or None for "" and None.

    Strings, which is all that CSV gives, are read as follows. "123" and "-5" are
    integers, but "0123" is a string because a leading zero marks an id or code. An
    integer may have any number of digits, such as a 19-digit id, so convert it
    with int(), never float(). "1.5" and "1e5" are numbers, but the decimal comma
    in "1,5" makes it a string. "true" and "false" in any case are booleans, while
    "0", "1", "yes" and "no" are not. "2020-11-29" is a date, and ISO 8601 date
    times such as "2020-11-29T17:05:23", with an optional fraction and zone ("Z",
    "+02:00") and "T" or a space between date and time, are datetimes. A string
    with spaces around the value is a string.

    JSON values keep their type: bool is boolean, int is integer, float is number,
    dict is object and list is array. Raise TypeError for any other type.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return _infer_string_type(value)
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    raise TypeError(f"cannot infer an attribute type for {type(value).__name__}")


def _infer_string_type(value: str) -> str:
    if _INTEGER.fullmatch(value):
        return "integer"
    if _NUMBER.fullmatch(value):
        return "number"
    if value.lower() in ("true", "false"):
        return "boolean"
    if _is_date(value):
        return "date"
    if _is_datetime(value):
        return "datetime"
    return "string"


def _is_date(value: str) -> bool:
    match = _DATE.fullmatch(value)
    if match is None:
        return False
    try:
        date(*(int(part) for part in match.groups()))
    except ValueError:
        return False
    return True


def _is_datetime(value: str) -> bool:
    match = _DATETIME.fullmatch(value)
    if match is None:
        return False
    year, month, day, hour, minute, second, offset_hours, offset_minutes = (
        int(part) if part is not None else 0 for part in match.groups()
    )
    try:
        date(year, month, day)
        time(hour, minute, second)
    except ValueError:
        return False
    return offset_hours < 24 and offset_minutes < 60


def _merge_types(old: str | None, new: str | None) -> str | None:
    """Return the narrowest type that covers both. None means only empty values."""
    if old is None or old == new:
        return new
    if new is None:
        return old
    return _WIDENED.get(frozenset({old, new}), "string")


class SchemaBuilder:
    """Attribute types inferred from records added one at a time.

    Memory grows with the number of attributes, not of records. Empty values do
    not affect a type. Integers and numbers merge to "number", dates and datetimes
    to "datetime", and any other mix of types to "string".
    """

    def __init__(self) -> None:
        # Attribute name to its type so far, in first-seen order. None means that
        # every value so far was empty.
        self._types: dict[str, str | None] = {}

    def add(self, record: Mapping[str, Any]) -> None:
        """Widen the attribute types to cover one record."""
        for name, value in record.items():
            self._types[name] = _merge_types(
                self._types.get(name), infer_value_type(value)
            )

    def attributes(self) -> list[Attribute]:
        """Return the attributes in the order their names were first seen."""
        return [
            Attribute(name, "null" if kind is None else kind)
            for name, kind in self._types.items()
        ]
