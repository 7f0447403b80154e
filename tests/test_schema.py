"""Tests for nexsets.schema: value types and their merging across records."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nexsets.parsing import iter_records
from nexsets.schema import ATTRIBUTE_TYPES, Attribute, SchemaBuilder, infer_value_type


def infer_schema(records: list[dict[str, Any]]) -> dict[str, str]:
    builder = SchemaBuilder()
    for record in records:
        builder.add(record)
    return {attribute.name: attribute.type for attribute in builder.attributes()}


# infer_value_type


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("123", "integer"),
        ("0", "integer"),
        ("1", "integer"),
        ("-5", "integer"),
        ("1234567890123456789", "integer"),
        ("1559696309000", "integer"),
        ("0123", "string"),
        ("-012", "string"),
        ("+5", "string"),
        (" 123", "string"),
        ("١٢٣", "string"),
        ("1.5", "number"),
        ("-0.25", "number"),
        ("1e5", "number"),
        ("1.5E-3", "number"),
        ("1,5", "string"),
        ("1,000", "string"),
        ("1.", "string"),
        (".5", "string"),
        ("01.5", "string"),
        ("NaN", "string"),
        ("inf", "string"),
        ("true", "boolean"),
        ("FALSE", "boolean"),
        ("True", "boolean"),
        ("yes", "string"),
        ("no", "string"),
        ("null", "string"),
        ("2020-11-29", "date"),
        ("2020-02-30", "string"),
        ("2020-13-01", "string"),
        ("20201129", "integer"),
        ("2020-11-29T17:05:23", "datetime"),
        ("2020-11-29 17:05:23", "datetime"),
        ("2020-11-29T17:05", "datetime"),
        ("2020-11-29T17:05:23Z", "datetime"),
        ("2020-11-29T17:05:23.123456Z", "datetime"),
        ("2020-11-29T17:05:23+02:00", "datetime"),
        ("2020-11-29T17:05:23-0530", "datetime"),
        ("2020-11-29T17:05:23+02", "datetime"),
        ("2020-11-29T24:00:00", "string"),
        ("2020-11-29T17:60:00", "string"),
        ("2020-11-29T17:05:23+25:00", "string"),
        ("2020-11-29T", "string"),
        ("17:05:23", "string"),
        ("(555)-010-0001", "string"),
        ("GMT+7", "string"),
        (" ", "string"),
    ],
)
def test_infer_string_type(value: str, expected: str) -> None:
    assert infer_value_type(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "boolean"),
        (False, "boolean"),
        (0, "integer"),
        (2**70, "integer"),
        (1.0, "number"),
        ({"a": 1}, "object"),
        ({}, "object"),
        ([1, 2], "array"),
        ([], "array"),
    ],
)
def test_infer_json_type(value: Any, expected: str) -> None:
    assert infer_value_type(value) == expected


@pytest.mark.parametrize("value", ["", None])
def test_infer_empty_value(value: Any) -> None:
    assert infer_value_type(value) is None


@pytest.mark.parametrize("value", [Decimal("1.5"), {1, 2}, b"1"])
def test_infer_unsupported_type_raises(value: Any) -> None:
    with pytest.raises(TypeError):
        infer_value_type(value)


@given(st.integers())
def test_any_integer_string_is_integer(number: int) -> None:
    assert infer_value_type(str(number)) == "integer"


@given(
    st.floats(allow_nan=False, allow_infinity=False).filter(
        lambda x: not x.is_integer()
    )
)
def test_any_float_repr_is_number(number: float) -> None:
    assert infer_value_type(repr(number)) == "number"


@given(st.dates())
def test_any_iso_date_is_date(day: date) -> None:
    assert infer_value_type(day.isoformat()) == "date"


_OFFSETS = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@given(st.datetimes(timezones=st.none() | _OFFSETS), st.sampled_from(["T", " "]))
def test_any_iso_datetime_is_datetime(moment: datetime, separator: str) -> None:
    assert infer_value_type(moment.isoformat(separator)) == "datetime"


# SchemaBuilder


def test_attributes_in_first_seen_order() -> None:
    builder = SchemaBuilder()
    builder.add({"b": "1", "a": "x"})
    builder.add({"c": "true", "a": "y", "b": "2"})
    assert builder.attributes() == [
        Attribute("b", "integer"),
        Attribute("a", "string"),
        Attribute("c", "boolean"),
    ]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["1", "2"], "integer"),
        (["1", "1.5"], "number"),
        ([1.5, 2], "number"),
        (["2020-11-29", "2020-11-29T17:05:23"], "datetime"),
        (["2020-11-29T17:05:23Z", "2020-11-30"], "datetime"),
        (["1559696309000", "2020-11-29T17:05:23"], "string"),
        (["1", "true"], "string"),
        ([True, 1], "string"),
        (["1.5", "2020-11-29"], "string"),
        (["0123", "123"], "string"),
        ([{"a": 1}, {"b": 2}], "object"),
        ([{"a": 1}, [1]], "string"),
        (["1", "", None, "2"], "integer"),
        (["", None, ""], "null"),
    ],
)
def test_merge_types(values: list[Any], expected: str) -> None:
    assert infer_schema([{"field": value} for value in values]) == {"field": expected}


def test_missing_keys_ignored() -> None:
    records = [{"a": 1}, {"b": "x"}, {"a": 2.5}]
    assert infer_schema(records) == {"a": "number", "b": "string"}


def test_builder_output_types_are_known() -> None:
    values = ["1", "1.5", "true", "2020-11-29", "x", {}, [], None]
    schema = infer_schema([{str(i): value} for i, value in enumerate(values)])
    assert set(schema.values()) <= set(ATTRIBUTE_TYPES)


_SAMPLE_VALUES = st.sampled_from(
    [
        "",
        None,
        "7",
        "0123",
        "1.5",
        "true",
        "2020-11-29",
        "2020-11-29T17:05:23Z",
        "text",
        3,
        2.5,
        False,
        {"a": 1},
        [1],
    ]
)


@given(st.lists(_SAMPLE_VALUES, max_size=12), st.randoms(use_true_random=False))
def test_merge_ignores_order(values: list[Any], random: Any) -> None:
    shuffled = list(values)
    random.shuffle(shuffled)
    records = [{"field": value} for value in values]
    shuffled_records = [{"field": value} for value in shuffled]
    assert infer_schema(records) == infer_schema(shuffled_records)


# Schema of a parsed file


def test_schema_of_px_user_export() -> None:
    data = (
        b"User ID,Job Title,Email,First Name,Last Name,Sign-Up Date,Role,Phone,"
        b"Time Zone\r\n"
        b"u1,Engineer,a@example.com,Alex,Doe,1559696309000,Admin,(555)-010-0001,"
        b"GMT+7\r\n"
        b"u2,Dev,b@example.com,Sam,Roe,2020-11-29T17:05:23,User,(555)-010-0002,"
        b"GMT+7"
    )
    records = list(iter_records(io.BytesIO(data), "users.csv"))
    assert len(records) == 2
    schema = infer_schema(records)
    # Epoch milliseconds and an ISO datetime in one column conflict.
    assert schema["Sign-Up Date"] == "string"
    assert schema["Phone"] == "string"
    assert schema["User ID"] == "string"
    assert schema["Time Zone"] == "string"
    assert list(schema) == [
        "User ID",
        "Job Title",
        "Email",
        "First Name",
        "Last Name",
        "Sign-Up Date",
        "Role",
        "Phone",
        "Time Zone",
    ]


def test_schema_of_json_records() -> None:
    data = (
        b'[{"id": 12345678901234567890, "score": 1, "tags": ["a"], "seen": null},'
        b' {"id": 2, "score": 2.5, "tags": [], "seen": "2020-11-29"}]'
    )
    schema = infer_schema(list(iter_records(io.BytesIO(data), "data.json")))
    assert schema == {
        "id": "integer",
        "score": "number",
        "tags": "array",
        "seen": "date",
    }
