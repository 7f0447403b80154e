"""Filter and sort records the way the PX list endpoints describe.

A ``filter`` parameter contains terms joined by ``;`` (logical AND), such as
``eventName==Login;date>1700000000000``. Repeated ``filter`` parameters are
joined by logical OR. Operators are ``== != < <= > >= ~ !~``, and ``~``/``!~``
take the wildcards ``*`` and ``?``. Field names may be dotted paths such as
``customAttributes.plan``. String comparison ignores case, as PX documents for
filters.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

# Longer operators come first so that "<=" is not read as "<".
_OPERATORS = ("!~", "==", "!=", "<=", ">=", "~", "<", ">")
_OPERATOR_START = re.compile(r"[=!<>~]")


class QueryError(ValueError):
    """Invalid filter or sort parameter, with the offending text in the message."""


@dataclasses.dataclass(frozen=True)
class FilterTerm:
    """One ``field operator value`` condition of a filter."""

    field: str
    operator: str
    value: str


def parse_filters(values: list[str]) -> list[list[FilterTerm]]:
    """Parse ``filter`` parameters into OR-groups of AND-ed terms."""
    groups = []
    for value in values:
        terms = [_parse_term(text) for text in value.split(";") if text]
        if terms:
            groups.append(terms)
    return groups


def _parse_term(text: str) -> FilterTerm:
    match = _OPERATOR_START.search(text)
    if match is None or match.start() == 0:
        raise QueryError(
            f"invalid filter term {text!r}: expected field, operator, value"
        )
    start = match.start()
    for operator in _OPERATORS:
        if text.startswith(operator, start):
            return FilterTerm(text[:start], operator, text[start + len(operator) :])
    raise QueryError(f"invalid filter term {text!r}: unknown operator")


def lookup(record: dict[str, Any], path: str) -> Any:
    """Return the value at a dotted path, or None when any part is missing."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).casefold()


def _wildcard_pattern(text: str) -> re.Pattern[str]:
    escaped = re.escape(text.casefold())
    escaped = escaped.replace(r"\*", ".*").replace(r"\?", ".")
    return re.compile(escaped, re.DOTALL)


def _compare(left: Any, right: str) -> int:
    left_number, right_number = _as_number(left), _as_number(right)
    if left_number is not None and right_number is not None:
        return (left_number > right_number) - (left_number < right_number)
    left_text, right_text = _as_text(left), right.casefold()
    return (left_text > right_text) - (left_text < right_text)


def _term_matches(record: dict[str, Any], term: FilterTerm) -> bool:
    value = lookup(record, term.field)
    if term.operator in ("!=", "!~"):
        if value is None:
            return True
        positive_operator = "==" if term.operator == "!=" else "~"
        positive = dataclasses.replace(term, operator=positive_operator)
        return not _term_matches(record, positive)
    if value is None:
        return False
    if term.operator == "~":
        return _wildcard_pattern(term.value).fullmatch(_as_text(value)) is not None
    order = _compare(value, term.value)
    checks: dict[str, Callable[[int], bool]] = {
        "==": lambda result: result == 0,
        "<": lambda result: result < 0,
        "<=": lambda result: result <= 0,
        ">": lambda result: result > 0,
        ">=": lambda result: result >= 0,
    }
    return checks[term.operator](order)


def matches(record: dict[str, Any], groups: list[list[FilterTerm]]) -> bool:
    """Return whether a record passes the filters; no filters pass everything."""
    if not groups:
        return True
    return any(all(_term_matches(record, term) for term in terms) for terms in groups)


def sort_records(records: list[dict[str, Any]], sort: str | None) -> None:
    """Sort records in place by ``sort``, such as ``-date;accountId``.

    A leading ``-`` sorts that field in descending order. Records that lack a
    field sort after those that have it.
    """
    if not sort:
        return
    fields = [field for field in sort.split(";") if field]
    # Sorting by the last key first and relying on a stable sort gives the
    # multi-key order.
    for field in reversed(fields):
        descending = field.startswith("-")
        path = field.lstrip("-+")
        if not path:
            raise QueryError(f"invalid sort field {field!r}")
        present = [record for record in records if lookup(record, path) is not None]
        missing = [record for record in records if lookup(record, path) is None]
        present.sort(
            key=lambda record: _sort_key(lookup(record, path)), reverse=descending
        )
        records[:] = present + missing


def _sort_key(value: Any) -> tuple[int, Any]:
    number = _as_number(value) if not isinstance(value, str) else None
    if number is not None:
        return (0, number)
    return (1, _as_text(value))
