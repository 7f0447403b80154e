"""Validate and apply the settings of a manually configured ("Advanced") destination.

A manual destination sets its own HTTP method, content format, URL with record macros,
request headers, excluded attributes and record batching. The functions here check
those settings when the user saves them (raising ManualConfigError) and apply them to
records when a worker sends them (raising RecordError for a record that cannot be
sent). They are pure functions without Django imports, so they run the same in forms,
views and workers.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import SplitResult, quote, urlencode, urlsplit

K = TypeVar("K")

PX_API_HOSTS = ("api.aptrinsic.com", "api-eu.aptrinsic.com", "api-us2.aptrinsic.com")
API_KEY_HEADER = "X-APTRINSIC-API-KEY"


class ManualConfigError(ValueError):
    """A manual destination setting is invalid. The message names the value and fix."""


class RecordError(ValueError):
    """One record cannot be sent, for example because a URL macro's value is missing."""


# --- Request headers ---------------------------------------------------------------

# RFC 7230, section 3.2.6: token = 1*tchar.
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

# RFC 7230 field-value characters without the obsolete non-ASCII range (obs-text):
# HTAB, SP and VCHAR. http.client would send other characters as Latin-1 and raise
# for characters outside Latin-1.
_HEADER_VALUE_RE = re.compile(r"[\t\x20-\x7e]*")

# Headers that the HTTP client computes from the URL and body. A user-supplied value
# would contradict the request that is actually sent.
_CLIENT_HEADERS = {
    "host": "the HTTP client sets it from the URL",
    "content-length": "the HTTP client sets it from the body",
    "transfer-encoding": "the HTTP client sets it from the body",
    "connection": "the HTTP client manages connections",
}


def parse_headers(text: str) -> list[tuple[str, str]]:
    """Parse header text of the form ``name:value,name:value`` into (name, value) pairs.

    Pairs are split on commas and each pair on its first colon, so values may contain
    colons but not commas. Whitespace around names and values is stripped, and empty
    pairs (such as after a trailing comma) are skipped.

    Raise ManualConfigError for a pair without a colon, a name that is not an RFC 7230
    token, a value with control or non-ASCII characters, or a duplicate name
    (case-insensitive). The API key header, Content-Type and the headers that the HTTP
    client sets itself (Host, Content-Length, Transfer-Encoding, Connection) are
    rejected too.
    """
    headers: list[tuple[str, str]] = []
    seen: set[str] = set()
    for pair in text.split(","):
        if not pair.strip():
            continue
        name, colon, value = pair.partition(":")
        name = name.strip()
        value = value.strip()
        if not colon:
            raise ManualConfigError(_missing_colon_message(pair.strip(), headers))
        _check_header_name(name, pair.strip())
        _check_header_value(name, value)

        lowered = name.lower()
        if lowered in seen:
            raise ManualConfigError(
                f'Header "{name}" is set more than once. Keep one "{name}" pair.'
            )
        seen.add(lowered)
        headers.append((name, value))
    return headers


def _missing_colon_message(pair: str, previous: list[tuple[str, str]]) -> str:
    message = f'Header "{pair}" has no ":". Write headers as name:value,name:value.'
    if previous:
        # A fragment without a colon right after a valid pair is most often the rest
        # of that pair's value, cut off at a comma.
        last_name = previous[-1][0]
        message += (
            f' Header values cannot contain commas, so if "{pair}" is part of the'
            f' value of "{last_name}", the value has to be written without commas.'
        )
    return message


def _check_header_name(name: str, pair: str) -> None:
    if not name:
        raise ManualConfigError(
            f'Header "{pair}" has an empty name. Write headers as'
            " name:value,name:value."
        )
    if not _TOKEN_RE.fullmatch(name):
        raise ManualConfigError(
            f'Header name "{name}" is invalid. A header name may contain only letters,'
            " digits and !#$%&'*+-.^_`|~ (no spaces)."
        )

    lowered = name.lower()
    if lowered == API_KEY_HEADER.lower():
        raise ManualConfigError(
            f'Header "{name}" cannot be set here because the API key comes from the'
            " destination's credential and cannot be overridden. Remove it from the"
            " headers."
        )
    if lowered == "content-type":
        raise ManualConfigError(
            f'Header "{name}" conflicts with the content format. Remove it from the'
            " headers and pick the content format instead."
        )
    if lowered in _CLIENT_HEADERS:
        raise ManualConfigError(
            f'Header "{name}" cannot be set here because {_CLIENT_HEADERS[lowered]}.'
            " Remove it from the headers."
        )


