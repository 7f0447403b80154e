from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from px.convert import (
    EPOCH_MS_THRESHOLD,
    ConversionError,
    convert,
    is_empty,
    to_boolean,
    to_enum,
    to_epoch_ms,
    to_integer,
    to_number,
    to_string,
    to_string_list,
)

# 2019-06-05T01:18:29Z
EPOCH_S = 1559696309
EPOCH_MS = 1559696309000


def test_epoch_seconds_int():
    assert to_epoch_ms(EPOCH_S) == EPOCH_MS


def test_epoch_milliseconds_int():
    assert to_epoch_ms(EPOCH_MS) == EPOCH_MS


def test_epoch_seconds_string():
    assert to_epoch_ms("1559696309") == EPOCH_MS


def test_epoch_milliseconds_string():
    assert to_epoch_ms("1559696309000") == EPOCH_MS


def test_epoch_string_with_spaces():
    assert to_epoch_ms(" 1559696309000 ") == EPOCH_MS


def test_epoch_threshold_is_ms():
    assert to_epoch_ms(EPOCH_MS_THRESHOLD) == EPOCH_MS_THRESHOLD


def test_epoch_below_threshold_is_seconds():
    # 1e11 - 1 seconds is the year 5138, so it is out of range.
    with pytest.raises(ConversionError, match="too far in the future"):
        to_epoch_ms(EPOCH_MS_THRESHOLD - 1)


def test_epoch_negative_seconds():
    assert to_epoch_ms(-86400) == -86400000


def test_epoch_fractional_seconds_rounded():
    assert to_epoch_ms("1559696309.1234") == 1559696309123
    assert to_epoch_ms(1559696309.5) == 1559696309500


def test_epoch_fractional_ms_half_even():
    assert to_epoch_ms("1559696309000.5") == 1559696309000
    assert to_epoch_ms("1559696309001.5") == 1559696309002


def test_epoch_yyyymmdd_ambiguous():
    with pytest.raises(ConversionError, match="ambiguous"):
        to_epoch_ms("20201231")


def test_iso_without_zone_utc():
    assert to_epoch_ms("2020-11-29T17:05:23") == 1606669523000


def test_iso_without_zone_bangkok():
    # Bangkok is UTC+7 all year.
    expected = 1606669523000 - 7 * 3600 * 1000
    assert to_epoch_ms("2020-11-29T17:05:23", "Asia/Bangkok") == expected


def test_iso_with_offset_ignores_tz():
    value = "2020-11-29T17:05:23+07:00"
    assert to_epoch_ms(value, "America/New_York") == 1606669523000 - 25200000


def test_iso_z_suffix():
    assert to_epoch_ms("2020-11-29T17:05:23Z", "Asia/Bangkok") == 1606669523000


def test_iso_lowercase_t_and_z():
    assert to_epoch_ms("2020-11-29t17:05:23z") == 1606669523000


def test_iso_space_separator():
    assert to_epoch_ms("2020-11-29 17:05:23") == 1606669523000


def test_iso_fractional_seconds():
    assert to_epoch_ms("2020-11-29T17:05:23.456Z") == 1606669523456


def test_iso_microseconds_rounded():
    assert to_epoch_ms("2020-11-29T17:05:23.4567Z") == 1606669523457
    assert to_epoch_ms("2020-11-29T17:05:23.0005Z") == 1606669523000


def test_iso_nanoseconds():
    assert to_epoch_ms("2020-11-29T17:05:23.123456789Z") == 1606669523123


def test_date_only_utc():
    assert to_epoch_ms("2020-12-31") == 1609372800000


def test_date_only_midnight_in_tz():
    assert to_epoch_ms("2020-12-31", "Asia/Bangkok") == 1609372800000 - 25200000


def test_date_only_dst_zone():
    # New York is on EDT (UTC-4) in July.
    assert to_epoch_ms("2021-07-01", "America/New_York") == 1625112000000


def test_datetime_objects():
    aware = datetime(2020, 11, 29, 17, 5, 23, tzinfo=timezone.utc)
    assert to_epoch_ms(aware) == 1606669523000
    assert to_epoch_ms(date(2020, 12, 31)) == 1609372800000


def test_invalid_date_message():
    with pytest.raises(ConversionError) as caught:
        to_epoch_ms("31/12/2020")
    assert str(caught.value) == (
        '"31/12/2020" is not a date: use ISO 8601 (2020-12-31T10:00:00) or epoch'
        " milliseconds"
    )


@pytest.mark.parametrize("value", [True, False, None, "", "soon", [], {}])
def test_not_a_date(value):
    with pytest.raises(ConversionError, match="is not a date"):
        to_epoch_ms(value)


def test_far_past():
    with pytest.raises(ConversionError, match='"1899-12-31" is too far in the past'):
        to_epoch_ms("1899-12-31")


def test_far_future():
    with pytest.raises(ConversionError, match='"2200-01-02" is too far in the future'):
        to_epoch_ms("2200-01-02")


def test_far_future_epoch():
    with pytest.raises(ConversionError, match="too far in the future"):
        to_epoch_ms(10**30)


def test_range_bounds_accepted():
    assert to_epoch_ms("1900-01-01T00:00:00Z") == -2208988800000
    assert to_epoch_ms("2200-01-01T00:00:00Z") == 7258118400000


def test_invalid_tz():
    expected = '"Mars/Olympus" is not a known time zone'
    with pytest.raises(ConversionError, match=expected):
        to_epoch_ms("2020-12-31", "Mars/Olympus")


def test_invalid_tz_with_epoch():
    with pytest.raises(ConversionError, match="Mars/Olympus"):
        to_epoch_ms(EPOCH_MS, "Mars/Olympus")


