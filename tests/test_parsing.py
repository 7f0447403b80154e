"""Tests for nexsets.parsing: format detection and streaming record parsing."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from itertools import islice
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nexsets import parsing
from nexsets.parsing import (
    CSV_DELIMITERS,
    READ_CHUNK_BYTES,
    UploadError,
    detect_format,
    iter_records,
)


class TrickleReader(io.RawIOBase):
    """Binary stream whose read() returns at most ``step`` bytes at a time."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = data
        self._position = 0
        self._step = step

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            size = len(self._data)
        size = min(size, self._step)
        chunk = self._data[self._position : self._position + size]
        self._position += len(chunk)
        return chunk


class EndlessReader(io.RawIOBase):
    """Binary stream of a header followed by the same row forever."""

    def __init__(self, header: bytes, row: bytes) -> None:
        self._pending = header
        self._row = row
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        assert size > 0, "the parser must not read the whole stream"
        while len(self._pending) < size:
            self._pending += self._row * 100
        chunk, self._pending = self._pending[:size], self._pending[size:]
        self.bytes_read += len(chunk)
        return chunk


def parse(
    data: bytes, filename: str = "data.csv", **limits: int
) -> list[dict[str, Any]]:
    return list(iter_records(io.BytesIO(data), filename, **limits))


def parse_error(data: bytes, filename: str = "data.csv", **limits: int) -> UploadError:
    with pytest.raises(UploadError) as caught:
        parse(data, filename, **limits)
    return caught.value


def parse_in_chunks(
    data: bytes, filename: str, chunk_size: int
) -> list[dict[str, Any]]:
    """Parse with the head and every read chunk ``chunk_size`` bytes long."""
    with mock.patch.multiple(
        parsing, HEAD_BYTES=chunk_size, READ_CHUNK_BYTES=chunk_size
    ):
        return list(iter_records(io.BytesIO(data), filename))


def parse_error_in_chunks(data: bytes, filename: str, chunk_size: int) -> UploadError:
    with pytest.raises(UploadError) as caught:
        parse_in_chunks(data, filename, chunk_size)
    return caught.value


# detect_format


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("users.csv", "csv"),
        ("users.TSV", "csv"),
        ("users.json", "json"),
        ("users.ndjson", "ndjson"),
        ("users.jsonl", "ndjson"),
        ("C:\\Exports\\users.CSV", "csv"),
        ("exports/users.json", "json"),
    ],
)
def test_detect_format_by_extension(filename: str, expected: str) -> None:
    # The content looks like another format, so only the extension can decide.
    head = b"a,b\n" if expected == "json" else b"[1, 2]\n"
    assert detect_format(filename, head) == expected


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b'[{"a": 1}]', "json"),
        (b'\xef\xbb\xbf  \n[{"a": 1}]', "json"),
        (b'{\n  "a": 1\n}\n', "json"),
        (b'{"a": 1}\n', "json"),
        (b'{"a": 1}\n{"a": 2}\n', "ndjson"),
        (b'{"a": 1}\r\n\r\n{"a": 2}', "ndjson"),
        (b"a,b\n1,2\n", "csv"),
        (b"id;name\n1;Zo\xc3\xab\n", "csv"),
        # A multi-byte character cut off by the end of the head.
        (b"name\nZo\xc3", "csv"),
    ],
)
def test_detect_format_by_content(head: bytes, expected: str) -> None:
    assert detect_format("upload.txt", head) == expected
    assert detect_format("upload", head) == expected


def test_detect_format_rejects_binary() -> None:
    error = _detect_error("report.xlsx", b"PK\x03\x04\x14\x00\x06\x00")
    assert "is not CSV, JSON or NDJSON" in str(error)
    assert "report.xlsx" in str(error)


def test_detect_format_hints_at_utf16() -> None:
    error = _detect_error("export.txt", "a\tb\n".encode("utf-16"))
    assert "is not CSV, JSON or NDJSON" in str(error)
    assert "UTF-16" in str(error)