def _check_header_value(name: str, value: str) -> None:
    if "\r" in value or "\n" in value:
        raise ManualConfigError(
            f'Header "{name}" has a line break in its value. Remove the line break.'
        )
    if not _HEADER_VALUE_RE.fullmatch(value):
        raise ManualConfigError(
            f'Header "{name}" has a control or non-ASCII character in its value.'
            " Header values may contain only printable ASCII characters."
        )


# --- URL templates -----------------------------------------------------------------


@dataclass(frozen=True)
class _Macro:
    """A ``{attribute}`` macro in a URL template and its 0-based start offset."""

    name: str
    offset: int


def _parse_template(template: str) -> tuple[str | _Macro, ...]:
    """Split a URL template into literal text and macros, unescaping ``{{`` and ``}}``.

    Raise ManualConfigError for an unbalanced or empty brace, naming its 1-based
    character position.
    """
    return _parse_template_cached(template)


@lru_cache(maxsize=256)
def _parse_template_cached(template: str) -> tuple[str | _Macro, ...]:
    parts: list[str | _Macro] = []
    literal: list[str] = []
    i = 0
    while i < len(template):
        char = template[i]
        if template.startswith(("{{", "}}"), i):
            literal.append(char)
            i += 2
        elif char == "{":
            end = _find_macro_end(template, i)
            name = template[i + 1 : end]
            if not name.strip():
                raise ManualConfigError(
                    f"URL has an empty macro {{{name}}} at character {i + 1}. Put an"
                    ' attribute name between the braces, for example "{User ID}".'
                )
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_Macro(name, i))
            i = end + 1
        elif char == "}":
            raise ManualConfigError(
                f'URL has an unmatched "}}" at character {i + 1}. Write "}}}}" for a'
                " literal brace."
            )
        else:
            literal.append(char)
            i += 1
    if literal:
        parts.append("".join(literal))
    return tuple(parts)


def _find_macro_end(template: str, start: int) -> int:
    """Return the index of the "}" that closes the macro opened at ``start``."""
    for i in range(start + 1, len(template)):
        if template[i] == "}":
            return i
        if template[i] == "{":
            break
    raise ManualConfigError(
        f'URL has a "{{" at character {start + 1} that is not closed. Close the macro'
        ' with "}" or write "{{" for a literal brace.'
    )


def macro_names(url_template: str) -> list[str]:
    """Return the attribute names of the template's macros, each once, in order.

    Raise ManualConfigError if the braces are unbalanced.
    """
    names: list[str] = []
    for part in _parse_template(url_template):
        if isinstance(part, _Macro) and part.name not in names:
            names.append(part.name)
    return names


def validate_url_macros(url_template: str, attribute_names: Iterable[str]) -> None:
    """Raise ManualConfigError if a macro names an attribute that the Nexset lacks."""
    known = set(attribute_names)
    unknown = [name for name in macro_names(url_template) if name not in known]
    if unknown:
        listed = ", ".join(f'"{name}"' for name in unknown)
        raise ManualConfigError(
            f"URL macros refer to attributes that the Nexset does not have: {listed}."
            " Use attribute names exactly as the Nexset spells them."
        )


def resolve_url(
    url_template: str,
    base_url: str,
    *,
    allowed_hosts: Iterable[str],
    allow_http_hosts: Iterable[str] = (),
) -> str:
    """Join a path to ``base_url`` or check a full URL, and return the URL template.

    ``url_template`` is either a path starting with a single "/", which is appended to
    ``base_url`` (the credential's region base, such as "https://api.aptrinsic.com"),
    or a full URL. The result keeps its macros and brace escapes for render_url.

    The URL must use https with a host from ``allowed_hosts``, or http with a host from
    ``allow_http_hosts``. Entries are "host" (default port only) or "host:port".
    Hosts in ``allow_http_hosts`` may also be used with https. Macros may appear only
    in the path and query. Raise ManualConfigError for anything else, including
    user information (``user@host``), a fragment, whitespace or control characters,
    and "." or ".." path segments.
    """
    template = url_template.strip()
    if not template:
        raise ManualConfigError(
            'URL is empty. Enter a path such as "/v1/users" or a full https URL.'
        )
    if template.startswith("//"):
        raise ManualConfigError(
            f'URL "{template}" starts with "//". Start a path with a single "/", or'
            " write a full URL starting with https://."
        )
    # Check the text as typed first, so that error positions match the user's input.
    _check_literal_characters(template, _parse_template(template))
    if template.startswith("/"):
        template = _escape_braces(base_url.strip().rstrip("/")) + template

    probe = _probe_url(_parse_template(template))
    _check_no_macro_before_path(probe, template)
    split = urlsplit(probe)
    _check_authority(split, allowed_hosts, allow_http_hosts)
    if "#" in probe:
        raise ManualConfigError(
            f'URL "{template}" contains a fragment ("#..."), which is never sent to'
            ' the server. Remove the "#" and what follows, or write "%23" for a'
            ' literal "#".'
        )
    segments = split.path.split("/")
    if "." in segments or ".." in segments:
        raise ManualConfigError(
            f'URL "{template}" has a "." or ".." path segment. Write the path without'
            " them."
        )
    return template


