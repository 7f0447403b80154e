"""Conversion of Nexset values to the JSON types that Gainsight PX expects.

Records read from CSV carry every value as the string that was written. Records read
from JSON carry native values. Each converter accepts both and raises
ConversionError with a message that names the value and the fix.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Attribute types that the PX attribute-metadata endpoint reports for custom
# attributes.
CUSTOM_TYPES = ("STRING", "NUMBER", "BOOLEAN", "DATE_TIME")

TRUE_WORDS = ("true", "yes", "1")
FALSE_WORDS = ("false", "no", "0")

# Integers at or above this magnitude are epoch milliseconds, below it epoch
# seconds. 1e11 seconds is the year 5138, and 1e11 milliseconds is 1973-03-03.
EPOCH_MS_THRESHOLD = 10**11

MIN_DATE = datetime(1900, 1, 1, tzinfo=UTC)
MAX_DATE = datetime(2200, 1, 1, tzinfo=UTC)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_ONE_US = timedelta(microseconds=1)
MIN_EPOCH_MS = (MIN_DATE - _EPOCH) // _ONE_MS
MAX_EPOCH_MS = (MAX_DATE - _EPOCH) // _ONE_MS

# Floats can represent every integer up to 2**53 exactly, and no further.
_MAX_EXACT_FLOAT = 2**53

_INTEGER_RE = re.compile(r"[+-]?[0-9]+", re.ASCII)
_FIXED_POINT_RE = re.compile(r"[+-]?(?:[0-9]+\.[0-9]*|\.[0-9]+)", re.ASCII)
_DECIMAL_RE = re.compile(
    r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII
)
_DECIMAL_COMMA_RE = re.compile(r"[+-]?[0-9]*,[0-9]+", re.ASCII)
_THOUSANDS_RE = re.compile(r"[+-]?[0-9]{1,3}(?:,[0-9]{3})+", re.ASCII)
_SEPARATED_NUMBER_RE = re.compile(r"[+-]?[0-9][0-9.,' \u00a0]*[0-9]")
_NOT_FINITE_WORDS = ("nan", "inf", "infinity", "+inf", "-inf", "+infinity", "-infinity")

_DATE_FORMAT_HINT = "use ISO 8601 (2020-12-31T10:00:00) or epoch milliseconds"


class ConversionError(ValueError):
    """Value that cannot be converted, with a message that names the value and fix."""


def show(value: Any) -> str:
    """Format ``value`` for an error message: strings quoted, others as JSON."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def is_empty(value: Any) -> bool:
    """Return whether ``value`` counts as missing.

    None, the empty string and strings of only whitespace are empty. The text
    "null", zero, false and empty lists or objects are values.
    """
    if value is None:
        return True
    return isinstance(value, str) and not value.strip()


def to_string(value: Any) -> str:
    """Convert ``value`` to the string PX stores.

    Strings are returned unchanged, whitespace included. Integers keep every digit.
    A float with no fractional part loses its ".0" (3.0 becomes "3") as long as it
    is exact (below 2**53), because JSON sources often send ids and codes as
    floats. Other floats use Python's shortest round-trip form ("1.5"). Booleans
    become "true"/"false", and lists and objects become compact JSON.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConversionError(
                f"{show(value)} is not a finite number: send a number or text"
            )
        if value.is_integer() and abs(value) < _MAX_EXACT_FLOAT:
            return str(int(value))
        return repr(value)
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    raise ConversionError(
        f"{show(value)} of type {type(value).__name__} cannot be sent as text"
    )


def to_string_list(value: Any) -> list[str]:
    """Convert a list to a list of strings, or wrap a single value in a list.

    A string is never split: "a,b" becomes ["a,b"].
    """
    if isinstance(value, (list, tuple)):
        return [to_string(item) for item in value]
    return [to_string(value)]


def to_enum(value: Any, choices: tuple[str, ...]) -> str:
    """Return the choice that matches ``value``, ignoring case and outer spaces."""
    if isinstance(value, str):
        normalized = value.strip().upper()
        for choice in choices:
            if choice.upper() == normalized:
                return choice
    raise ConversionError(
        f"{show(value)} is not a valid choice: use one of {', '.join(choices)}"
    )


def to_boolean(value: Any) -> bool:
    """Convert true/false, yes/no (any case), 1/0 or a JSON boolean to bool."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return value == 1
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise ConversionError(
        f"{show(value)} is not a boolean: use true or false, yes or no, or 1 or 0"
    )