def test_detect_format_rejects_non_utf8_text() -> None:
    error = _detect_error("latin1.txt", "caf\xe9,1\n".encode("latin-1"))
    assert "is not CSV, JSON or NDJSON" in str(error)
    assert "UTF-8" in str(error)


def test_detect_format_rejects_empty_head() -> None:
    assert str(_detect_error("upload.txt", b"")) == "The file is empty."
    assert str(_detect_error("upload.txt", b" \r\n")) == "The file is empty."


def test_detect_format_after_short_reads() -> None:
    # Telling NDJSON from JSON needs the whole first line, which arrives in
    # many reads.
    stream = TrickleReader(b'{"a": 1}\n{"a": 2}\n', 1)
    assert list(iter_records(stream, "upload.txt")) == [{"a": 1}, {"a": 2}]


def _detect_error(filename: str, head: bytes) -> UploadError:
    with pytest.raises(UploadError) as caught:
        detect_format(filename, head)
    return caught.value


# CSV: encoding and line endings


def test_csv_with_and_without_bom() -> None:
    expected = [{"id": "1", "name": "Zoë"}]
    assert parse("id,name\n1,Zoë\n".encode()) == expected
    assert parse("\ufeffid,name\n1,Zoë\n".encode()) == expected


@pytest.mark.parametrize("chunk_size", [1, 2])
def test_csv_bom_split_across_chunks(chunk_size: int) -> None:
    data = "\ufeffid,name\r\n1,Zoë\r\n".encode()
    records = parse_in_chunks(data, "data.csv", chunk_size)
    assert records == [{"id": "1", "name": "Zoë"}]


@pytest.mark.parametrize("line_end", ["\r\n", "\n", "\r"])
@pytest.mark.parametrize("final_line_end", [True, False])
def test_csv_line_endings(line_end: str, final_line_end: bool) -> None:
    text = line_end.join(["a,b", "1,2", "3,4"]) + (line_end if final_line_end else "")
    assert parse(text.encode()) == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 7])
def test_csv_crlf_split_across_chunks(chunk_size: int) -> None:
    data = b'a,b\r\n1,"x\r\ny"\r\n\r\n3,"\r"\r\n'
    records = parse_in_chunks(data, "data.csv", chunk_size)
    assert records == [{"a": "1", "b": "x\r\ny"}, {"a": "3", "b": "\r"}]


# CSV: delimiters


@pytest.mark.parametrize("delimiter", CSV_DELIMITERS)
def test_csv_delimiter_detected(delimiter: str) -> None:
    text = delimiter.join(["id", "name", "note"]) + "\n"
    text += delimiter.join(["1", "Zoë", "x"]) + "\n"
    assert parse(text.encode()) == [{"id": "1", "name": "Zoë", "note": "x"}]


def test_csv_semicolon_with_decimal_commas() -> None:
    data = b"id;price;weight\n1;1,5;2,25\n2;3,0;4\n"
    assert parse(data) == [
        {"id": "1", "price": "1,5", "weight": "2,25"},
        {"id": "2", "price": "3,0", "weight": "4"},
    ]


def test_csv_delimiter_consistent_count_wins() -> None:
    # "," splits the header into 2 columns and ";" into 3, but only ";" gives
    # every record the header's field count.
    data = b"a,x;b;c\n1;2,5;3\n4;5;6,7\n"
    assert parse(data) == [
        {"a,x": "1", "b": "2,5", "c": "3"},
        {"a,x": "4", "b": "5", "c": "6,7"},
    ]


def test_csv_delimiter_tie_prefers_comma() -> None:
    data = b"a,b;c\n1,2;3\n"
    assert parse(data) == [{"a": "1", "b;c": "2;3"}]


def test_csv_single_column_uses_comma() -> None:
    assert parse(b"email\na@example.com\n") == [{"email": "a@example.com"}]


def test_csv_delimiter_inside_quoted_header() -> None:
    data = b'"last, first";id\n"Doe, Alex";1\n'
    assert parse(data) == [{"last, first": "Doe, Alex", "id": "1"}]