def _escape_braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


# Placeholder for a macro while the URL structure is checked. NUL cannot occur in the
# literal text because _check_literal_characters rejects control characters.
_MACRO_MARK = "\x00"

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")


def _probe_url(parts: tuple[str | _Macro, ...]) -> str:
    return "".join(_MACRO_MARK if isinstance(part, _Macro) else part for part in parts)


def _check_literal_characters(template: str, parts: tuple[str | _Macro, ...]) -> None:
    """Raise ManualConfigError for whitespace or a control character outside macros.

    urlsplit silently removes tabs and line breaks, so this runs before it.
    """
    macro_spans = [
        range(part.offset, part.offset + len(part.name) + 2)
        for part in parts
        if isinstance(part, _Macro)
    ]
    for index, char in enumerate(template):
        if not (char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F):
            continue
        if any(index in span for span in macro_spans):
            continue
        raise ManualConfigError(
            f"URL has a space or control character {char!r} at character {index + 1}."
            ' Write a space as "%20" and remove other control characters.'
        )


def _check_no_macro_before_path(probe: str, template: str) -> None:
    """Raise ManualConfigError unless the URL starts with a scheme and host."""
    scheme = _SCHEME_RE.match(probe)
    if scheme is None:
        if _MACRO_MARK in probe.split("://", 1)[0] and "://" in probe:
            raise ManualConfigError(
                f'URL "{template}" has a macro in its scheme. Macros may appear only'
                " in the path and query, so start the URL with https://."
            )
        raise ManualConfigError(
            f'URL "{template}" is neither a path starting with "/" nor a full URL.'
            ' Enter a path such as "/v1/users" or a URL starting with https://.'
        )
    authority = re.match(r"[^/?#]*", probe[scheme.end() :])
    assert authority is not None  # the pattern matches the empty string
    if _MACRO_MARK in authority.group():
        raise ManualConfigError(
            f'URL "{template}" has a macro in its host or port. Macros may appear'
            " only in the path and query, so write the host out in full."
        )


def _check_authority(
    split: SplitResult,
    allowed_hosts: Iterable[str],
    allow_http_hosts: Iterable[str],
) -> None:
    https_hosts = [host.lower() for host in allowed_hosts]
    http_hosts = [host.lower() for host in allow_http_hosts]
    if "@" in split.netloc:
        raise ManualConfigError(
            f'URL host "{split.netloc}" contains user information before "@". Remove'
            ' everything up to and including the "@".'
        )
    if split.scheme not in ("https", "http"):
        raise ManualConfigError(
            f'URL scheme "{split.scheme}" is not supported. Start the URL with'
            " https://."
        )
    if not split.hostname:
        raise ManualConfigError(
            "URL has no host. Write a host after https://, such as"
            f" https://{PX_API_HOSTS[0]}."
        )

    host = _host_with_port(split)
    if split.scheme == "https" and host in https_hosts + http_hosts:
        return
    if split.scheme == "http" and host in http_hosts:
        return
    if split.scheme == "http" and host in https_hosts:
        raise ManualConfigError(f'URL uses http for "{host}". Use https://{host}.')
    allowed = [f"https://{name}" for name in https_hosts]
    allowed += [f"http://{name}" for name in http_hosts]
    if not allowed:
        raise ManualConfigError(
            f'URL host "{host}" is not allowed, and this credential allows no host.'
            " Check the credential's region."
        )
    raise ManualConfigError(
        f'URL host "{host}" is not allowed: a credential sends only to its own'
        f" region. Use {' or '.join(allowed)}, or a path such as /v1/users."
    )