def to_integer(value: Any) -> int:
    """Convert ``value`` to an int without passing through float.

    Digit strings of any length stay exact. A fraction of zero is dropped ("3.0"
    and 3.0 become 3). Thousands separators, decimal commas, other fractions and
    exponent notation ("1e3") are rejected rather than guessed.
    """
    if isinstance(value, bool):
        raise ConversionError(
            f"{show(value)} is not an integer: send a whole number such as 42"
        )
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return _float_to_integer(value)
    if not isinstance(value, str):
        raise ConversionError(
            f"{show(value)} is not an integer: send a whole number such as 42"
        )

    text = value.strip()
    if _INTEGER_RE.fullmatch(text):
        return _parse_digits(value, text)
    if _FIXED_POINT_RE.fullmatch(text):
        whole, _, fraction = text.partition(".")
        if fraction.strip("0"):
            raise ConversionError(
                f"{show(value)} is not an integer because it has a fractional"
                " part: send a whole number"
            )
        if whole in ("", "+", "-"):
            return 0
        return _parse_digits(value, whole)
    _reject_separators(value, text)
    if _DECIMAL_RE.fullmatch(text):
        raise ConversionError(
            f"{show(value)} is not an integer: write the digits out in full,"
            " because exponent notation is not accepted for integers"
        )
    raise ConversionError(
        f"{show(value)} is not an integer: send a whole number such as 42"
    )


def to_number(value: Any) -> int | float:
    """Convert ``value`` to an int or a finite float.

    Ints and digit strings stay exact ints. Other numbers, including "1.0" and
    "1e3", become floats. NaN, infinity, thousands separators and decimal commas
    are rejected.
    """
    if isinstance(value, bool):
        raise ConversionError(
            f"{show(value)} is not a number: send a number such as 1.5"
        )
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConversionError(
                f"{show(value)} is not a finite number: send a number such as 1.5"
            )
        return value
    if not isinstance(value, str):
        raise ConversionError(
            f"{show(value)} is not a number: send a number such as 1.5"
        )

    text = value.strip()
    if _INTEGER_RE.fullmatch(text):
        return _parse_digits(value, text)
    if _DECIMAL_RE.fullmatch(text):
        number = float(text)
        if not math.isfinite(number):
            raise ConversionError(
                f"{show(value)} is out of range for a number: send a smaller number"
            )
        return number
    if text.lower() in _NOT_FINITE_WORDS:
        raise ConversionError(
            f"{show(value)} is not a finite number: send a number such as 1.5"
        )
    _reject_separators(value, text)
    raise ConversionError(
        f"{show(value)} is not a number: send a number such as 1.5"
    )


def check_range(number: int, bounds: tuple[int, int]) -> int:
    """Return ``number`` if it lies within ``bounds``, else raise ConversionError."""
    low, high = bounds
    if not low <= number <= high:
        raise ConversionError(
            f"{show(number)} is out of range: send a whole number from {low}"
            f" to {high}"
        )
    return number