def test_csv_delimiter_sample_ends_mid_field() -> None:
    # The sample of 20 lines ends inside a quoted field, and the cut record must
    # not count against ";".
    rows = [f'{i};"a\nb"' for i in range(30)]
    data = ("id;note\n" + "\n".join(rows) + "\n").encode()
    records = parse(data)
    assert len(records) == 30
    assert records[9] == {"id": "9", "note": "a\nb"}


# CSV: quoting


def test_csv_quoted_fields() -> None:
    data = (
        b"id,note\r\n"
        b'1,"a, b"\r\n'
        b'2,"say ""hi"""\r\n'
        b'3,"two\r\nlines"\r\n'
        b'4,"two\nlines"\r\n'
        b'5,""\r\n'
    )
    assert parse(data) == [
        {"id": "1", "note": "a, b"},
        {"id": "2", "note": 'say "hi"'},
        {"id": "3", "note": "two\r\nlines"},
        {"id": "4", "note": "two\nlines"},
        {"id": "5", "note": ""},
    ]


def test_csv_unclosed_quote_rejected() -> None:
    error = parse_error(b'id,note\n1,ok\n2,"never closed\n3,x\n')
    assert error.line == 3
    assert "never closed" in error.reason


def test_csv_text_after_closing_quote_rejected() -> None:
    error = parse_error(b'id,note\n1,"a"b\n')
    assert error.line == 2
    assert "not valid CSV" in error.reason


def test_csv_field_over_size_limit_rejected() -> None:
    data = b"id,note\n1," + b"x" * (csv.field_size_limit() + 1) + b"\n"
    error = parse_error(data)
    assert error.line == 2
    assert "longer than the limit" in error.reason


# CSV: values


def test_csv_values_kept_verbatim() -> None:
    data = (
        b"code,id,missing,flag,price,empty,padded\n"
        b'0123,1234567890123456789,null,false,"1,5",, x \n'
    )
    assert parse(data) == [
        {
            "code": "0123",
            "id": "1234567890123456789",
            "missing": "null",
            "flag": "false",
            "price": "1,5",
            "empty": "",
            "padded": " x ",
        }
    ]


def test_csv_row_of_empty_cells_kept() -> None:
    assert parse(b"a,b\n,\n1,2\n") == [{"a": "", "b": ""}, {"a": "1", "b": "2"}]


# CSV: rejected structure


def test_csv_row_with_more_fields_rejected() -> None:
    error = parse_error(b"a,b,c\n1,2,3\n4,5,6,7\n")
    assert error.line == 3
    assert "4 fields" in error.reason
    assert "3 columns" in error.reason


def test_csv_row_with_fewer_fields_rejected() -> None:
    error = parse_error(b"a,b,c\r\n1,2,3\r\n4,5\r\n")
    assert error.line == 3
    assert "2 fields" in error.reason
    assert "3 columns" in error.reason
    assert str(error).startswith("Line 3: ")


def test_csv_ragged_row_after_multiline_field() -> None:
    # The quoted field spans lines 2 and 3, so the ragged row starts on line 4, or
    # on line 5 after a blank line.
    error = parse_error(b'a,b\n1,"x\ny"\n\n2\n')
    assert error.line == 5
    error = parse_error(b'a,b\n1,"x\ny"\n2\n')
    assert error.line == 4


def test_csv_ragged_row_after_first_chunk() -> None:
    rows = b"".join(b"%d,x\n" % i for i in range(20000))
    assert len(rows) > READ_CHUNK_BYTES
    error = parse_error(b"id,v\n" + rows + b"1,2,3\n")
    assert error.line == 20002


def test_csv_duplicate_column_rejected() -> None:
    error = parse_error(b"id,email,name,email\n1,a,b,c\n")
    assert error.line == 1
    assert '"email"' in error.reason
    assert "positions 2 and 4" in error.reason


@pytest.mark.parametrize("header", [b"id,,name", b"id, ,name"])
def test_csv_empty_header_name_rejected(header: bytes) -> None:
    error = parse_error(header + b"\n1,2,3\n")
    assert error.line == 1
    assert "Column 2" in error.reason


