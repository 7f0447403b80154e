"""Tests for destinations.manual, the settings of manually configured destinations."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from destinations.manual import (
    API_KEY_HEADER,
    CONTENT_FORMATS,
    GROUPINGS,
    PX_API_HOSTS,
    ManualConfigError,
    RecordError,
    batching_warning,
    encode_body,
    encode_json,
    exclude_attributes,
    group_records,
    macro_names,
    oversize,
    parse_headers,
    render_url,
    resolve_url,
    validate_batching,
    validate_url_macros,
)

BASE = "https://api.aptrinsic.com"
SANDBOX = "127.0.0.1:8765"


def resolve(template: str, **kwargs) -> str:
    kwargs.setdefault("allowed_hosts", PX_API_HOSTS)
    return resolve_url(template, BASE, **kwargs)


def items_of(records: list[dict]) -> list[tuple[int, dict]]:
    return list(enumerate(records))


def group_by(records: list[dict], attribute: str, batch_size: int = 10) -> list:
    """Group records by attribute and return each batch's keys."""
    batches = group_records(
        items_of(records),
        algorithm="attribute",
        batch_size=batch_size,
        group_attribute=attribute,
    )
    return [[key for key, _ in batch] for batch in batches]


def json_size(batch: list[tuple[int, dict]]) -> int:
    return len(encode_body([record for _, record in batch], "json")[0])


# --- parse_headers -----------------------------------------------------------------


def test_headers_empty_text():
    assert parse_headers("") == []
    assert parse_headers("   ") == []


def test_headers_colon_in_value():
    assert parse_headers("X-Trace:a:b") == [("X-Trace", "a:b")]


def test_headers_strip_whitespace():
    headers = parse_headers("  Accept : application/json ,  X-Env:test ")
    assert headers == [("Accept", "application/json"), ("X-Env", "test")]


def test_headers_keep_order_and_case():
    headers = parse_headers("b-Header:1,A-header:2")
    assert headers == [("b-Header", "1"), ("A-header", "2")]


def test_headers_skip_empty_pairs():
    assert parse_headers("X-A:1,,X-B:2,") == [("X-A", "1"), ("X-B", "2")]


def test_headers_empty_value_allowed():
    assert parse_headers("X-Empty:") == [("X-Empty", "")]


def test_headers_pair_without_colon():
    with pytest.raises(ManualConfigError) as error:
        parse_headers("Accept")
    message = str(error.value)
    assert '"Accept" has no ":"' in message
    assert "name:value,name:value" in message
    assert "commas" not in message


def test_headers_comma_split_value():
    with pytest.raises(ManualConfigError) as error:
        parse_headers("Accept:text/html, application/json")
    message = str(error.value)
    assert '"application/json" has no ":"' in message
    assert "cannot contain commas" in message
    assert '"Accept"' in message


def test_headers_empty_name():
    with pytest.raises(ManualConfigError, match='":value" has an empty name'):
        parse_headers(":value")


@pytest.mark.parametrize("name", ["X Trace", "X(Trace)", "Ünicode", "X/Y", "X@Y"])
def test_headers_non_token_name(name):
    with pytest.raises(ManualConfigError, match=re.escape(f'"{name}" is invalid')):
        parse_headers(f"{name}:1")


@pytest.mark.parametrize(
    "text", [API_KEY_HEADER + ":k", "x-aptrinsic-api-key:k", "X-Aptrinsic-Api-Key:k"]
)
def test_headers_api_key_rejected(text):
    with pytest.raises(ManualConfigError) as error:
        parse_headers(text)
    assert "cannot be overridden" in str(error.value)
    assert "credential" in str(error.value)


def test_headers_content_type_rejected():
    with pytest.raises(ManualConfigError, match="pick the content format"):
        parse_headers("content-type:text/plain")


@pytest.mark.parametrize("name", ["Host", "Content-Length", "transfer-encoding"])
def test_headers_client_headers_rejected(name):
    with pytest.raises(ManualConfigError, match=f'"{name}" cannot be set here'):
        parse_headers(f"{name}:x")


def test_headers_duplicate_name():
    with pytest.raises(ManualConfigError, match='"x-env" is set more than once'):
        parse_headers("X-Env:a,x-env:b")