aware_datetimes = st.datetimes(
    min_value=datetime(1900, 1, 2),
    max_value=datetime(2199, 12, 30),
    timezones=st.timezones(),
)


@given(aware_datetimes)
def test_iso_and_epoch_agree(moment):
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    expected = (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(
        milliseconds=1
    )
    # Epoch milliseconds below the threshold are read as seconds by design.
    assume(abs(expected) >= EPOCH_MS_THRESHOLD)
    assert to_epoch_ms(moment.isoformat()) == expected
    assert to_epoch_ms(str(expected)) == expected


def test_integer_big_exact():
    assert to_integer("12345678901234567890") == 12345678901234567890


def test_integer_native():
    assert to_integer(42) == 42


def test_integer_whole_float():
    assert to_integer(3.0) == 3
    assert to_integer("3.0") == 3


def test_integer_signs_and_spaces():
    assert to_integer(" -17 ") == -17
    assert to_integer("+17") == 17


def test_integer_thousands_rejected():
    with pytest.raises(ConversionError, match="thousands separators"):
        to_integer("1,000")


def test_integer_fraction_rejected():
    with pytest.raises(ConversionError, match="fractional part"):
        to_integer("1.5")


def test_integer_float_fraction_rejected():
    with pytest.raises(ConversionError, match="fractional part"):
        to_integer(1.5)


def test_integer_exponent_rejected():
    with pytest.raises(ConversionError, match="exponent notation"):
        to_integer("1e3")


def test_integer_inexact_float_rejected():
    with pytest.raises(ConversionError, match="too large"):
        to_integer(1e20)


@pytest.mark.parametrize("value", [True, "abc", "", "١٢٣", "1_000", None])
def test_integer_rejected(value):
    with pytest.raises(ConversionError):
        to_integer(value)


@given(st.integers())
def test_integer_string_round_trip(number):
    assert to_integer(str(number)) == number


def test_number_decimal_string():
    assert to_number("1.5") == 1.5


def test_number_int_stays_int():
    assert to_number(7) == 7
    assert isinstance(to_number(7), int)
    assert isinstance(to_number("7"), int)


def test_number_big_int_exact():
    assert to_number("12345678901234567890") == 12345678901234567890


def test_number_exponent():
    assert to_number("1e3") == 1000.0


def test_number_decimal_comma_rejected():
    with pytest.raises(ConversionError, match="decimal comma"):
        to_number("1,5")


@pytest.mark.parametrize("value", ["NaN", "nan", "inf", "-Infinity", float("nan")])
def test_number_not_finite_rejected(value):
    with pytest.raises(ConversionError, match="not a finite number"):
        to_number(value)


def test_number_overflow_rejected():
    with pytest.raises(ConversionError, match="out of range"):
        to_number("1e400")


@pytest.mark.parametrize("value", [True, "abc", "1.2.3", None])
def test_number_rejected(value):
    with pytest.raises(ConversionError):
        to_number(value)


@pytest.mark.parametrize("value", ["true", "TRUE", "True", "yes", "YES", "1", 1, True])
def test_boolean_true(value):
    assert to_boolean(value) is True


@pytest.mark.parametrize("value", ["false", "False", "no", "No", "0", 0, False])
def test_boolean_false(value):
    assert to_boolean(value) is False


@pytest.mark.parametrize("value", ["maybe", "y", "2", 2, "", None])
def test_boolean_rejected(value):
    with pytest.raises(ConversionError, match="true or false, yes or no, or 1 or 0"):
        to_boolean(value)


def test_string_unchanged():
    assert to_string(" Ann ") == " Ann "


def test_string_from_int():
    assert to_string(3) == "3"
    assert to_string(12345678901234567890) == "12345678901234567890"


def test_string_from_integral_float():
    assert to_string(3.0) == "3"


def test_string_from_float():
    assert to_string(1.5) == "1.5"


def test_string_from_bool():
    assert to_string(True) == "true"
    assert to_string(False) == "false"


def test_string_from_dict_and_list():
    assert to_string({"a": 1, "b": [1, 2]}) == '{"a":1,"b":[1,2]}'
    assert to_string(["x", "é"]) == '["x","é"]'


def test_string_not_finite_rejected():
    with pytest.raises(ConversionError):
        to_string(float("inf"))


def test_string_list():
    assert to_string_list("a,b") == ["a,b"]
    assert to_string_list(["a", 2]) == ["a", "2"]


def test_enum_case_insensitive():
    assert to_enum(" female ", ("MALE", "FEMALE")) == "FEMALE"


def test_enum_rejected_names_choices():
    with pytest.raises(ConversionError, match="use one of MALE, FEMALE"):
        to_enum("F", ("MALE", "FEMALE"))


@pytest.mark.parametrize("value", [None, "", "  ", "\t\n"])
def test_is_empty_true(value):
    assert is_empty(value)


@pytest.mark.parametrize("value", ["null", "0", 0, False, [], {}, " x "])
def test_is_empty_false(value):
    assert not is_empty(value)


def test_convert_catalogue_types():
    assert convert("2020-12-31", "epoch_ms") == 1609372800000
    assert convert("5", "integer") == 5
    assert convert("1.5", "number") == 1.5
    assert convert("yes", "boolean") is True
    assert convert(3, "string") == "3"
    assert convert("user", "enum", choices=("USER", "LEAD")) == "USER"


def test_convert_custom_types():
    assert convert("2020-12-31", "DATE_TIME", "Asia/Bangkok") == 1609347600000
    assert convert("false", "BOOLEAN") is False
    assert convert("42", "NUMBER") == 42
    assert convert(42, "STRING") == "42"


def test_convert_unknown_type():
    with pytest.raises(ValueError, match="unknown field type"):
        convert("x", "DATE")
