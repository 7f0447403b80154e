"""Parse uploaded CSV, JSON and NDJSON files into records, one dict per record.

CSV and NDJSON are read incrementally, so memory stays bounded by the read chunk
plus the longest record, whatever the file size. A JSON document is read whole, up
to ``max_bytes``. Every problem raises UploadError, whose message is meant for the
user who uploaded the file.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
import sys
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any, BinaryIO

__all__ = ["UploadError", "detect_format", "iter_records"]

READ_CHUNK_BYTES = 64 * 1024
# Number of bytes passed to detect_format, and of non-blank lines that CSV delimiter
# detection parses.
HEAD_BYTES = 64 * 1024
DELIMITER_SAMPLE_LINES = 20

CSV_DELIMITERS = (",", ";", "\t", "|")
_EXTENSION_FORMATS = {
    "csv": "csv",
    "tsv": "csv",
    "json": "json",
    "ndjson": "ndjson",
    "jsonl": "ndjson",
}
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
# JSON allows exactly these four whitespace characters between tokens.
_JSON_WHITESPACE = " \t\n\r"
_JSON_WHITESPACE_RUN = re.compile(r"[ \t\n\r]*")
# Text up to the next bracket, skipping whole strings. The possessive quantifiers
# (Python 3.11+) keep the regex engine from storing backtracking state.
_JSON_UP_TO_BRACKET = re.compile(
    r'(?:[^"\[\]{}]++|"[^"\\]*+(?:\\.[^"\\]*+)*+")*+', re.DOTALL
)
_JSON_BRACKETS = re.compile(r"[\[\]{}]+")
# A \uD800-\uDFFF escape, the only way a surrogate can get into a decoded string.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# In CSV, "\r\n", "\r" and "\n" each end a physical line, as in csv.reader. JSON Lines
# separates records with "\n" only, and a "\r" before it is JSON whitespace.
_CSV_LINE_END = re.compile(r"\r\n|\r|\n")
_NDJSON_LINE_END = re.compile(r"\n")


class UploadError(ValueError):
    """An upload rejected whole; str() is the user-facing message.

    ``line`` is the 1-based physical line where the problem is, when known. For a
    record that spans several lines it is the line where the record starts.
    ``byte_offset`` is the 0-based offset from the start of the file, set for
    invalid UTF-8. ``reason`` is the message without the line prefix.
    """

    def __init__(
        self,
        reason: str,
        *,
        line: int | None = None,
        byte_offset: int | None = None,
    ) -> None:
        self.reason = reason
        self.line = line
        self.byte_offset = byte_offset
        message = reason if line is None else f"Line {line}: {reason}"
        super().__init__(message)


# Format detection


def detect_format(filename: str, head: bytes) -> str:
    """Return "csv", "json" or "ndjson" for an upload.

    The extension decides first (.csv and .tsv are CSV, .json is JSON, .ndjson and
    .jsonl are NDJSON). Other names, including .txt, are judged by ``head``, the
    first bytes of the file: "[" starts JSON, "{" starts JSON unless the first line
    is a whole object followed by more lines, and other UTF-8 text is CSV.
    Raise UploadError for an empty head or for content that is none of these.
    """
    basename = re.split(r"[\\/]", filename)[-1]
    extension = basename.rpartition(".")[2].lower() if "." in basename else ""
    if extension in _EXTENSION_FORMATS:
        return _EXTENSION_FORMATS[extension]

    content = head.removeprefix(_UTF8_BOM).lstrip(_JSON_WHITESPACE.encode())
    if not content:
        raise UploadError("The file is empty.")
    if b"\x00" in content:
        hint = (
            " If it is UTF-16 text, save it as UTF-8."
            if head[:2] in _UTF16_BOMS
            else ""
        )
        raise UploadError(
            f'"{basename}" is not CSV, JSON or NDJSON because it contains binary data'
            f" (NUL bytes).{hint}"
        )
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        # A multi-byte character cut off at the end of the head is still text.
        if error.reason != "unexpected end of data":
            raise UploadError(
                f'"{basename}" is not CSV, JSON or NDJSON because it is not UTF-8 text.'
                " Save it as UTF-8 and upload it again."
            ) from None
        text = content[: error.start].decode("utf-8")

    if text.startswith("["):
        return "json"
    if text.startswith("{"):
        return "ndjson" if _starts_with_object_line(text) else "json"
    return "csv"


def _starts_with_object_line(text: str) -> bool:
    """Return whether the first line is a whole JSON object and more lines follow."""
    first_line, newline, rest = text.partition("\n")
    if not newline or not rest.strip(_JSON_WHITESPACE):
        return False
    try:
        value = json.loads(first_line)
    except (ValueError, RecursionError):
        return False
    return isinstance(value, dict)


# Entry point


def iter_records(
    fileobj: BinaryIO,
    filename: str,
    *,
    max_bytes: int = 100 * 2**20,
    max_depth: int = 32,
) -> Iterator[dict[str, Any]]:
    """Yield the records of an uploaded file, one dict per record.

    CSV values are the strings as written, and an empty cell is "". JSON values are
    what json gives, with exact integers, and nested objects and arrays are kept.
    ``max_depth`` limits the nesting of JSON arrays and objects, counting the
    top-level array. Nothing is read before the first next() call. Raise UploadError
    on the first problem found, possibly after some records were yielded, so the
    caller must discard those records.
    """
    source = _ByteSource(fileobj, max_bytes)
    file_format = detect_format(filename, source.read_head(HEAD_BYTES))
    if file_format == "csv":
        yield from _iter_csv_records(source)
    elif file_format == "ndjson":
        yield from _iter_ndjson_records(source, max_depth)
    else:
        yield from _iter_json_records(source, max_depth)


# Reading bytes and decoding UTF-8


class _ByteSource:
    """Reader of an upload's bytes that enforces the size limit."""

    def __init__(self, fileobj: BinaryIO, max_bytes: int) -> None:
        self._fileobj = fileobj
        self._max_bytes = max_bytes
        self._head = b""
        self.bytes_read = 0

    def _read(self, size: int) -> bytes:
        data = self._fileobj.read(size)
        self.bytes_read += len(data)
        if self.bytes_read > self._max_bytes:
            raise UploadError(
                f"The file is larger than the upload limit of"
                f" {_format_size(self._max_bytes)}. Split it into smaller files."
            )
        return data

    def read_head(self, size: int) -> bytes:
        """Read up to ``size`` bytes and keep them for the next chunks() call."""
        parts = []
        remaining = size
        while remaining > 0:
            data = self._read(remaining)
            if not data:
                break
            parts.append(data)
            remaining -= len(data)
        self._head = b"".join(parts)
        return self._head

    def chunks(self) -> Iterator[bytes]:
        """Yield the head, then the rest of the file in chunks."""
        if self._head:
            head, self._head = self._head, b""
            yield head
        while data := self._read(READ_CHUNK_BYTES):
            yield data

    def read_all(self) -> bytearray:
        # Appending to a bytearray avoids holding the chunks and their join at once.
        data = bytearray()
        for chunk in self.chunks():
            data += chunk
        return data