@pytest.mark.parametrize("value", ["a\r\nX-Evil: 1", "a\nX-Evil: 1", "a\rb"])
def test_headers_crlf_injection(value):
    with pytest.raises(ManualConfigError, match="line break"):
        parse_headers(f"X-A:{value}")


@pytest.mark.parametrize("value", ["a\x00b", "a\x7fb", "ü"])
def test_headers_control_or_non_ascii_value(value):
    with pytest.raises(ManualConfigError, match="control or non-ASCII"):
        parse_headers(f"X-A:{value}")


# --- URL templates -----------------------------------------------------------------


def test_macro_names_in_order_once():
    template = "/v1/{User ID}/{account-id}?u={User ID}"
    assert macro_names(template) == ["User ID", "account-id"]


def test_macro_names_escaped_braces():
    assert macro_names("/v1/{{literal}}/{a}") == ["a"]


def test_macro_names_unclosed_brace_position():
    with pytest.raises(ManualConfigError, match="character 5 that is not closed"):
        macro_names("/v1/{User ID")


def test_macro_names_nested_brace():
    with pytest.raises(ManualConfigError, match="character 5 that is not closed"):
        macro_names("/v1/{a{b}")


def test_macro_names_unmatched_close_position():
    with pytest.raises(ManualConfigError, match='unmatched "}" at character 6'):
        macro_names("/v1/a}")


def test_macro_names_empty_macro():
    with pytest.raises(ManualConfigError, match="empty macro"):
        macro_names("/v1/{}")


def test_validate_url_macros_unknown_attribute():
    with pytest.raises(ManualConfigError, match='"user_id"'):
        validate_url_macros("/v1/users/{user_id}", ["User ID", "email"])


def test_validate_url_macros_known_attributes():
    validate_url_macros("/v1/users/{User ID}", ["User ID", "email"])


def test_resolve_path_joined_to_base():
    resolved = resolve("/v1/users/{User ID}")
    assert resolved == "https://api.aptrinsic.com/v1/users/{User ID}"


def test_resolve_base_trailing_slash():
    resolved = resolve_url("/v1/users", BASE + "/", allowed_hosts=PX_API_HOSTS)
    assert resolved == "https://api.aptrinsic.com/v1/users"


def test_resolve_full_url_allowed():
    url = "https://api-eu.aptrinsic.com/v1/accounts/{Account}"
    assert resolve(url) == url


def test_resolve_default_port_allowed():
    url = "https://api.aptrinsic.com:443/v1/users"
    assert resolve(url) == url


def test_resolve_host_case_insensitive():
    url = "https://API.Aptrinsic.com/v1/users"
    assert resolve(url) == url


def test_resolve_http_sandbox_allowed():
    url = f"http://{SANDBOX}/v1/users"
    assert resolve(url, allow_http_hosts=[SANDBOX]) == url


def test_resolve_http_sandbox_without_listing():
    with pytest.raises(ManualConfigError, match='"127.0.0.1:8765" is not allowed'):
        resolve(f"http://{SANDBOX}/v1/users")


def test_resolve_http_sandbox_other_port():
    with pytest.raises(ManualConfigError, match='"127.0.0.1:9999" is not allowed'):
        resolve("http://127.0.0.1:9999/v1/users", allow_http_hosts=[SANDBOX])


def test_resolve_http_px_host_rejected():
    with pytest.raises(ManualConfigError, match="Use https://api.aptrinsic.com"):
        resolve("http://api.aptrinsic.com/v1/users", allow_http_hosts=[SANDBOX])


def test_resolve_other_host_lists_allowed():
    with pytest.raises(ManualConfigError) as error:
        resolve("https://evil.example/v1/users")
    message = str(error.value)
    assert '"evil.example"' in message
    for host in PX_API_HOSTS:
        assert host in message


def test_resolve_other_port_rejected():
    with pytest.raises(ManualConfigError, match='"api.aptrinsic.com:8443"'):
        resolve("https://api.aptrinsic.com:8443/v1/users")


def test_resolve_invalid_port():
    with pytest.raises(ManualConfigError, match="invalid port"):
        resolve("https://api.aptrinsic.com:99999/v1/users")


def test_resolve_userinfo_rejected():
    with pytest.raises(ManualConfigError, match="user information"):
        resolve("https://api.aptrinsic.com@evil.example/")