def to_epoch_ms(value: Any, tz: str = "UTC") -> int:
    """Convert a date or time to milliseconds since 1970-01-01T00:00:00Z.

    Accepted values:

    - Epoch numbers, as int, float or a string of digits with an optional
      fraction. A magnitude below 1e11 means seconds, otherwise milliseconds. So
      milliseconds between 1966-10-31 and 1973-03-03 are misread as seconds.
      Whole numbers from 10000000 to 99999999 that spell a YYYYMMDD date are
      rejected as ambiguous.
    - ISO 8601 strings: with an offset or "Z", with a space instead of "T", with
      fractional seconds, or a date alone. A value without an offset is local time
      in ``tz`` (an IANA name), and a date alone is midnight in ``tz``.
    - datetime and date objects, naive ones read in ``tz``.

    The result is rounded to whole milliseconds, half to even. Dates before
    1900-01-01 or after 2200-01-01 UTC are rejected. ``tz`` is checked on every
    call, so an unknown zone fails even for epoch numbers.
    """
    zone = _zone(tz)
    if isinstance(value, bool):
        raise ConversionError(f"{show(value)} is not a date: {_DATE_FORMAT_HINT}")
    if isinstance(value, int):
        return _epoch_number_to_ms(value, Decimal(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConversionError(f"{show(value)} is not a date: {_DATE_FORMAT_HINT}")
        return _epoch_number_to_ms(value, Decimal(repr(value)))
    if isinstance(value, datetime):
        return _datetime_to_ms(value, value, zone)
    if isinstance(value, date):
        midnight = datetime(value.year, value.month, value.day)
        return _datetime_to_ms(value, midnight, zone)
    if not isinstance(value, str):
        raise ConversionError(f"{show(value)} is not a date: {_DATE_FORMAT_HINT}")

    text = value.strip()
    if _INTEGER_RE.fullmatch(text) or _FIXED_POINT_RE.fullmatch(text):
        return _epoch_number_to_ms(value, Decimal(text))
    try:
        # fromisoformat rejects a lowercase "t" or "z", which ISO 8601 allows.
        parsed = datetime.fromisoformat(text.upper())
    except ValueError:
        raise ConversionError(
            f"{show(value)} is not a date: {_DATE_FORMAT_HINT}"
        ) from None
    return _datetime_to_ms(value, parsed, zone)


def convert(
    value: Any, field_type: str, tz: str = "UTC", choices: tuple[str, ...] = ()
) -> Any:
    """Convert ``value`` for a catalogue field type or a PX custom attribute type.

    Catalogue types are those in px.fields.FIELD_TYPES. ``choices`` is needed for
    "enum". Custom attribute types are CUSTOM_TYPES: DATE_TIME becomes epoch
    milliseconds and BOOLEAN a JSON boolean. Raises ConversionError for a bad value
    and ValueError for an unknown type.
    """
    if field_type in ("string", "STRING"):
        return to_string(value)
    if field_type in ("epoch_ms", "DATE_TIME"):
        return to_epoch_ms(value, tz)
    if field_type == "integer":
        return to_integer(value)
    if field_type in ("number", "NUMBER"):
        return to_number(value)
    if field_type in ("boolean", "BOOLEAN"):
        return to_boolean(value)
    if field_type == "string_list":
        return to_string_list(value)
    if field_type == "enum":
        return to_enum(value, choices)
    raise ValueError(f"unknown field type {field_type!r}")


@lru_cache(maxsize=64)
def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ConversionError(
            f"{show(tz)} is not a known time zone: use an IANA name such as"
            ' "UTC" or "Europe/Berlin"'
        ) from None


def _parse_digits(value: Any, digits: str) -> int:
    try:
        return int(digits)
    except ValueError:
        # int() rejects strings longer than sys.get_int_max_str_digits().
        raise ConversionError(
            f"{show(value)[:40]}... has too many digits to convert"
        ) from None


def _float_to_integer(value: float) -> int:
    if not math.isfinite(value) or not value.is_integer():
        raise ConversionError(
            f"{show(value)} is not an integer because it has a fractional part:"
            " send a whole number"
        )
    if abs(value) >= _MAX_EXACT_FLOAT:
        raise ConversionError(
            f"{show(value)} is too large to be exact as a JSON float: send it as"
            " a string of digits"
        )
    return int(value)


def _reject_separators(value: Any, text: str) -> None:
    if _DECIMAL_COMMA_RE.fullmatch(text) and not _THOUSANDS_RE.fullmatch(text):
        raise ConversionError(
            f"{show(value)} has a decimal comma, which is not guessed: use a dot"
            " (1.5)"
        )
    if _SEPARATED_NUMBER_RE.fullmatch(text):
        raise ConversionError(
            f"{show(value)} has thousands separators or a decimal comma, which are"
            " not guessed: send digits only, with a dot for decimals (1000 or 1.5)"
        )


def _epoch_number_to_ms(value: Any, number: Decimal) -> int:
    if number == number.to_integral_value() and _is_yyyymmdd(int(number)):
        raise ConversionError(
            f"{show(value)} is ambiguous: write it as an ISO 8601 date"
            " (2020-12-31) or as epoch milliseconds"
        )
    if abs(number) < EPOCH_MS_THRESHOLD:
        number *= 1000
    milliseconds = int(number.to_integral_value(rounding=ROUND_HALF_EVEN))
    return _check_date_range(value, milliseconds)


def _is_yyyymmdd(number: int) -> bool:
    if not 10_000_000 <= number <= 99_999_999:
        return False
    year, rest = divmod(number, 10_000)
    month, day = divmod(rest, 100)
    if not MIN_DATE.year <= year < MAX_DATE.year:
        return False
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _datetime_to_ms(value: Any, moment: datetime, zone: ZoneInfo) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        # NOTE: a local time that falls in a daylight-saving gap is shifted
        # forward by the gap, and a repeated local time takes its first
        # occurrence (fold=0).
        moment = moment.replace(tzinfo=zone)
    microseconds = (moment - _EPOCH) // _ONE_US
    milliseconds = int(
        (Decimal(microseconds) / 1000).to_integral_value(rounding=ROUND_HALF_EVEN)
    )
    return _check_date_range(value, milliseconds)


def _check_date_range(value: Any, milliseconds: int) -> int:
    if milliseconds < MIN_EPOCH_MS:
        raise ConversionError(
            f"{show(value)} is too far in the past: send a date from 1900-01-01"
            " to 2200-01-01 UTC"
        )
    if milliseconds > MAX_EPOCH_MS:
        raise ConversionError(
            f"{show(value)} is too far in the future: send a date from 1900-01-01"
            " to 2200-01-01 UTC"
        )
    return milliseconds