def _host_with_port(split: SplitResult) -> str:
    """Return "host" for the scheme's default port and "host:port" otherwise."""
    try:
        port = split.port
    except ValueError as exc:
        raise ManualConfigError(
            f'URL host "{split.netloc}" has an invalid port. Use a number from 1 to'
            " 65535."
        ) from exc
    hostname = split.hostname or ""
    if ":" in hostname:
        hostname = f"[{hostname}]"
    default_port = 443 if split.scheme == "https" else 80
    if port is None or port == default_port:
        return hostname
    return f"{hostname}:{port}"


def render_url(url: str, record: dict) -> str:
    """Substitute each macro in ``url`` with the record's value, percent-encoded.

    Values are encoded as UTF-8 with ``urllib.parse.quote(str(value), safe="")`` in
    both path and query, so "/", "?", "#", "%", "+", spaces and non-ASCII characters
    cannot change the URL's structure. Pass the record before exclude_attributes, so a
    macro can use an attribute that the body leaves out.

    Raise RecordError if an attribute is missing, None or "", is an object or array,
    or would make a whole path segment "." or "..". requests (through urllib3) removes
    such a segment, and ".." also the segment before it, which changes the endpoint.
    """
    pieces: list[str] = []
    in_query = False
    segment = 0
    macros_by_segment: dict[int, list[str]] = {}
    for part in _parse_template(url):
        if isinstance(part, _Macro):
            pieces.append(_encode_macro_value(part.name, record))
            if not in_query:
                macros_by_segment.setdefault(segment, []).append(part.name)
            continue
        pieces.append(part)
        if not in_query:
            path_text = part.split("?", 1)[0]
            segment += path_text.count("/")
            in_query = "?" in part
    rendered = "".join(pieces)
    _check_dot_segments(rendered, macros_by_segment)
    return rendered


def _encode_macro_value(name: str, record: dict) -> str:
    value = record.get(name)
    if value is None or value == "":
        state = "missing" if name not in record else "empty"
        raise RecordError(
            f'Attribute "{name}" is {state}, but the URL macro {{{name}}} needs a'
            " value."
        )
    if isinstance(value, dict | list):
        raise RecordError(
            f'Attribute "{name}" is a nested object or array, which the URL macro'
            f" {{{name}}} cannot contain."
        )
    try:
        return quote(str(value), safe="")
    except UnicodeEncodeError as exc:
        raise RecordError(
            f'Attribute "{name}" contains a character that is not valid Unicode'
            f" ({exc.reason}), so the URL macro {{{name}}} cannot encode it."
        ) from exc


def _check_dot_segments(rendered: str, macros_by_segment: dict[int, list[str]]) -> None:
    path = rendered.split("?", 1)[0]
    for index, text in enumerate(path.split("/")):
        if text in (".", "..") and index in macros_by_segment:
            names = ", ".join(f'"{name}"' for name in macros_by_segment[index])
            raise RecordError(
                f'Attribute {names} makes the URL path segment "{text}", which would'
                " send the request to a different endpoint."
            )


# --- Exclusions and batching -------------------------------------------------------


def exclude_attributes(record: dict, excluded: Iterable[str]) -> dict:
    """Return a copy of the record without the excluded top-level attributes.

    Names match exactly (case-sensitive), names the record lacks are ignored, and the
    remaining attributes keep their order.
    """
    if isinstance(excluded, str):
        raise TypeError("excluded must be a collection of attribute names, not a str")
    excluded_names = set(excluded)
    return {name: value for name, value in record.items() if name not in excluded_names}


MIN_BATCH_SIZE = 1
MAX_BATCH_SIZE = 10_000
DEFAULT_BATCH_SIZE = 100
MIN_MAX_BYTES = 100
MAX_MAX_BYTES = 50_000_000

GROUPINGS = {
    "fixed": {
        "label": "Fixed size",
        "help": (
            "Send records in arrival order, up to the batch size (number of records)"
            " per request."
        ),
    },
    "attribute": {
        "label": "Same attribute value",
        "help": (
            "Send records that share the value of the grouping attribute in the same"
            " request, never mixing values, and split a group larger than the batch"
            " size into several requests. Records without the attribute form a group"
            " of their own."
        ),
    },
    "max_bytes": {
        "label": "Maximum body size",
        "help": (
            "Send records in arrival order while the request body stays within the"
            " maximum body size (bytes) and the batch size (number of records). A"
            " record whose body alone is larger fails instead of being sent."
        ),
    },
}