def test_resolve_userinfo_with_backslash_rejected():
    with pytest.raises(ManualConfigError, match="user information"):
        resolve("https://api.aptrinsic.com\\@evil.example/")


def test_resolve_fragment_rejected():
    with pytest.raises(ManualConfigError, match="fragment"):
        resolve("/v1/users#top")


def test_resolve_macro_in_host_rejected():
    with pytest.raises(ManualConfigError, match="macro in its host"):
        resolve("https://{region}.aptrinsic.com/v1/users")


def test_resolve_macro_in_port_rejected():
    with pytest.raises(ManualConfigError, match="macro in its host or port"):
        resolve("https://api.aptrinsic.com:{port}/v1/users")


def test_resolve_macro_as_whole_host_rejected():
    with pytest.raises(ManualConfigError, match="macro in its host"):
        resolve("https://{Host}")


def test_resolve_macro_in_scheme_rejected():
    with pytest.raises(ManualConfigError, match="macro in its scheme"):
        resolve("{scheme}://api.aptrinsic.com/v1/users")


def test_resolve_macro_in_query_allowed():
    url = "https://api.aptrinsic.com/v1/users?filter={Email}"
    assert resolve(url) == url


def test_resolve_unbalanced_brace():
    with pytest.raises(ManualConfigError, match="character 11 that is not closed"):
        resolve("/v1/users/{User ID")


def test_resolve_empty():
    with pytest.raises(ManualConfigError, match="URL is empty"):
        resolve("  ")


def test_resolve_relative_path_rejected():
    with pytest.raises(ManualConfigError, match="neither a path"):
        resolve("v1/users")


def test_resolve_scheme_relative_rejected():
    with pytest.raises(ManualConfigError, match='starts with "//"'):
        resolve("//evil.example/v1/users")


def test_resolve_other_scheme_rejected():
    with pytest.raises(ManualConfigError, match='scheme "ftp"'):
        resolve("ftp://api.aptrinsic.com/v1/users")


def test_resolve_space_position():
    with pytest.raises(ManualConfigError, match="at character 4"):
        resolve("/v1 /users")


def test_resolve_tab_rejected():
    with pytest.raises(ManualConfigError, match="control character"):
        resolve("/v1/\tusers")


def test_resolve_space_inside_macro_allowed():
    assert resolve("/v1/users/{User ID}").endswith("{User ID}")


def test_resolve_dot_segment_rejected():
    with pytest.raises(ManualConfigError, match='".."'):
        resolve("/v1/users/../accounts")


def test_resolve_keeps_brace_escapes():
    assert resolve("/v1/{{x}}/{a}") == "https://api.aptrinsic.com/v1/{{x}}/{a}"


URL = "https://api.aptrinsic.com/v1/users/{User ID}"


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("a/b", "a%2Fb"),
        ("a+b", "a%2Bb"),
        ("50%", "50%25"),
        ("#x", "%23x"),
        ("?q", "%3Fq"),
        ("a b", "a%20b"),
        ("ü", "%C3%BC"),
        ("😀", "%F0%9F%98%80"),
        ("a&b=c", "a%26b%3Dc"),
        ("{x}", "%7Bx%7D"),
    ],
)
def test_render_url_encodes_value(value, encoded):
    assert render_url(URL, {"User ID": value}) == f"{BASE}/v1/users/{encoded}"


def test_render_url_query_encoded():
    url = f"{BASE}/v1/users?email={{Email}}&tag={{Tag}}"
    rendered = render_url(url, {"Email": "a+b@x.example", "Tag": "x&y=z"})
    assert rendered == f"{BASE}/v1/users?email=a%2Bb%40x.example&tag=x%26y%3Dz"


def test_render_url_query_roundtrip():
    url = f"{BASE}/v1/users?email={{Email}}&tag={{Tag}}"
    rendered = render_url(url, {"Email": "a+b@x.example", "Tag": "x&y=z"})
    query = dict(parse_qsl(urlsplit(rendered).query))
    assert query == {"email": "a+b@x.example", "tag": "x&y=z"}


def test_render_url_number_value():
    assert render_url(URL, {"User ID": 12345678901234567890}).endswith(
        "/12345678901234567890"
    )