def test_csv_blank_lines_skipped() -> None:
    data = b"\n\r\na,b\n\n1,2\r\n\r\n\n3,4\n\n"
    assert parse(data) == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]


def test_csv_line_numbers_count_blank_lines() -> None:
    error = parse_error(b"\n\na,b\n\n1\n")
    assert error.line == 5


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\n\r\n\n"])
def test_csv_empty_file_rejected(data: bytes) -> None:
    assert str(parse_error(data)) == "The file is empty."


def test_csv_header_without_records_rejected() -> None:
    error = parse_error(b"a,b\r\n\r\n")
    assert "header" in error.reason
    assert "no records" in error.reason


# CSV: invalid UTF-8


def test_csv_invalid_utf8_in_first_chunk() -> None:
    error = parse_error(b"id,name\n1,caf\xe9\n")
    assert error.byte_offset == 13
    assert error.line == 2
    assert "0xE9" in error.reason
    assert "byte offset 13" in error.reason


def test_csv_invalid_utf8_after_first_chunk() -> None:
    prefix = b"id,name\n" + b"".join(b"%d,Zo\xc3\xab\n" % i for i in range(20000))
    assert len(prefix) > READ_CHUNK_BYTES
    error = parse_error(prefix + b"x,caf\xe9\n")
    assert error.byte_offset == len(prefix) + 5
    assert error.line == 20002


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 14, 15])
def test_csv_invalid_utf8_offset_in_small_chunks(chunk_size: int) -> None:
    # The bad byte follows characters whose bytes arrive in separate chunks.
    data = "id,name\n1,Zoë😀".encode() + b"\xff\n"
    error = parse_error_in_chunks(data, "data.csv", chunk_size)
    assert error.byte_offset == len(data) - 2
    assert error.line == 2


def test_csv_invalid_utf8_offset_counts_bom() -> None:
    error = parse_error(b"\xef\xbb\xbfid\n\xc0\n")
    assert error.byte_offset == 6


def test_csv_truncated_character_at_end_rejected() -> None:
    error = parse_error(b"id,name\n1,Zo\xc3")
    assert error.byte_offset == 12
    assert "ends in the middle" in error.reason


@pytest.mark.parametrize("chunk_size", [3, 5])
def test_csv_invalid_utf8_line_after_held_cr(chunk_size: int) -> None:
    # A chunk that ends in "\r" keeps the line open until the next chunk.
    error = parse_error_in_chunks(b"id\r1\r\xff", "data.csv", chunk_size)
    assert error.line == 3
    assert error.byte_offset == 5


# CSV: streaming and the size limit


def test_csv_reads_incrementally() -> None:
    stream = EndlessReader(b"id,name\n", b"1,Zo\xc3\xab\n")
    records = list(islice(iter_records(stream, "endless.csv"), 5))
    assert records == [{"id": "1", "name": "Zoë"}] * 5
    assert stream.bytes_read <= 2 * READ_CHUNK_BYTES