def validate_batching(
    algorithm: str,
    batch_size: int,
    group_attribute: str | None,
    max_bytes: int | None,
    attribute_names: Iterable[str] | None,
    *,
    content_format: str | None = None,
) -> None:
    """Raise ManualConfigError unless the batching settings are valid.

    ``group_attribute`` must be one of ``attribute_names`` for the "attribute"
    algorithm, unless ``attribute_names`` is None. Settings that the algorithm does
    not use are ignored. The "form" content format cannot send batches.
    """
    _check_batching_values(algorithm, batch_size, group_attribute, max_bytes)
    if algorithm == "attribute" and attribute_names is not None:
        known = list(attribute_names)
        if group_attribute not in known:
            listed_names = ", ".join(f'"{name}"' for name in known[:20])
            if len(known) > 20:
                listed_names += f" and {len(known) - 20} more"
            raise ManualConfigError(
                f'Grouping attribute "{group_attribute}" is not an attribute of the'
                f" Nexset. Pick one of: {listed_names}."
            )
    if content_format is not None and not _content_format(content_format)["batches"]:
        raise ManualConfigError(
            f'Content format "{content_format}" sends one record per request. Turn'
            " off batching or pick the JSON content format."
        )


def _check_batching_values(
    algorithm: str,
    batch_size: int,
    group_attribute: str | None,
    max_bytes: int | None,
) -> None:
    if algorithm not in GROUPINGS:
        raise ManualConfigError(
            f'Grouping algorithm "{algorithm}" is unknown. Pick one of:'
            f" {', '.join(GROUPINGS)}."
        )
    if not _is_int_in_range(batch_size, MIN_BATCH_SIZE, MAX_BATCH_SIZE):
        raise ManualConfigError(
            f"Batch size {batch_size!r} is invalid. Enter a whole number of records"
            f" from {MIN_BATCH_SIZE} to {MAX_BATCH_SIZE}."
        )
    if algorithm == "attribute" and not (group_attribute or "").strip():
        raise ManualConfigError(
            "Grouping by attribute needs a grouping attribute. Pick the attribute"
            " whose value the records of one batch share."
        )
    if algorithm == "max_bytes" and not _is_int_in_range(
        max_bytes, MIN_MAX_BYTES, MAX_MAX_BYTES
    ):
        raise ManualConfigError(
            f"Maximum body size {max_bytes!r} is invalid. Enter a whole number of"
            f" bytes from {MIN_MAX_BYTES} to {MAX_MAX_BYTES}."
        )


def _is_int_in_range(value: object, low: int, high: int) -> bool:
    return (
        isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    )


def encode_json(payload: dict | list[dict]) -> bytes:
    """Encode a record (as an object) or a batch (as an array) as compact UTF-8 JSON.

    The output is deterministic, so a sample shown to the user has the same bytes as
    the request. Raise RecordError for NaN or infinite floats, types that JSON lacks,
    and strings with lone surrogates.
    """
    try:
        text = json.dumps(
            payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        return text.encode("utf-8")
    except (TypeError, ValueError) as exc:
        # UnicodeEncodeError is a ValueError.
        raise RecordError(f"Record cannot be encoded as JSON: {exc}.") from exc


def group_records(
    items: Iterable[tuple[K, dict]],
    *,
    algorithm: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    group_attribute: str | None = None,
    max_bytes: int | None = None,
    encode: Callable[[list[dict]], bytes] = encode_json,
) -> Iterator[list[tuple[K, dict]]]:
    """Split (key, record) items into batches with the given grouping algorithm.

    The key is the caller's record id and passes through unchanged. Each item appears
    in exactly one batch. ``encode`` turns a list of records into the request body and
    is used only by "max_bytes", which yields a record whose own body is larger than
    ``max_bytes`` as a batch of one (check it with oversize).

    The "attribute" algorithm reads all of ``items`` before it yields the first
    batch, so the caller bounds memory by passing a window of records, such as one
    claimed chunk. Records with the same value in two windows go in separate batches.

    Raise ManualConfigError for invalid settings when called, before any item is read.
    """
    _check_batching_values(algorithm, batch_size, group_attribute, max_bytes)
    if algorithm == "fixed":
        return _group_fixed(items, batch_size)
    if algorithm == "attribute":
        assert group_attribute is not None  # checked above
        return _group_by_attribute(items, batch_size, group_attribute)
    assert max_bytes is not None  # checked above
    return _group_by_size(items, batch_size, max_bytes, encode)


def _group_fixed(
    items: Iterable[tuple[K, dict]], batch_size: int
) -> Iterator[list[tuple[K, dict]]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, batch_size)):
        yield batch