def test_render_url_literal_braces():
    assert render_url(f"{BASE}/v1/{{{{x}}}}/{{a}}", {"a": "1"}) == f"{BASE}/v1/{{x}}/1"


def test_render_url_missing_attribute():
    with pytest.raises(RecordError, match='"User ID" is missing'):
        render_url(URL, {"email": "a@b.example"})


@pytest.mark.parametrize("value", ["", None])
def test_render_url_empty_attribute(value):
    with pytest.raises(RecordError, match='"User ID" is'):
        render_url(URL, {"User ID": value})


def test_render_url_nested_value():
    with pytest.raises(RecordError, match="nested object or array"):
        render_url(URL, {"User ID": {"a": 1}})


@pytest.mark.parametrize("value", [".", ".."])
def test_render_url_dot_segment(value):
    with pytest.raises(RecordError, match='"User ID" makes the URL path segment'):
        render_url(URL, {"User ID": value})


def test_render_url_dots_within_segment():
    assert render_url(URL, {"User ID": "..x"}) == f"{BASE}/v1/users/..x"


def test_render_url_dots_in_query():
    url = f"{BASE}/v1/users?id={{User ID}}"
    assert render_url(url, {"User ID": ".."}) == f"{BASE}/v1/users?id=.."


def test_render_url_lone_surrogate():
    with pytest.raises(RecordError, match="not valid Unicode"):
        render_url(URL, {"User ID": "\ud800"})


@given(st.text(min_size=1).filter(lambda text: text not in (".", "..")))
def test_render_url_decodes_to_value(value):
    rendered = render_url(URL, {"User ID": value})
    prefix = f"{BASE}/v1/users/"
    assert rendered.startswith(prefix)
    encoded = rendered.removeprefix(prefix)
    assert "/" not in encoded
    assert "?" not in encoded
    assert "#" not in encoded
    assert unquote(encoded, errors="strict") == value


# --- exclude_attributes ------------------------------------------------------------


def test_exclude_removes_and_keeps_order():
    record = {"a": 1, "secret": 2, "b": 3, "c": 4}
    assert list(exclude_attributes(record, ["secret", "c"]).items()) == [
        ("a", 1),
        ("b", 3),
    ]


def test_exclude_returns_new_dict():
    record = {"a": 1}
    result = exclude_attributes(record, [])
    assert result == record
    assert result is not record


def test_exclude_unknown_name_ignored():
    assert exclude_attributes({"a": 1}, ["zzz"]) == {"a": 1}


def test_exclude_is_case_sensitive():
    assert exclude_attributes({"Email": 1}, ["email"]) == {"Email": 1}


def test_exclude_rejects_str():
    with pytest.raises(TypeError):
        exclude_attributes({"ab": 1}, "ab")


# --- Batching settings -------------------------------------------------------------


def test_groupings_have_label_and_help():
    for name, spec in GROUPINGS.items():
        assert spec["label"], name
        assert spec["help"], name


def test_validate_batching_valid():
    validate_batching("fixed", 100, None, None, ["a"])
    validate_batching("attribute", 10, "a", None, ["a"])
    validate_batching("max_bytes", 10_000, None, 50_000_000, [])


@pytest.mark.parametrize("batch_size", [0, 10_001, -1, 1.5, True, None, "10"])
def test_validate_batching_batch_size(batch_size):
    with pytest.raises(ManualConfigError, match="from 1 to 10000"):
        validate_batching("fixed", batch_size, None, None, [])


@pytest.mark.parametrize("max_bytes", [None, 99, 50_000_001, 1000.0])
def test_validate_batching_max_bytes(max_bytes):
    with pytest.raises(ManualConfigError, match="from 100 to 50000000"):
        validate_batching("max_bytes", 10, None, max_bytes, [])


def test_validate_batching_unknown_algorithm():
    with pytest.raises(ManualConfigError, match='"random" is unknown'):
        validate_batching("random", 10, None, None, [])


def test_validate_batching_missing_group_attribute():
    with pytest.raises(ManualConfigError, match="needs a grouping attribute"):
        validate_batching("attribute", 10, "", None, ["a"])


def test_validate_batching_unknown_group_attribute():
    with pytest.raises(ManualConfigError, match='"Plan" is not an attribute'):
        validate_batching("attribute", 10, "Plan", None, ["plan", "email"])