def test_csv_memory_stays_bounded() -> None:
    stream = EndlessReader(b"id,name,note\n", b'1,Zo\xc3\xab,"a, b"\n')
    tracemalloc.start()
    try:
        count = sum(1 for _ in islice(iter_records(stream, "endless.csv"), 200_000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 200_000
    assert stream.bytes_read > 2_500_000
    assert peak < 1_000_000


def test_csv_over_max_bytes_rejected() -> None:
    data = b"id\n" + b"1\n" * 600
    error = parse_error(data, max_bytes=1000)
    assert "1,000 bytes" in error.reason
    assert "limit" in error.reason


def test_max_bytes_names_limit_in_mib() -> None:
    stream = EndlessReader(b"id\n", b"1\n")
    with pytest.raises(UploadError) as caught:
        list(iter_records(stream, "endless.csv", max_bytes=2**20))
    assert "1 MiB (1,048,576 bytes)" in str(caught.value)
    assert stream.bytes_read <= 2**20 + READ_CHUNK_BYTES


def test_csv_at_max_bytes_accepted() -> None:
    data = b"id\n" + b"1\n" * 10
    assert len(parse(data, max_bytes=len(data))) == 10


def test_csv_records_yielded_before_size_error() -> None:
    stream = EndlessReader(b"id\n", b"1\n")
    records = iter_records(stream, "endless.csv", max_bytes=3 * READ_CHUNK_BYTES)
    assert next(records) == {"id": "1"}
    with pytest.raises(UploadError):
        list(records)


def test_iter_records_reads_nothing_before_next() -> None:
    stream = EndlessReader(b"id\n", b"1\n")
    records = iter_records(stream, "endless.csv")
    assert stream.bytes_read == 0
    next(records)
    assert stream.bytes_read > 0


# CSV: the shape of a Gainsight PX user export


def test_csv_px_user_export() -> None:
    data = (
        b"User ID,Job Title,Email,First Name,Last Name,Sign-Up Date,Role,Phone,"
        b"Time Zone\r\n"
        b"u1,Engineer,a@example.com,Alex,Doe,1559696309000,Admin,(555)-010-0001,"
        b"GMT+7\r\n"
        b"u2,Dev,b@example.com,Sam,Roe,2020-11-29T17:05:23,User,(555)-010-0002,"
        b"GMT+7"
    )
    records = parse(data, "users.csv")
    assert len(records) == 2
    assert records[0]["Sign-Up Date"] == "1559696309000"
    assert records[1]["Sign-Up Date"] == "2020-11-29T17:05:23"
    assert records[1]["Phone"] == "(555)-010-0002"
    assert records[1]["Time Zone"] == "GMT+7"


# JSON


def test_json_array_of_objects() -> None:
    data = b'[{"id": 1, "tags": ["a", "b"], "meta": {"x": null}}, {"id": 2}]'
    assert parse(data, "data.json") == [
        {"id": 1, "tags": ["a", "b"], "meta": {"x": None}},
        {"id": 2},
    ]


def test_json_single_object() -> None:
    data = '\ufeff{\n  "name": "Zoë",\n  "ok": true\n}\n'.encode()
    assert parse(data, "data.json") == [{"name": "Zoë", "ok": True}]


def test_json_numbers_exact() -> None:
    data = (
        b'[{"big": 1234567890123456789, "huge": 1180591620717411303424,'
        b' "tiny": 1e-300, "max": 1.7976931348623157e308, "tenth": 0.1,'
        b' "negative": -0.0}]'
    )
    [record] = parse(data, "data.json")
    assert record["big"] == 1234567890123456789
    assert record["huge"] == 2**70
    assert record["tiny"] == 1e-300
    assert record["max"] == 1.7976931348623157e308
    assert record["tenth"] == 0.1
    assert isinstance(record["big"], int)
    assert isinstance(record["tenth"], float)


@pytest.mark.parametrize(
    ("document", "kind"),
    [
        (b"42", "a number"),
        (b'"x"', "a string"),
        (b"null", "null"),
        (b"true", "a boolean"),
    ],
)
def test_json_scalar_top_level_rejected(document: bytes, kind: str) -> None:
    error = parse_error(document, "data.json")
    assert f"top level of the JSON is {kind}" in error.reason


def test_json_array_with_non_object_rejected() -> None:
    error = parse_error(b'[\n{"a": 1},\n{"a": 2},\n[3]\n]', "data.json")
    assert "index 2" in error.reason
    assert "an array" in error.reason
    assert error.line == 4


def test_json_malformed_rejected() -> None:
    error = parse_error(b'[\n  {"a": 1},\n  {"a" 2}\n]', "data.json")
    assert error.line == 3
    assert "column 8" in error.reason
    assert "invalid" in error.reason


def test_json_missing_comma_between_elements() -> None:
    error = parse_error(b'[{"a": 1}\n {"a": 2}]', "data.json")
    assert error.line == 2
    assert "delimiter" in error.reason


def test_json_extra_data_rejected() -> None:
    error = parse_error(b'[{"a": 1}] x', "data.json")
    assert "extra data" in error.reason


def test_json_file_of_lines_hints_at_ndjson() -> None:
    error = parse_error(b'{"a": 1}\n{"a": 2}\n', "data.json")
    assert error.line == 2
    assert ".ndjson" in error.reason


def test_json_duplicate_key_rejected() -> None:
    error = parse_error(b'[{"a": 1}, \n{"id": 1, "id": 2}]', "data.json")
    assert '"id"' in error.reason
    assert "index 1" in error.reason
    assert error.line == 2


def test_json_nested_duplicate_key_rejected() -> None:
    error = parse_error(b'{"a": {"b": 1, "b": 1}}', "data.json")
    assert '"b"' in error.reason


def test_json_depth_limit() -> None:
    # The top-level array is level 1 and the record is level 2.
    at_limit = b"[" + b'{"a": ' * 31 + b"1" + b"}" * 31 + b"]"
    assert len(parse(at_limit, "data.json", max_depth=32)) == 1
    over_limit = b"[\n" + b'{"a": ' * 32 + b"1" + b"}" * 32 + b"]"
    error = parse_error(over_limit, "data.json", max_depth=32)
    assert "more than 32 levels" in error.reason
    assert "column 187" in error.reason
    assert error.line == 2


def test_json_depth_limit_is_configurable() -> None:
    data = b'[{"a": [[1]]}]'
    assert len(parse(data, "data.json", max_depth=4)) == 1
    assert "more than 3 levels" in parse_error(data, "data.json", max_depth=3).reason


@pytest.mark.parametrize("opening", [b"[", b'{"a":'])
def test_json_very_deep_nesting_rejected(opening: bytes) -> None:
    error = parse_error(opening * 100_000, "data.json")
    assert "nested more than 32 levels" in error.reason


def test_json_brackets_in_strings_ignored() -> None:
    text = '[{"a": "' + "[{" * 100 + '\\"[[[", "b": "]]"}]'
    assert parse(text.encode(), "data.json") == [{"a": "[{" * 100 + '"[[[', "b": "]]"}]


def test_json_depth_after_escaped_backslash() -> None:
    # The string "x\\" ends at its second quote, so the arrays after it count.
    text = '{"a": "x\\\\", "b": ' + "[" * 40 + "]" * 40 + "}"
    assert "more than 32 levels" in parse_error(text.encode(), "data.json").reason
    assert len(parse(text.encode(), "data.json", max_depth=41)) == 1


def test_json_unterminated_string_rejected() -> None:
    error = parse_error(b'[{"a": "[[[[[[[[}]', "data.json", max_depth=3)
    assert error.line == 1


def test_json_empty_array_rejected() -> None:
    error = parse_error(b" [ \n ] ", "data.json")
    assert "no records" in error.reason


@pytest.mark.parametrize("data", [b"", b"  \n", b"\xef\xbb\xbf"])
def test_json_empty_file_rejected(data: bytes) -> None:
    assert str(parse_error(data, "data.json")) == "The file is empty."


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_json_non_finite_literal_rejected(literal: str) -> None:
    error = parse_error(f'[{{"a": {literal}}}]'.encode(), "data.json")
    assert literal in error.reason


def test_json_float_overflow_rejected() -> None:
    error = parse_error(b'{"a": 1e400}', "data.json")
    assert "1e400" in error.reason


def test_json_huge_integer_rejected() -> None:
    error = parse_error(b'{"a": ' + b"1" * 5000 + b"}", "data.json")
    assert "digits" in error.reason


def test_json_unpaired_surrogate_rejected() -> None:
    error = parse_error(b'[{"a": "x"},\n{"a": ["\\ud800"]}]', "data.json")
    assert "\\ud800" in error.reason
    assert "index 1" in error.reason
    assert error.line == 2


def test_json_paired_surrogates_accepted() -> None:
    data = b'{"smile": "\\ud83d\\ude00", "path": "C:\\\\ud800"}'
    assert parse(data, "data.json") == [{"smile": "😀", "path": "C:\\ud800"}]


def test_json_over_max_bytes_rejected() -> None:
    data = b"[" + b'{"a": 1},' * 200 + b'{"a": 1}]'
    error = parse_error(data, "data.json", max_bytes=1000)
    assert "1,000 bytes" in error.reason


def test_json_invalid_utf8_rejected() -> None:
    data = b'[{"a": "x"},\n' + b'{"a": "' + b"y" * READ_CHUNK_BYTES + b'\xff"}]'
    error = parse_error(data, "data.json")
    assert error.byte_offset == data.index(b"\xff")
    assert error.line == 2


# NDJSON


def test_ndjson_records() -> None:
    data = b'{"id": 1, "tags": [1, {"x": 2}]}\r\n\r\n  \n{"id": 12345678901234567890}'
    assert parse(data, "data.ndjson") == [
        {"id": 1, "tags": [1, {"x": 2}]},
        {"id": 12345678901234567890},
    ]


def test_ndjson_malformed_line_rejected() -> None:
    error = parse_error(b'{"a": 1}\n\n{"a": }\n', "data.ndjson")
    assert error.line == 3
    assert "column 7" in error.reason


def test_ndjson_non_object_line_rejected() -> None:
    error = parse_error(b'{"a": 1}\n[{"a": 2}]\n', "data.jsonl")
    assert error.line == 2
    assert "an array" in error.reason


def test_ndjson_duplicate_key_rejected() -> None:
    error = parse_error(b'{"a": 1}\n{"a": 1, "a": 2}\n', "data.ndjson")
    assert error.line == 2
    assert '"a"' in error.reason


def test_ndjson_depth_limit() -> None:
    at_limit = b'{"a": ' * 32 + b"1" + b"}" * 32 + b"\n"
    assert len(parse(at_limit, "data.ndjson")) == 1
    over_limit = b'{"a": ' * 33 + b"1" + b"}" * 33 + b"\n"
    assert "more than 32 levels" in parse_error(over_limit, "data.ndjson").reason
    error = parse_error(b'{"a": 1}\n' + b"[" * 100_000 + b"\n", "data.ndjson")
    assert error.line == 2
    assert "column 33" in error.reason


def test_ndjson_non_finite_literal_rejected() -> None:
    error = parse_error(b'{"a": NaN}\n', "data.ndjson")
    assert error.line == 1
    assert "NaN" in error.reason


def test_ndjson_unpaired_surrogate_rejected() -> None:
    error = parse_error(b'{"a": "\\ud83d"}\n{"a": "\\udc00"}\n', "data.ndjson")
    assert "\\ud83d" in error.reason
    assert error.line == 1


def test_ndjson_trailing_data_rejected() -> None:
    error = parse_error(b'{"a": 1}\n{"a": 2} {"a": 3}\n', "data.ndjson")
    assert error.line == 2
    assert "column 10" in error.reason
    assert "extra data" in error.reason


@pytest.mark.parametrize("data", [b"", b"\n \r\n"])
def test_ndjson_empty_file_rejected(data: bytes) -> None:
    assert str(parse_error(data, "data.ndjson")) == "The file is empty."


def test_ndjson_invalid_utf8_after_first_chunk() -> None:
    prefix = b'{"name": "Zo\xc3\xab"}\n' * 5000
    assert len(prefix) > READ_CHUNK_BYTES
    error = parse_error(prefix + b'{"name": "\xc3("}\n', "data.ndjson")
    assert error.byte_offset == len(prefix) + 10
    assert error.line == 5001


def test_ndjson_reads_incrementally() -> None:
    stream = EndlessReader(b"", b'{"id": 1}\n')
    records = list(islice(iter_records(stream, "endless.ndjson"), 5))
    assert records == [{"id": 1}] * 5
    assert stream.bytes_read <= 2 * READ_CHUNK_BYTES


# Property-based round trips

# Characters for generated JSON text. Surrogates cannot be encoded as UTF-8.
_TEXT = st.characters(blacklist_categories=("Cs",))


@st.composite
def csv_tables(draw: st.DrawFn) -> tuple[bytes, list[dict[str, str]], int]:
    """Draw CSV bytes written by csv.writer, the records they hold and a chunk size."""
    delimiter = draw(st.sampled_from(CSV_DELIMITERS))
    quoting = draw(
        st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC])
    )
    line_end = draw(st.sampled_from(["\r\n", "\n"]))

    # Another candidate delimiter outside quotes could make the delimiter
    # ambiguous, and csv.writer quotes only its own delimiter.
    excluded = "".join(d for d in CSV_DELIMITERS if d != delimiter)
    if line_end == "\n" and quoting == csv.QUOTE_MINIMAL:
        # Python 3.11's csv.writer quotes a line-break character only when its
        # lineterminator contains it, so with "\n" it writes a bare "\r" unquoted.
        excluded += "\r"

    # Characters that CSV quoting, line splitting and UTF-8 decoding treat
    # specially are drawn far more often than at random.
    special = [
        c for c in ('"', "\r", "\n", delimiter, " ", "é", "😀") if c not in excluded
    ]
    alphabet = st.sampled_from(special) | st.characters(
        blacklist_categories=("Cs",), blacklist_characters=excluded
    )

    # A BOM at the start of the file is stripped, so no name may start with one.
    names = st.text(alphabet, min_size=1, max_size=8).filter(
        lambda name: name.strip() != "" and not name.startswith("\ufeff")
    )
    header = draw(st.lists(names, min_size=1, max_size=5, unique=True))
    rows = draw(
        st.lists(
            st.lists(
                st.text(alphabet, max_size=12),
                min_size=len(header),
                max_size=len(header),
            ),
            min_size=1,
            max_size=8,
        )
    )

    buffer = io.StringIO()
    writer = csv.writer(
        buffer, delimiter=delimiter, quoting=quoting, lineterminator=line_end
    )
    writer.writerow(header)
    writer.writerows(rows)
    text = buffer.getvalue()

    if draw(st.booleans()):
        text = text.removesuffix(line_end)
    data = text.encode()
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    records = [dict(zip(header, row, strict=True)) for row in rows]
    return data, records, draw(st.integers(min_value=1, max_value=64))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(csv_tables())