def _group_by_attribute(
    items: Iterable[tuple[K, dict]], batch_size: int, attribute: str
) -> Iterator[list[tuple[K, dict]]]:
    groups: dict[str | None, list[tuple[K, dict]]] = {}
    for item in items:
        groups.setdefault(_group_key(item[1].get(attribute)), []).append(item)
    for group in groups.values():
        for start in range(0, len(group), batch_size):
            yield group[start : start + batch_size]


def _group_key(value: Any) -> str | None:
    """Return a hashable key that distinguishes values of different JSON types.

    Python treats 1, 1.0 and True as equal dict keys, but they are different values
    in a record, and dicts and lists cannot be dict keys at all. Missing attributes
    and null values share the None key, while "" is a value of its own.
    """
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=repr)


def _group_by_size(
    items: Iterable[tuple[K, dict]],
    batch_size: int,
    max_bytes: int,
    encode: Callable[[list[dict]], bytes],
) -> Iterator[list[tuple[K, dict]]]:
    # Sizes are predicted by assuming that the body is a fixed overhead plus each
    # record's own size plus one separator between records. That is exact for the
    # compact JSON array (overhead "[]", separator ","), NDJSON and XML. Every batch
    # of more than one record is then encoded in full, and trimmed if the prediction
    # was too low, as it can be for CSV, whose header is the union of all keys.
    # Trimmed records go back to the front of the input.
    stream = iter(items)
    returned: deque[tuple[K, dict]] = deque()
    framing: tuple[int, int] | None = None
    batch: list[tuple[K, dict]] = []
    predicted = 0
    while True:
        item = returned.popleft() if returned else next(stream, None)
        if item is None:
            if not batch:
                return
            fitted, rest = _fit_batch(batch, max_bytes, encode)
            yield fitted
            returned.extendleft(reversed(rest))
            batch = []
            continue

        try:
            size = len(encode([item[1]]))
        except RecordError:
            # Yield the current batch, then the unencodable record as a batch of one,
            # so that the caller can fail that record alone.
            if batch:
                returned.appendleft(item)
                fitted, rest = _fit_batch(batch, max_bytes, encode)
                yield fitted
                returned.extendleft(reversed(rest))
                batch = []
            else:
                yield [item]
            continue
        if framing is None:
            framing = _measure_framing(item[1], encode)
        overhead, separator = framing
        if not batch:
            batch, predicted = [item], size
            continue
        grown = predicted + size - overhead + separator
        if len(batch) < batch_size and grown <= max_bytes:
            batch.append(item)
            predicted = grown
            continue

        fitted, rest = _fit_batch(batch, max_bytes, encode)
        yield fitted
        returned.extendleft(reversed([*rest, item]))
        batch = []


def _measure_framing(
    record: dict, encode: Callable[[list[dict]], bytes]
) -> tuple[int, int]:
    """Return the body overhead and the separator size between records, in bytes."""
    overhead = len(encode([]))
    single = len(encode([record]))
    pair = len(encode([record, record]))
    return overhead, pair - 2 * single + overhead


def _fit_batch(
    batch: list[tuple[K, dict]],
    max_bytes: int,
    encode: Callable[[list[dict]], bytes],
) -> tuple[list[tuple[K, dict]], list[tuple[K, dict]]]:
    """Split the batch into the longest prefix whose body fits and the rest.

    A single record is returned as is, even when its body is too large.
    """
    if len(batch) == 1 or _body_size(batch, encode) <= max_bytes:
        return batch, []
    # Binary search for the longest fitting prefix, assuming that a longer prefix
    # never has a smaller body. Every prefix longer than one record that is returned
    # has been encoded and checked.
    low, high = 1, len(batch) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if _body_size(batch[:middle], encode) <= max_bytes:
            low = middle
        else:
            high = middle - 1
    return batch[:low], batch[low:]


def _body_size(
    batch: list[tuple[K, dict]], encode: Callable[[list[dict]], bytes]
) -> int:
    return len(encode([record for _, record in batch]))