def test_validate_batching_form_rejected():
    with pytest.raises(ManualConfigError, match="Turn off batching"):
        validate_batching("fixed", 10, None, None, [], content_format="form")


def test_group_records_checks_settings_on_call():
    with pytest.raises(ManualConfigError):
        group_records([], algorithm="fixed", batch_size=0)


# --- group_records: fixed and attribute ---------------------------------------------


def test_fixed_chunks_in_order():
    items = items_of([{"n": n} for n in range(7)])
    batches = list(group_records(items, algorithm="fixed", batch_size=3))
    assert [[key for key, _ in batch] for batch in batches] == [
        [0, 1, 2],
        [3, 4, 5],
        [6],
    ]


def test_fixed_empty_input():
    assert list(group_records([], algorithm="fixed")) == []


def test_fixed_default_batch_size():
    items = items_of([{"n": n} for n in range(250)])
    sizes = [len(batch) for batch in group_records(items, algorithm="fixed")]
    assert sizes == [100, 100, 50]


def test_attribute_never_mixes_values():
    plans = ["a", "b", "a", "c", "b", "a"]
    for keys in group_by([{"plan": plan} for plan in plans], "plan"):
        assert len({plans[key] for key in keys}) == 1


def test_attribute_batches_follow_first_appearance():
    plans = ["b", "a", "b", "c", "a"]
    keys = group_by([{"plan": plan} for plan in plans], "plan")
    assert keys == [[0, 2], [1, 4], [3]]


def test_attribute_splits_big_group():
    keys = group_by([{"plan": "a"}] * 5 + [{"plan": "b"}], "plan", batch_size=2)
    assert keys == [[0, 1], [2, 3], [4], [5]]


def test_attribute_missing_value_own_group():
    records = [{"plan": "a"}, {}, {"plan": None}, {"plan": "a"}, {"plan": ""}]
    assert group_by(records, "plan") == [[0, 3], [1, 2], [4]]


def test_attribute_distinguishes_json_types():
    records = [{"v": 1}, {"v": True}, {"v": 1.0}, {"v": "1"}, {"v": 1}]
    assert group_by(records, "v") == [[0, 4], [1], [2], [3]]


def test_attribute_unhashable_values():
    records = [{"v": {"x": [1]}}, {"v": [1]}, {"v": {"x": [1]}}]
    assert group_by(records, "v") == [[0, 2], [1]]


# --- group_records: max_bytes -------------------------------------------------------


def record_of_size(body_size: int, n: int) -> dict:
    """Return a record whose own JSON array body is exactly body_size bytes."""
    # [{"n":N,"p":"..."}] has 15 bytes of framing plus the digits of N.
    padding = body_size - 15 - len(str(n))
    return {"n": n, "p": "x" * padding}


def test_record_of_size_helper():
    assert json_size([(0, record_of_size(100, 7))]) == 100


def test_max_bytes_exact_fit():
    # Two records with 100-byte single bodies make a 199-byte array: 2 * (100 - 2)
    # bytes of objects, one comma and two brackets.
    items = items_of([record_of_size(100, n) for n in range(4)])
    batches = list(
        group_records(items, algorithm="max_bytes", batch_size=10, max_bytes=199)
    )
    assert [len(batch) for batch in batches] == [2, 2]
    assert [json_size(batch) for batch in batches] == [199, 199]


def test_max_bytes_one_byte_short():
    items = items_of([record_of_size(100, n) for n in range(4)])
    batches = list(
        group_records(items, algorithm="max_bytes", batch_size=10, max_bytes=198)
    )
    assert [len(batch) for batch in batches] == [1, 1, 1, 1]


def test_max_bytes_limited_by_batch_size():
    items = items_of([{"n": n} for n in range(5)])
    batches = list(
        group_records(items, algorithm="max_bytes", batch_size=2, max_bytes=10_000)
    )
    assert [len(batch) for batch in batches] == [2, 2, 1]


def test_max_bytes_counts_utf8_bytes():
    # "😀" is 4 bytes in UTF-8, so a record is 2 + len('{"e":"😀"}') = 14 bytes alone.
    items = items_of([{"e": "😀"}] * 10)
    batches = list(
        group_records(items, algorithm="max_bytes", batch_size=100, max_bytes=100)
    )
    for batch in batches:
        assert json_size(batch) <= 100
    # (100 - 1) // 13 = 7 records fit: 7 * 12 + 6 commas + 2 brackets = 92 bytes.
    assert [len(batch) for batch in batches] == [7, 3]