def test_csv_round_trip(table: tuple[bytes, list[dict[str, str]], int]) -> None:
    data, records, chunk_size = table
    assert parse_in_chunks(data, "data.csv", chunk_size) == records


_JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(_TEXT)
)
_FLAT_RECORDS = st.lists(
    st.dictionaries(st.text(_TEXT, max_size=8), _JSON_SCALARS, max_size=6),
    min_size=1,
    max_size=8,
)


@settings(max_examples=300)
@given(_FLAT_RECORDS, st.booleans(), st.integers(min_value=1, max_value=64))
def test_json_round_trip(
    records: list[dict[str, Any]], ensure_ascii: bool, chunk_size: int
) -> None:
    data = json.dumps(records, ensure_ascii=ensure_ascii, indent=1).encode()
    parsed = parse_in_chunks(data, "data.json", chunk_size)
    assert parsed == records
    assert _json_types(parsed) == _json_types(records)


@settings(max_examples=300)
@given(
    _FLAT_RECORDS,
    st.booleans(),
    st.sampled_from(["\n", "\r\n"]),
    st.integers(min_value=1, max_value=64),
)
def test_ndjson_round_trip(
    records: list[dict[str, Any]], ensure_ascii: bool, line_end: str, chunk_size: int
) -> None:
    lines = [json.dumps(record, ensure_ascii=ensure_ascii) for record in records]
    data = line_end.join(lines).encode()
    parsed = parse_in_chunks(data, "data.ndjson", chunk_size)
    assert parsed == records
    assert _json_types(parsed) == _json_types(records)


def _json_types(records: list[dict[str, Any]]) -> list[dict[str, type]]:
    """Return the Python type of every value, since 1 == 1.0 == True."""
    return [{key: type(value) for key, value in record.items()} for record in records]