def _format_size(size: int) -> str:
    for unit, name in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name} ({size:,} bytes)"
    return f"{size:,} bytes"


def _invalid_utf8_error(
    data: bytes | bytearray, error: UnicodeDecodeError, byte_offset: int, line: int
) -> UploadError:
    """Build the error for bytes that are not UTF-8 at ``byte_offset`` in the file."""
    if error.reason == "unexpected end of data":
        problem = (
            "The file ends in the middle of a UTF-8 character that starts at byte"
            f" offset {byte_offset}."
        )
    else:
        problem = (
            f"The byte 0x{data[error.start]:02X} at byte offset {byte_offset} is not"
            " valid UTF-8."
        )
    return UploadError(
        f"{problem} Save the file as UTF-8 and upload it again.",
        line=line,
        byte_offset=byte_offset,
    )


class _TextLines:
    """Lines of a UTF-8 byte stream, each with its line ending.

    A leading byte order mark is dropped. ``line_end`` decides where lines end.
    """

    def __init__(self, chunks: Iterable[bytes], line_end: re.Pattern[str]) -> None:
        self._chunks = chunks
        self._line_end = line_end
        self._split_on_cr = line_end.search("\r") is not None
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._bytes_decoded = 0
        self._lines_yielded = 0
        # The unfinished last line, and whether a "\r" that ends it is held back
        # until the next text shows whether "\n" follows.
        self._partial: list[str] = []
        self._cr_held = False

    def __iter__(self) -> Iterator[str]:
        at_start = True
        for chunk in chain(self._chunks, [b""]):
            final = not chunk
            text = self._decode(chunk, final)
            if at_start and text:
                text = text.removeprefix("\ufeff")
                at_start = False
            yield from self._split(text, final)

    def _decode(self, chunk: bytes, final: bool) -> str:
        buffered = self._decoder.getstate()[0]
        try:
            text = self._decoder.decode(chunk, final)
        except UnicodeDecodeError as error:
            # error.start counts from the bytes the decoder held back from the
            # previous chunk, so subtract them to get the offset in the file.
            data = buffered + chunk
            byte_offset = self._bytes_decoded - len(buffered) + error.start
            valid_text = data[: error.start].decode("utf-8")
            held_cr = "\r" if self._cr_held else ""
            line_ends = len(self._line_end.findall(held_cr + valid_text))
            line = self._lines_yielded + 1 + line_ends
            raise _invalid_utf8_error(data, error, byte_offset, line) from None
        self._bytes_decoded += len(chunk)
        return text

    def _split(self, text: str, final: bool) -> Iterator[str]:
        if not text and not final:
            return
        partial = self._partial
        if self._cr_held:
            self._cr_held = False
            if text.startswith("\n"):
                partial.append("\r\n")
                text = text[1:]
            else:
                partial.append("\r")
            yield self._emit("".join(partial))
            partial.clear()
        if self._split_on_cr and text.endswith("\r") and not final:
            text = text[:-1]
            self._cr_held = True
        start = 0
        for match in self._line_end.finditer(text):
            end = match.end()
            if partial:
                partial.append(text[start:end])
                line = "".join(partial)
                partial.clear()
            else:
                line = text[start:end]
            yield self._emit(line)
            start = end
        if start < len(text):
            partial.append(text[start:])
        if final and partial:
            yield self._emit("".join(partial))
            partial.clear()

    def _emit(self, line: str) -> str:
        self._lines_yielded += 1
        return line