def test_max_bytes_oversize_record_alone():
    records = [record_of_size(60, 0), record_of_size(500, 1), record_of_size(60, 2)]
    batches = list(
        group_records(
            items_of(records), algorithm="max_bytes", batch_size=10, max_bytes=200
        )
    )
    assert [[key for key, _ in batch] for batch in batches] == [[0], [1], [2]]
    assert [oversize(batch, 200) for batch in batches] == [False, True, False]


def test_max_bytes_batches_are_maximal():
    sizes = [30, 80, 45, 120, 60, 60, 60, 33, 90, 100, 40]
    records = [record_of_size(size, n) for n, size in enumerate(sizes)]
    batches = list(
        group_records(
            items_of(records), algorithm="max_bytes", batch_size=100, max_bytes=200
        )
    )
    for batch, following in zip(batches, batches[1:], strict=False):
        assert json_size(batch) <= 200
        assert json_size(batch + following[:1]) > 200


def test_max_bytes_with_csv_encoder():
    # CSV is not additive: the header is the union of keys, so a batch must be
    # encoded in full and trimmed when the prediction was too low.
    records = [{f"k{n}": "v"} for n in range(30)]

    def encode(batch: list[dict]) -> bytes:
        return encode_body(batch, "csv")[0]

    batches = list(
        group_records(
            items_of(records),
            algorithm="max_bytes",
            batch_size=100,
            max_bytes=120,
            encode=encode,
        )
    )
    assert [key for batch in batches for key, _ in batch] == list(range(30))
    for batch in batches:
        assert len(encode([record for _, record in batch])) <= 120


def test_max_bytes_with_ndjson_encoder():
    def encode(batch: list[dict]) -> bytes:
        return encode_body(batch, "ndjson")[0]

    items = items_of([{"n": n} for n in range(10)])
    batches = list(
        group_records(
            items, algorithm="max_bytes", batch_size=100, max_bytes=100, encode=encode
        )
    )
    # Each line is '{"n":N}\n', 8 bytes, so 12 would fit and all 10 go together.
    assert [len(batch) for batch in batches] == [10]


def test_max_bytes_unencodable_record_alone():
    records = [{"n": 0}, {"n": 1}, {"n": float("nan")}, {"n": 3}, {"n": 4}]
    batches = list(
        group_records(
            items_of(records), algorithm="max_bytes", batch_size=10, max_bytes=1000
        )
    )
    assert [[key for key, _ in batch] for batch in batches] == [[0, 1], [2], [3, 4]]


def test_max_bytes_xml_batches_are_maximal():
    def encode(batch: list[dict]) -> bytes:
        return encode_body(batch, "xml")[0]

    records = [{"n": "x" * (n % 7)} for n in range(40)]
    batches = list(
        group_records(
            items_of(records),
            algorithm="max_bytes",
            batch_size=100,
            max_bytes=200,
            encode=encode,
        )
    )
    assert [key for batch in batches for key, _ in batch] == list(range(40))
    for batch, following in zip(batches, batches[1:], strict=False):
        assert len(encode([record for _, record in batch])) <= 200
        assert len(encode([record for _, record in batch + following[:1]])) > 200


def test_oversize_single_record():
    batch = [(0, record_of_size(101, 0))]
    assert oversize(batch, 100)
    assert not oversize(batch, 101)


# --- group_records: properties -----------------------------------------------------

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=20),
    st.sampled_from(["a", "b", "c"]),
)
records = st.dictionaries(st.sampled_from(["g", "x", "y"]), values, max_size=3)
settings = st.one_of(
    st.builds(dict, algorithm=st.just("fixed"), batch_size=st.integers(1, 20)),
    st.builds(
        dict,
        algorithm=st.just("attribute"),
        batch_size=st.integers(1, 20),
        group_attribute=st.just("g"),
    ),
    st.builds(
        dict,
        algorithm=st.just("max_bytes"),
        batch_size=st.integers(1, 20),
        max_bytes=st.integers(100, 400),
    ),
)