def oversize(
    batch: list[tuple[K, dict]],
    max_bytes: int,
    *,
    encode: Callable[[list[dict]], bytes] = encode_json,
) -> bool:
    """Return whether the batch's encoded body is larger than ``max_bytes``.

    group_records yields such a batch only as a single record, which the caller fails
    with a reason such as "the record alone is larger than the maximum body size".
    Pass the same ``encode`` as to group_records.
    """
    return _body_size(batch, encode) > max_bytes


# --- Body encoding -----------------------------------------------------------------

_NOT_ACCEPTED = "not accepted by Gainsight PX"

CONTENT_FORMATS = {
    "json": {
        "label": "JSON",
        "content_type": "application/json",
        "px_accepts": True,
        "batches": True,
    },
    "ndjson": {
        "label": f"NDJSON, one JSON object per line ({_NOT_ACCEPTED})",
        "content_type": "application/x-ndjson",
        "px_accepts": False,
        "batches": True,
    },
    "csv": {
        "label": f"CSV ({_NOT_ACCEPTED})",
        "content_type": "text/csv; charset=utf-8",
        "px_accepts": False,
        "batches": True,
    },
    "xml": {
        "label": f"XML ({_NOT_ACCEPTED})",
        "content_type": "application/xml",
        "px_accepts": False,
        "batches": True,
    },
    "form": {
        "label": f"Form, one flat record per request ({_NOT_ACCEPTED})",
        "content_type": "application/x-www-form-urlencoded",
        "px_accepts": False,
        "batches": False,
    },
}


def encode_body(payload: dict | list[dict], content_format: str) -> tuple[bytes, str]:
    """Encode a record or a batch of records and return (body, content type).

    A dict is one record and a list is a batch:

    - json: an object or an array, as encode_json writes it.
    - ndjson: one compact JSON object per line, each line ending in "\\n".
    - csv: RFC 4180 with CRLF line ends and a header row listing the union of keys in
      first-seen order. Nested values are written as compact JSON, None and missing
      keys as empty cells, and booleans as true and false.
    - xml: ``<records><record><name>text</name>...</record></records>`` for a batch
      and a single ``<record>`` root for one record, after an XML declaration.
    - form: application/x-www-form-urlencoded of one flat record.

    Raise ManualConfigError for an unknown format or a batch in form format, and
    RecordError for a value that the format cannot represent.
    """
    spec = _content_format(content_format)
    if not isinstance(payload, dict | list):
        raise TypeError(f"payload must be a dict or a list of dicts, not {payload!r}")
    encoders: dict[str, Callable[[dict | list[dict]], bytes]] = {
        "json": encode_json,
        "ndjson": _encode_ndjson,
        "csv": _encode_csv,
        "xml": _encode_xml,
        "form": _encode_form,
    }
    return encoders[content_format](payload), spec["content_type"]


def _content_format(content_format: str) -> dict[str, Any]:
    try:
        return CONTENT_FORMATS[content_format]
    except KeyError:
        raise ManualConfigError(
            f'Content format "{content_format}" is unknown. Pick one of:'
            f" {', '.join(CONTENT_FORMATS)}."
        ) from None


def _as_records(payload: dict | list[dict]) -> list[dict]:
    return [payload] if isinstance(payload, dict) else payload


def _encode_ndjson(payload: dict | list[dict]) -> bytes:
    return b"".join(encode_json(record) + b"\n" for record in _as_records(payload))