def _decode_whole(data: bytes | bytearray) -> str:
    """Decode a whole file as UTF-8 and drop a leading byte order mark."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise _invalid_utf8_error(data, error, error.start, line) from None
    return text.removeprefix("\ufeff")


# CSV


def _iter_csv_records(source: _ByteSource) -> Iterator[dict[str, str]]:
    lines = iter(_TextLines(source.chunks(), _CSV_LINE_END))
    sample, complete = _read_sample(lines)
    delimiter = _detect_delimiter(sample, complete)
    reader = csv.reader(chain(sample, lines), delimiter=delimiter, strict=True)

    header: list[str] | None = None
    record_count = 0
    last_line = 0
    while True:
        first_line = last_line + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise _csv_syntax_error(error, first_line) from None
        last_line = reader.line_num
        if not row:
            continue  # blank line
        if header is None:
            _check_header(row, first_line)
            header = row
            continue
        if len(row) != len(header):
            raise UploadError(
                f"The row has {_count(len(row), 'field')}, but the header has"
                f" {_count(len(header), 'column')}. Quote values that contain the"
                f" delimiter {_describe_delimiter(delimiter)}.",
                line=first_line,
            )
        record_count += 1
        yield dict(zip(header, row, strict=True))

    if header is None:
        raise UploadError("The file is empty.")
    if record_count == 0:
        raise UploadError("The file has a header row but no records.")


def _read_sample(lines: Iterator[str]) -> tuple[list[str], bool]:
    """Read lines until DELIMITER_SAMPLE_LINES of them are not blank.

    Return the lines and whether they are the whole file.
    """
    sample = []
    filled = 0
    for line in lines:
        sample.append(line)
        if line.strip("\r\n"):
            filled += 1
            if filled == DELIMITER_SAMPLE_LINES:
                return sample, False
    return sample, True


def _detect_delimiter(sample: list[str], complete: bool) -> str:
    """Pick the delimiter that splits the header into the most consistent columns.

    A candidate scores first by giving the header more than one column, then by
    giving every sampled record as many fields as the header, then by the number of
    columns. Ties go to the earlier candidate in CSV_DELIMITERS, so a file with a
    single column is read with ",".
    """
    best_delimiter = CSV_DELIMITERS[0]
    best_score: tuple[bool, bool, int] | None = None
    for delimiter in CSV_DELIMITERS:
        try:
            counts = [
                len(row) for row in csv.reader(sample, delimiter=delimiter) if row
            ]
        except csv.Error:
            continue
        if not counts:
            continue
        header_count, record_counts = counts[0], counts[1:]
        if not complete:
            # The sample may end inside a record, so the last one is unreliable.
            record_counts = record_counts[:-1]
        consistent = all(count == header_count for count in record_counts)
        score = (header_count > 1, consistent, header_count)
        if best_score is None or score > best_score:
            best_delimiter, best_score = delimiter, score
    return best_delimiter


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _describe_delimiter(delimiter: str) -> str:
    return "tab" if delimiter == "\t" else f'"{delimiter}"'


def _check_header(header: list[str], line: int) -> None:
    positions: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        if not name.strip():
            raise UploadError(
                f"Column {position} of the header has no name. Give every column a"
                " name.",
                line=line,
            )
        if name in positions:
            raise UploadError(
                f'The header has the column "{name}" twice, at positions'
                f" {positions[name]} and {position}. Column names must be unique.",
                line=line,
            )
        positions[name] = position


def _csv_syntax_error(error: csv.Error, line: int) -> UploadError:
    message = str(error)
    if message == "unexpected end of data":
        reason = "A quoted field that starts in this row is never closed."
    elif message.startswith("field larger than field limit"):
        reason = (
            f"A field is longer than the limit of {csv.field_size_limit():,}"
            " characters."
        )
    else:
        reason = (
            f"The row is not valid CSV ({message}). Inside a quoted field, write a"
            ' quote character as two quotes ("").'
        )
    return UploadError(reason, line=line)


# JSON and NDJSON


class _RecordError(Exception):
    """Error raised inside a json hook, where the location is not yet known."""


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    record = dict(pairs)
    if len(record) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RecordError(f'An object has the key "{key}" more than once.')
            seen.add(key)
    return record


def _reject_constant(literal: str) -> float:
    raise _RecordError(f"{literal} is not a valid JSON number.")


def _parse_finite_float(literal: str) -> float:
    value = float(literal)
    if value in (float("inf"), float("-inf")):
        raise _RecordError(f"The number {literal} is too large for a float.")
    return value


def _reject_surrogates(value: Any) -> None:
    """Raise _RecordError if a string in ``value`` has an unpaired surrogate.

    json decodes a paired escape such as "\\ud83d\\ude00" to one character but
    keeps an unpaired one, which has no UTF-8 encoding, so it could not be stored.
    """
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as error:
        code_point = ord(error.object[error.start])
        raise _RecordError(
            f"A string contains the escape \\u{code_point:04x}, an unpaired UTF-16"
            " surrogate that is not a valid character."
        ) from None


def _make_decoder() -> json.JSONDecoder:
    return json.JSONDecoder(
        object_pairs_hook=_object_without_duplicates,
        parse_constant=_reject_constant,
        parse_float=_parse_finite_float,
    )


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def _find_too_deep(text: str, max_depth: int) -> int | None:
    """Return the index of the first bracket nested deeper than ``max_depth``.

    json recurses once per level and raises RecursionError near 1000 levels under
    the default recursion limit, so the depth is checked first with a scan that
    skips strings.
    """
    if text.count("[") + text.count("{") <= max_depth:
        return None
    depth = 0
    index = 0
    while True:
        index = _JSON_UP_TO_BRACKET.match(text, index).end()
        brackets = _JSON_BRACKETS.match(text, index)
        if brackets is None:
            if index == len(text):
                return None
            # A quote that opens no complete string. json rejects it later, so
            # skip it and count any brackets after it.
            index += 1
            continue
        for offset, bracket in enumerate(brackets.group()):
            if bracket in "[{":
                depth += 1
                if depth > max_depth:
                    return index + offset
            else:
                depth -= 1
        index = brackets.end()


def _depth_error(max_depth: int, column: int, line: int) -> UploadError:
    return UploadError(
        f"The JSON is nested more than {max_depth} levels deep at column {column}.",
        line=line,
    )


def _nesting_error(line: int) -> UploadError:
    return UploadError("The JSON is nested too deeply to parse.", line=line)


def _json_syntax_error(
    error: json.JSONDecodeError, line: int | None = None
) -> UploadError:
    """Convert a json error to an UploadError, with ``line`` in place of lineno."""
    # json ends some messages with "starting at", meaning the reported column.
    detail = error.msg.removesuffix(" starting at")
    detail = detail[:1].lower() + detail[1:]
    return UploadError(
        f"The JSON is invalid at column {error.colno} ({detail}).",
        line=error.lineno if line is None else line,
    )


def _too_many_digits_error(line: int | None) -> UploadError:
    # json.JSONDecodeError is handled before this, and the hooks raise _RecordError,
    # so the only other ValueError from decoding is int()'s digit limit.
    return UploadError(
        f"An integer has more than {sys.get_int_max_str_digits()} digits.",
        line=line,
    )


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _skip_whitespace(text: str, index: int) -> int:
    match = _JSON_WHITESPACE_RUN.match(text, index)
    assert match is not None  # the pattern also matches the empty string
    return match.end()


def _iter_json_records(source: _ByteSource, max_depth: int) -> Iterator[dict[str, Any]]:
    # NOTE: a JSON document is read whole, and its size is capped by max_bytes. Peak
    # memory is the bytes plus the decoded str, which CPython stores with 1, 2 or 4
    # bytes per character, so it can reach several times the file size.
    text = _decode_whole(source.read_all())
    start = _skip_whitespace(text, 0)
    if start == len(text):
        raise UploadError("The file is empty.")
    too_deep = _find_too_deep(text, max_depth)
    if too_deep is not None:
        column = too_deep - text.rfind("\n", 0, too_deep)
        raise _depth_error(max_depth, column, _line_of(text, too_deep))

    decoder = _make_decoder()
    check_surrogates = _SURROGATE_ESCAPE.search(text) is not None
    try:
        if text[start] == "[":
            yield from _iter_json_array(text, start, decoder, check_surrogates)
            return
        value, end = _decode_value(decoder, text, start, check_surrogates)
        end = _skip_whitespace(text, end)
        if end != len(text):
            raise json.JSONDecodeError("Extra data", text, end)
    except json.JSONDecodeError as error:
        upload_error = _json_syntax_error(error)
        if error.msg == "Extra data" and text[start] == "{":
            upload_error = UploadError(
                f"{upload_error.reason} If the file has one JSON object per line,"
                " give it the .ndjson extension.",
                line=upload_error.line,
            )
        raise upload_error from None
    if not isinstance(value, dict):
        raise UploadError(
            f"The top level of the JSON is {_json_kind(value)}, but it must be an"
            " array of objects or a single object.",
            line=_line_of(text, start),
        )
    yield value


def _decode_value(
    decoder: json.JSONDecoder, text: str, index: int, check_surrogates: bool
) -> tuple[Any, int]:
    """Decode the JSON value at ``index`` and return it with the index after it.

    Raise json.JSONDecodeError for invalid syntax and UploadError for any other
    problem. ``check_surrogates`` turns on the check for unpaired surrogates, which
    is needed only when ``text`` contains a surrogate escape.
    """
    try:
        value, end = decoder.raw_decode(text, index)
        if check_surrogates:
            _reject_surrogates(value)
    except _RecordError as error:
        raise UploadError(str(error), line=_line_of(text, index)) from None
    except json.JSONDecodeError:
        raise
    except ValueError:
        raise _too_many_digits_error(_line_of(text, index)) from None
    except RecursionError:
        # Only reachable when max_depth is near the recursion limit.
        raise _nesting_error(_line_of(text, index)) from None
    return value, end


def _iter_json_array(
    text: str, start: int, decoder: json.JSONDecoder, check_surrogates: bool
) -> Iterator[dict[str, Any]]:
    """Yield the objects of the top-level array that opens at ``start``.

    Elements are decoded one at a time so that an error can name the element.
    """
    index = _skip_whitespace(text, start + 1)
    if text.startswith("]", index):
        raise UploadError("The JSON array is empty, so the file has no records.")
    element = 0
    while True:
        try:
            value, end = _decode_value(decoder, text, index, check_surrogates)
        except UploadError as error:
            raise UploadError(
                f"{error.reason} The problem is in the array element at index"
                f" {element}.",
                line=error.line,
            ) from None
        if not isinstance(value, dict):
            raise UploadError(
                f"The array element at index {element} is {_json_kind(value)}, but"
                " every element must be an object, one per record.",
                line=_line_of(text, index),
            )
        yield value
        element += 1
        index = _skip_whitespace(text, end)
        if text.startswith(",", index):
            index = _skip_whitespace(text, index + 1)
        elif text.startswith("]", index):
            break
        else:
            raise json.JSONDecodeError("Expecting ',' delimiter", text, index)
    end = _skip_whitespace(text, index + 1)
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)


def _iter_ndjson_records(
    source: _ByteSource, max_depth: int
) -> Iterator[dict[str, Any]]:
    decoder = _make_decoder()
    record_count = 0
    for line_number, line in enumerate(
        _TextLines(source.chunks(), _NDJSON_LINE_END), start=1
    ):
        if not line.strip(_JSON_WHITESPACE):
            continue
        # Without its line end, a line cut short reports the column where it
        # stops instead of column 1 of the next line.
        line = line.rstrip("\r\n")
        too_deep = _find_too_deep(line, max_depth)
        if too_deep is not None:
            raise _depth_error(max_depth, too_deep + 1, line_number)
        check_surrogates = _SURROGATE_ESCAPE.search(line) is not None
        try:
            value, end = _decode_value(
                decoder, line, _skip_whitespace(line, 0), check_surrogates
            )
            end = _skip_whitespace(line, end)
            if end != len(line):
                raise json.JSONDecodeError("Extra data", line, end)
        except UploadError as error:
            raise UploadError(error.reason, line=line_number) from None
        except json.JSONDecodeError as error:
            raise _json_syntax_error(error, line_number) from None
        if not isinstance(value, dict):
            raise UploadError(
                f"The line is {_json_kind(value)}, but every line of an NDJSON file"
                " must be a JSON object.",
                line=line_number,
            )
        record_count += 1
        yield value
    if record_count == 0:
        raise UploadError("The file is empty.")