@given(st.lists(records, max_size=60), settings)
def test_group_records_yields_each_item_once(record_list, options):
    items = items_of(record_list)
    batches = list(group_records(items, **options))
    keys = sorted(key for batch in batches for key, _ in batch)
    assert keys == list(range(len(items)))
    for batch in batches:
        assert 1 <= len(batch) <= options["batch_size"]


@given(st.lists(records, max_size=60), st.integers(1, 20))
def test_fixed_preserves_order(record_list, batch_size):
    items = items_of(record_list)
    batches = list(group_records(items, algorithm="fixed", batch_size=batch_size))
    assert [item for batch in batches for item in batch] == items
    assert all(len(batch) == batch_size for batch in batches[:-1])


@given(st.lists(records, max_size=60), st.integers(1, 20), st.integers(100, 400))
def test_max_bytes_preserves_order_and_limit(record_list, batch_size, max_bytes):
    items = items_of(record_list)
    batches = list(
        group_records(
            items, algorithm="max_bytes", batch_size=batch_size, max_bytes=max_bytes
        )
    )
    assert [item for batch in batches for item in batch] == items
    for batch in batches:
        if len(batch) > 1:
            assert json_size(batch) <= max_bytes


@given(st.lists(records, max_size=60), st.integers(1, 20))
def test_attribute_groups_are_pure(record_list, batch_size):
    batches = list(
        group_records(
            items_of(record_list),
            algorithm="attribute",
            batch_size=batch_size,
            group_attribute="g",
        )
    )
    for batch in batches:
        group_values = {json.dumps(record.get("g")) for _, record in batch}
        assert len(group_values) == 1
        keys = [key for key, _ in batch]
        assert keys == sorted(keys)


# --- encode_body -------------------------------------------------------------------


def test_content_formats_labels():
    assert CONTENT_FORMATS["json"]["px_accepts"] is True
    assert CONTENT_FORMATS["json"]["content_type"] == "application/json"
    for name in ("ndjson", "csv", "xml", "form"):
        assert CONTENT_FORMATS[name]["px_accepts"] is False
        assert "not accepted by Gainsight PX" in CONTENT_FORMATS[name]["label"]


def test_json_single_record_object():
    body, content_type = encode_body({"a": 1, "b": "x"}, "json")
    assert body == b'{"a":1,"b":"x"}'
    assert content_type == "application/json"


def test_json_batch_array():
    body, _ = encode_body([{"a": 1}, {"a": 2}], "json")
    assert body == b'[{"a":1},{"a":2}]'


def test_json_keeps_key_order():
    assert encode_body({"z": 1, "a": 2}, "json")[0] == b'{"z":1,"a":2}'


def test_json_big_int_exact():
    body, _ = encode_body({"n": 2**70 + 1}, "json")
    assert body == b'{"n":1180591620717411303425}'
    assert json.loads(body)["n"] == 2**70 + 1


def test_json_emoji_utf8():
    body, _ = encode_body({"e": "😀ü"}, "json")
    assert body == '{"e":"😀ü"}'.encode()


def test_json_nested_values():
    body, _ = encode_body({"a": {"b": [1, None, True]}}, "json")
    assert body == b'{"a":{"b":[1,null,true]}}'


def test_json_matches_encode_json():
    payload = [{"a": "ü", "b": 1.5}]
    assert encode_body(payload, "json")[0] == encode_json(payload)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_json_rejects_nan(value):
    with pytest.raises(RecordError, match="cannot be encoded as JSON"):
        encode_body({"x": value}, "json")


def test_json_rejects_lone_surrogate():
    with pytest.raises(RecordError):
        encode_body({"x": "\ud800"}, "json")


def test_json_rejects_unknown_type():
    with pytest.raises(RecordError):
        encode_body({"x": object()}, "json")


def test_ndjson_one_object_per_line():
    body, content_type = encode_body([{"a": 1}, {"b": "😀"}], "ndjson")
    assert body == '{"a":1}\n{"b":"😀"}\n'.encode()
    assert content_type == "application/x-ndjson"


def test_ndjson_single_record():
    assert encode_body({"a": 1}, "ndjson")[0] == b'{"a":1}\n'


def test_csv_union_header_first_seen():
    body, content_type = encode_body([{"b": 1, "a": "x"}, {"c": True, "a": "y"}], "csv")
    assert body == b"b,a,c\r\n1,x,\r\n,y,true\r\n"
    assert content_type == "text/csv; charset=utf-8"