def _scalar_text(value: Any) -> str:
    """Return a value as cell or field text: strings as is, others as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise RecordError(f"Record value cannot be encoded: {exc}.") from exc


def _encode_csv(payload: dict | list[dict]) -> bytes:
    records = _as_records(payload)
    if not records:
        return b""
    columns: dict[str, None] = {}
    for record in records:
        columns.update(dict.fromkeys(record))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for record in records:
        writer.writerow([_scalar_text(record.get(name)) for name in columns])
    return _encode_utf8(buffer.getvalue())


def _encode_utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RecordError(
            f"Record contains a string that is not valid Unicode ({exc.reason})."
        ) from exc


def _encode_form(payload: dict | list[dict]) -> bytes:
    if isinstance(payload, list):
        raise ManualConfigError(
            "The form content format sends one record per request, not a batch. Turn"
            " off batching or pick the JSON content format."
        )
    fields = []
    for name, value in payload.items():
        if isinstance(value, dict | list):
            raise RecordError(
                f'Attribute "{name}" is a nested object or array, which the form'
                " content format cannot send. Exclude it or pick the JSON content"
                " format."
            )
        fields.append((name, _scalar_text(value)))
    try:
        return urlencode(fields).encode("ascii")
    except UnicodeEncodeError as exc:
        raise RecordError(
            f"Record contains a string that is not valid Unicode ({exc.reason})."
        ) from exc


_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'

# Element names are limited to ASCII letters, digits, "_", "-" and ".", starting with
# a letter or "_". XML 1.0 allows many more characters, but the allowed set differs
# between editions, and parsers such as expat reject some names that the fifth
# edition allows. ":" is left out because it separates namespace prefixes.
_XML_INVALID_NAME_CHAR_RE = re.compile(r"[^A-Za-z0-9_.\-]")
_XML_NAME_START_RE = re.compile(r"[A-Za-z_]")

# XML 1.0, section 2.2: characters outside Char cannot appear in a document at all.
_XML_INVALID_CHAR_RE = re.compile(
    "[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)


def _xml_name(name: str) -> str:
    """Return ``name`` as an XML element name.

    Characters outside the set above, including non-ASCII letters, become "_", and "_"
    is prepended when the name does not start with a letter or "_".

    NOTE: two attributes can map to the same element name, for example "User ID" and
    "User_ID", and then appear as repeated elements.
    """
    sanitised = _XML_INVALID_NAME_CHAR_RE.sub("_", name)
    if not _XML_NAME_START_RE.match(sanitised):
        sanitised = "_" + sanitised
    return sanitised


def _xml_text(value: str, field: str) -> str:
    match = _XML_INVALID_CHAR_RE.search(value)
    if match:
        raise RecordError(
            f'Attribute "{field}" contains the character {match.group()!r}, which XML'
            " cannot represent. Exclude the attribute or pick the JSON content format."
        )
    # "\r" is written as a character reference because XML parsers turn a literal
    # "\r\n" into "\n".
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\r", "&#13;")
    )


def _xml_element(name: str, value: Any, field: str) -> str:
    """Return one element. Objects nest as elements and array items as <item>."""
    tag = _xml_name(str(name))
    if value is None:
        return f"<{tag}/>"
    if isinstance(value, dict):
        inner = "".join(_xml_element(key, item, field) for key, item in value.items())
    elif isinstance(value, list):
        inner = "".join(_xml_element("item", item, field) for item in value)
    else:
        inner = _xml_text(_scalar_text(value), field)
    return f"<{tag}>{inner}</{tag}>"


def _xml_record(record: dict) -> str:
    fields = "".join(_xml_element(name, value, name) for name, value in record.items())
    return f"<record>{fields}</record>"


def _encode_xml(payload: dict | list[dict]) -> bytes:
    if isinstance(payload, dict):
        document = _xml_record(payload)
    else:
        document = "<records>" + "".join(map(_xml_record, payload)) + "</records>"
    return _encode_utf8(_XML_DECLARATION + document)


# --- Warnings ----------------------------------------------------------------------

# Gainsight PX endpoints that take one JSON object per request: /v1/users,
# /v1/users/update, /v1/users/<id> and the same for accounts, and /v1/events/custom.
# The path is matched after macros were replaced by _MACRO_MARK.
_SINGLE_OBJECT_PATH_RE = re.compile(
    r"/v1/(?:(?:users|accounts)(?:/[^/]+)?|events/custom)/?", re.IGNORECASE
)


def batching_warning(method: str, url_template: str, batching: bool) -> str | None:
    """Return a warning when batching sends arrays to a PX single-object endpoint.

    Return None when batching is off, the URL is another endpoint, or the URL cannot
    be parsed (resolve_url reports that).
    """
    if not batching:
        return None
    try:
        probe = _probe_url(_parse_template(url_template.strip()))
        path = probe if probe.startswith("/") else urlsplit(probe).path
    except ValueError:
        # ManualConfigError from the template, or ValueError from urlsplit.
        return None
    path = path.split("?", 1)[0]
    if not _SINGLE_OBJECT_PATH_RE.fullmatch(path):
        return None
    return (
        f"Gainsight PX takes one object per {method.upper()} request to"
        f" {url_template.strip()},"
        " so a batched array will be rejected with 400 Bad Request. Turn off"
        " batching for this URL."
    )