def test_csv_nested_as_json_string():
    body, _ = encode_body({"a": {"k": [1, "ü"]}, "n": None}, "csv")
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert rows == [["a", "n"], ['{"k":[1,"ü"]}', ""]]


def test_csv_quotes_commas_and_newlines():
    body, _ = encode_body({"a": 'x,"y"\nz'}, "csv")
    rows = list(csv.reader(io.StringIO(body.decode(), newline="")))
    assert rows == [["a"], ['x,"y"\nz']]


def test_csv_big_int_and_emoji():
    body, _ = encode_body({"n": 2**70, "e": "😀"}, "csv")
    assert body == f"n,e\r\n{2**70},😀\r\n".encode()


def test_csv_empty_batch():
    assert encode_body([], "csv")[0] == b""


def test_xml_batch_structure():
    body, content_type = encode_body([{"a": 1}, {"b": "x"}], "xml")
    assert body == (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b"<records><record><a>1</a></record><record><b>x</b></record></records>"
    )
    assert content_type == "application/xml"


def test_xml_single_record_root():
    body, _ = encode_body({"a": True}, "xml")
    assert body == b'<?xml version="1.0" encoding="UTF-8"?><record><a>true</a></record>'


def test_xml_names_sanitised():
    body, _ = encode_body({"User ID": 1, "1st": 2, "a:b": 3, "": 4, "ünï": 5}, "xml")
    root = ET.fromstring(body)
    assert [child.tag for child in root] == ["User_ID", "_1st", "a_b", "_", "_n_"]


def test_xml_text_escaped():
    body, _ = encode_body({"a": "<b>&\"'\r\n😀"}, "xml")
    root = ET.fromstring(body)
    assert root.find("a").text == "<b>&\"'\r\n😀"


def test_xml_nested_values():
    body, _ = encode_body({"a": {"b": [1, None]}}, "xml")
    assert body.endswith(b"<record><a><b><item>1</item><item/></b></a></record>")


def test_xml_big_int():
    body, _ = encode_body({"n": 2**70}, "xml")
    assert ET.fromstring(body).find("n").text == str(2**70)


def test_xml_rejects_control_character():
    with pytest.raises(RecordError, match='"a" contains the character'):
        encode_body({"a": "x\x01"}, "xml")


def test_form_flat_record():
    body, content_type = encode_body({"a": "x y", "b": 1, "c": True, "d": None}, "form")
    assert body == b"a=x+y&b=1&c=true&d="
    assert content_type == "application/x-www-form-urlencoded"


def test_form_utf8_and_reserved():
    body, _ = encode_body({"e": "😀&=ü"}, "form")
    assert body == b"e=%F0%9F%98%80%26%3D%C3%BC"


def test_form_rejects_batch():
    with pytest.raises(ManualConfigError, match="Turn off batching"):
        encode_body([{"a": 1}], "form")


def test_form_rejects_nested():
    with pytest.raises(RecordError, match='"a" is a nested object'):
        encode_body({"a": [1]}, "form")


def test_encode_unknown_format():
    with pytest.raises(ManualConfigError, match='"yaml" is unknown'):
        encode_body({"a": 1}, "yaml")


# --- batching_warning --------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/v1/users",
        "/v1/users/update",
        "/v1/users/{User ID}",
        "/v1/accounts",
        "/v1/accounts/update",
        "/v1/accounts/{Account ID}",
        "/v1/events/custom",
        "https://api-eu.aptrinsic.com/v1/users/{User ID}?x=1",
    ],
)
def test_batching_warning_single_object_endpoint(url):
    warning = batching_warning("POST", url, batching=True)
    assert warning is not None
    assert "one object per POST request" in warning
    assert "400" in warning


def test_batching_warning_off():
    assert batching_warning("POST", "/v1/users", batching=False) is None


@pytest.mark.parametrize(
    "url", ["/v1/users/{id}/preferences", "/v1/events", "https://x.example/v2/users"]
)
def test_batching_warning_other_endpoint(url):
    assert batching_warning("POST", url, batching=True) is None


def test_batching_warning_bad_template():
    assert batching_warning("POST", "/v1/users/{", batching=True) is None
