"""The destination configure screen: form, sample panel, Send Test Data, dry run.

The form is read from the rendered page the way a browser submits it, so a
test that changes one field posts every other value exactly as shown.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from destinations.models import Destination, Exchange
from teams.models import Membership
from tests.browser import chromium_context, screenshot
from tests.conftest import (
    USERS_CSV,
    make_user,
    manual_destination,
    sandbox_requests,
    template_destination,
)
from tests.html_form import submitted_fields
from tests.services import SANDBOX_KEY

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def read_form(page: str) -> dict[str, list[str]]:
    """Collect the values a browser submits from the form with id config-form.

    Buttons are left out, because a test adds the action it presses, and so is
    the CSRF token, which the test client does not check.
    """
    fields: dict[str, list[str]] = {}
    for name, value in submitted_fields(page, "config-form"):
        if name == "csrfmiddlewaretoken":
            continue
        fields.setdefault(name, []).append(value)
    return fields


def configure_url(destination: Destination) -> str:
    return reverse("destinations:configure", args=[destination.pk])


def shown_form(client: Any, destination: Destination) -> dict[str, list[str]]:
    return read_form(client.get(configure_url(destination)).content.decode())


def post_form(
    client: Any,
    url: str,
    fields: dict[str, list[str]],
    changes: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """Post the form fields with some changed; a value of None removes a field."""
    data = {name: list(values) for name, values in fields.items()}
    for name, value in (changes or {}).items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value if isinstance(value, list) else [value]
    return client.post(url, data, **(headers or {}))


def submit_form(
    client: Any,
    destination: Destination,
    changes: dict[str, Any] | None = None,
    *,
    view: str = "destinations:configure",
    headers: dict[str, str] | None = None,
) -> Any:
    """Post the form the configure page shows, with `changes`, to `view`."""
    fields = shown_form(client, destination)
    url = reverse(view, args=[destination.pk])
    return post_form(client, url, fields, changes, headers)


def text_of(response: Any) -> str:
    return html.unescape(response.content.decode())


def row_index(fields: dict[str, list[str]], target: str) -> str:
    """Return the number N of the mapping row whose hidden target_N is ``target``."""
    for name, values in fields.items():
        if name.startswith("target_") and values == [target]:
            return name.removeprefix("target_")
    raise AssertionError(f"no mapping row for {target}")


def mapping_of(fields: dict[str, list[str]]) -> dict[str, str]:
    """Map each row's target to its selected source."""
    return {
        values[0]: fields.get(f"source_{name.removeprefix('target_')}", [""])[0]
        for name, values in fields.items()
        if name.startswith("target_")
    }


def by_target(fields: dict[str, list[str]]) -> dict[str, list[str]]:
    """Name mapping fields by their row's target instead of the row number."""
    renamed = {}
    for name, values in fields.items():
        prefix, _, number = name.partition("_")
        if prefix in ("target", "source", "constant") and number.isdigit():
            if prefix != "target":
                renamed[f"{prefix} of {fields[f'target_{number}'][0]}"] = values
        else:
            renamed[name] = values
    return renamed


def first_sample_body(page: str) -> str:
    match = re.search(r'<pre class="sample-body">(.*?)</pre>', page, re.DOTALL)
    assert match, "the panel shows no request"
    return html.unescape(match.group(1))


@pytest.fixture
def users(make_nexset: Any) -> Any:
    return make_nexset(USERS_CSV, name="Users")


@pytest.fixture
def manual_setup(users: Any, credential: Any) -> Destination:
    """A valid manual destination with headers, exclusions and batching."""
    return manual_destination(
        users,
        credential,
        url="/v1/users/{User ID}",
        method="PUT",
        headers="X-Source:warehouse,X-Trace:abc",
        excluded=["Phone", "Time Zone"],
        batching={
            "enabled": True,
            "algorithm": "fixed",
            "batch_size": 50,
            "group_attribute": "",
            "max_bytes": 1000000,
        },
        response_webhook=True,
    )


# Each bad value, the message it gives, and the fields it is posted with.
MANUAL_CASES = {
    "url_other_host": (
        {"url": "https://example.com/v1/users"},
        'URL host "example.com" is not allowed: a credential sends only to its own region.',
    ),
    "url_http": (
        {"url": "http://api.aptrinsic.com/v1/users"},
        'URL host "api.aptrinsic.com" is not allowed: a credential sends only to its own region.',
    ),
    "url_userinfo": (
        {"url": "https://user:pw@api.aptrinsic.com/v1/users"},
        'contains user information before "@". Remove everything up to and including the "@".',
    ),
    "url_unknown_macro": (
        {"url": "/v1/users/{Nickname}"},
        'URL macros refer to attributes that the Nexset does not have: "Nickname".',
    ),
    "header_malformed_pair": (
        {"headers": "X-Source:warehouse,Broken"},
        'Header "Broken" has no ":". Write headers as name:value,name:value.',
    ),
    "header_api_key_override": (
        {"headers": "X-APTRINSIC-API-KEY:stolen"},
        "the API key comes from the destination's credential and cannot be overridden",
    ),
    "exclusion_unknown": (
        {"exclude_add": "Nickname"},
        'Excluded attribute "Nickname" is not an attribute of this Nexset: remove its chip.',
    ),
    "batch_size_zero": (
        {"batch_size": "0"},
        "Batch size 0 is invalid. Enter a whole number of records from 1 to 10000.",
    ),
    "batch_size_text": (
        {"batch_size": "abc"},
        "Batch size 'abc' is not a whole number: enter a number of records from 1 to 10000.",
    ),
    "group_by_without_attribute": (
        {"algorithm": "attribute", "group_attribute": ""},
        "Grouping by attribute needs a grouping attribute.",
    ),
    "form_format_with_batching": (
        {"content_format": "form"},
        'Content format "form" sends one record per request. Turn off batching or pick the JSON content format.',
    ),
    "max_bytes_too_small": (
        {"algorithm": "max_bytes", "max_bytes": "50"},
        "Maximum body size 50 is invalid. Enter a whole number of bytes from 100 to 50000000.",
    ),
}


@pytest.mark.parametrize("case", MANUAL_CASES)
def test_manual_field_bad_value_message(case, owner_client, manual_setup):
    changes, message = MANUAL_CASES[case]
    response = submit_form(owner_client, manual_setup, {**changes, "action": "save"})
    assert response.status_code == 200
    assert message in text_of(response)


@pytest.mark.parametrize("case", MANUAL_CASES)
def test_manual_field_bad_value_keeps_others(case, owner_client, manual_setup):
    changes, _ = MANUAL_CASES[case]
    fields = shown_form(owner_client, manual_setup)
    response = post_form(
        owner_client, configure_url(manual_setup), fields, {**changes, "action": "save"}
    )
    expected = {**fields, **{name: [value] for name, value in changes.items()}}
    if "exclude_add" in changes:
        expected["excluded"] = fields["excluded"] + [changes["exclude_add"]]
        expected["exclude_add"] = [""]
    rendered = read_form(response.content.decode())
    lost = {
        name: (values, rendered.get(name))
        for name, values in expected.items()
        if name != "sample" and rendered.get(name) != values
    }
    assert lost == {}


@pytest.mark.parametrize("case", MANUAL_CASES)
def test_manual_field_bad_value_not_saved(case, owner_client, manual_setup):
    changes, _ = MANUAL_CASES[case]
    saved = dict(manual_setup.config)
    submit_form(owner_client, manual_setup, {**changes, "action": "save"})
    manual_setup.refresh_from_db()
    assert manual_setup.config == saved


def test_manual_form_bad_url_keeps_headers_exclusions_batching(
    owner_client, manual_setup
):
    response = submit_form(
        owner_client, manual_setup, {"url": "https://evil.example/x", "action": "save"}
    )
    rendered = read_form(response.content.decode())
    assert rendered["url"] == ["https://evil.example/x"]
    assert rendered["headers"] == ["X-Source:warehouse,X-Trace:abc"]
    assert rendered["excluded"] == ["Phone", "Time Zone"]
    assert rendered["batching_enabled"] == ["on"]
    assert rendered["batch_size"] == ["50"]
    assert rendered["method"] == ["PUT"]
    assert rendered["response_webhook"] == ["on"]


TEMPLATE_CASES = {
    "unknown_template": (
        {"template": "delete_everything"},
        "Endpoint 'delete_everything' is unknown: pick one of Upsert Account, Update Account, Upsert User, Update User, Track Custom Event.",
    ),
    "empty_product_key": (
        {"product_key": ""},
        "The product key is empty: enter the tag key (AP-XXXXXXXXXX-2)",
    ),
    "bad_time_zone": (
        {"timezone": "Mars/Olympus"},
        "Time zone 'Mars/Olympus' is unknown: use an IANA name such as UTC or Europe/Paris.",
    ),
    "unknown_target": (
        {"new_target": "nickname", "new_source": "First Name"},
        '"nickname" is not a Gainsight PX user field: choose a listed field, or customAttributes.<apiName> for a custom attribute',
    ),
}


@pytest.mark.parametrize("case", TEMPLATE_CASES)
def test_template_field_bad_value_message(case, owner_client, users, credential):
    destination = template_destination(users, credential)
    changes, message = TEMPLATE_CASES[case]
    response = submit_form(owner_client, destination, {**changes, "action": "save"})
    assert response.status_code == 200
    assert message in text_of(response)


@pytest.mark.parametrize("case", TEMPLATE_CASES)
def test_template_field_bad_value_keeps_others(case, owner_client, users, credential):
    destination = template_destination(
        users, credential, send_nulls=True, timezone="Europe/Paris"
    )
    changes, _ = TEMPLATE_CASES[case]
    fields = shown_form(owner_client, destination)
    response = post_form(
        owner_client, configure_url(destination), fields, {**changes, "action": "save"}
    )
    rendered = by_target(read_form(response.content.decode()))
    # An unknown template cannot be shown as selected, and a new mapping row
    # moves into the table.
    skipped = {
        "sample",
        "template",
        "new_target",
        "new_source",
        "source of nickname",
        "constant of nickname",
    }
    expected = {
        **by_target(fields),
        **{name: [value] for name, value in changes.items() if name not in skipped},
    }
    lost = {
        name: (values, rendered.get(name))
        for name, values in expected.items()
        if name not in skipped and rendered.get(name) != values
    }
    assert lost == {}


def test_template_unknown_target_row_kept(owner_client, users, credential):
    destination = template_destination(users, credential)
    response = submit_form(
        owner_client,
        destination,
        {"new_target": "nickname", "new_source": "First Name", "action": "save"},
    )
    assert mapping_of(read_form(response.content.decode()))["nickname"] == "First Name"


def test_template_source_not_in_nexset_rejected(owner_client, users, credential):
    destination = template_destination(users, credential)
    fields = shown_form(owner_client, destination)
    row = row_index(fields, "email")
    response = post_form(
        owner_client,
        configure_url(destination),
        fields,
        {f"source_{row}": "E-mail address", "action": "save"},
    )
    assert (
        'email is mapped to "E-mail address", which is not an attribute of this Nexset'
        in text_of(response)
    )


def test_template_valid_form_saves(owner_client, users, credential):
    destination = template_destination(users, credential)
    response = submit_form(
        owner_client, destination, {"product_key": "AP-NEW-2", "action": "save"}
    )
    destination.refresh_from_db()
    assert response.status_code == 302
    assert destination.config["product_key"] == "AP-NEW-2"


def test_template_save_keeps_mapping(owner_client, users, credential):
    destination = template_destination(users, credential)
    mapping = dict(destination.config["mapping"])
    submit_form(owner_client, destination, {"action": "save"})
    destination.refresh_from_db()
    assert destination.config["mapping"] == mapping


def test_template_description_names_method_path_key(owner_client, users, credential):
    destination = template_destination(users, credential, template="update_user")
    page = text_of(owner_client.get(configure_url(destination)))
    description = page.split('id="template-description">', 1)[1].split("</div>", 1)[0]
    assert "PUT /v1/users/update" in description
    assert "key field <code>identifyId</code>" in description
    assert "an update never creates" in description


def test_template_pulldown_lists_five(owner_client, users, credential):
    destination = template_destination(users, credential)
    page = owner_client.get(configure_url(destination)).content.decode()
    select = page.split('id="id_template"', 1)[1].split("</select>", 1)[0]
    assert re.findall(r'<option value="(\w+)"', select) == [
        "upsert_account",
        "update_account",
        "upsert_user",
        "update_user",
        "track_event",
    ]


def test_switch_template_changes_mapping_defaults(owner_client, users, credential):
    destination = template_destination(users, credential)
    response = submit_form(
        owner_client,
        destination,
        {"template": "track_event", "action": "change_template"},
        headers=HTMX,
    )
    mapping = mapping_of(read_form(response.content.decode()))
    assert mapping["attributes.Job Title"] == "Job Title"
    assert "title" not in mapping


def test_switch_template_before_switch_maps_title(owner_client, users, credential):
    destination = template_destination(users, credential)
    assert mapping_of(shown_form(owner_client, destination))["title"] == "Job Title"


def test_switch_template_htmx_returns_fragment(owner_client, users, credential):
    destination = template_destination(users, credential)
    response = submit_form(
        owner_client,
        destination,
        {"template": "track_event", "action": "change_template"},
        headers=HTMX,
    )
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="config-page">')
    assert "<html" not in page


def test_switch_template_saves_nothing(owner_client, users, credential):
    destination = template_destination(users, credential)
    submit_form(
        owner_client,
        destination,
        {"template": "track_event", "action": "change_template"},
        headers=HTMX,
    )
    destination.refresh_from_db()
    assert destination.template == "upsert_user"


CUSTOM_CSV = "User ID,Email,plan,trialEnds\r\nu-1,u1@example.com,gold,2024-05-01\r\n"


def create_through_form(
    client: Any, nexset: Any, credential: Any, template: str = "upsert_user"
) -> Destination:
    client.post(
        reverse("destinations:create"),
        {
            "nexset": nexset.pk,
            "name": "PX",
            "credential": credential.pk,
            "mode": "template",
            "template": template,
        },
    )
    return Destination.objects.get(nexset=nexset)


def test_custom_attributes_rows_with_types(owner_client, make_nexset, credential):
    destination = create_through_form(owner_client, make_nexset(CUSTOM_CSV), credential)
    page = owner_client.get(configure_url(destination)).content.decode()
    for api_name, kind in {
        "plan": "STRING",
        "trialEnds": "DATE_TIME",
        "seats": "NUMBER",
        "beta": "BOOLEAN",
    }.items():
        assert (
            f'<code class="muted">customAttributes.{api_name}</code> <span class="muted field-type">{kind}</span>'
            in page
        )


def test_custom_attributes_default_mapping(owner_client, make_nexset, credential):
    destination = create_through_form(owner_client, make_nexset(CUSTOM_CSV), credential)
    mapping = mapping_of(shown_form(owner_client, destination))
    assert mapping["customAttributes.trialEnds"] == "trialEnds"


def test_custom_attribute_type_converts_date(owner_client, make_nexset, credential):
    destination = create_through_form(owner_client, make_nexset(CUSTOM_CSV), credential)
    response = submit_form(
        owner_client,
        destination,
        {"product_key": "AP-TEST-2"},
        view="destinations:preview",
        headers=HTMX,
    )
    body = json.loads(first_sample_body(response.content.decode()))
    assert body["customAttributes"] == {"plan": "gold", "trialEnds": 1714521600000}


def test_custom_attributes_survive_template_switch(
    owner_client, make_nexset, credential
):
    destination = create_through_form(owner_client, make_nexset(CUSTOM_CSV), credential)
    fields = shown_form(owner_client, destination)
    switched = post_form(
        owner_client,
        configure_url(destination),
        fields,
        {"template": "upsert_account", "action": "change_template"},
        HTMX,
    )
    fields = read_form(switched.content.decode())
    name_row = row_index(fields, "name")
    id_row = row_index(fields, "id")
    changes = {
        "product_key": "AP-TEST-2",
        f"source_{id_row}": "User ID",
        f"source_{name_row}": "__constant__",
        f"constant_{name_row}": "Acme",
        "action": "save",
    }
    post_form(owner_client, configure_url(destination), fields, changes)
    destination.refresh_from_db()
    assert destination.config["custom_types"] == {
        "arr": "NUMBER",
        "tier": "STRING",
        "renewal": "DATE_TIME",
        "churnRisk": "BOOLEAN",
    }


def test_custom_attributes_unreadable_key_reported(
    owner_client, make_nexset, credential, sandbox
):
    nexset = make_nexset(CUSTOM_CSV)
    destination = template_destination(nexset, credential)
    sandbox.state.configure({"fail_next": [403]})
    response = submit_form(
        owner_client, destination, {"action": "refresh_custom_types"}, headers=HTMX
    )
    assert "Custom user attributes could not be read: HTTP 403" in text_of(response)


BAD_DATE_CSV = (
    "User ID,Email,Sign-Up Date\r\n"
    "u-1,u1@example.com,2020-11-29T17:05:23\r\n"
    "u-2,u2@example.com,someday\r\n"
    ",u3@example.com,2021-01-01\r\n"
    "u-4,u4@example.com,last week\r\n"
)


def preview(
    client: Any, destination: Destination, changes: dict[str, Any] | None = None
) -> Any:
    return submit_form(
        client, destination, changes, view="destinations:preview", headers=HTMX
    )


def test_panel_flags_unconvertible_date(owner_client, make_nexset, credential):
    destination = template_destination(make_nexset(BAD_DATE_CSV), credential)
    page = text_of(preview(owner_client, destination))
    assert (
        '#2: Attribute "Sign-Up Date" for signUpDate is invalid. "someday" is not a date'
        in page
    )


def test_panel_shows_good_record(owner_client, make_nexset, credential):
    destination = template_destination(make_nexset(BAD_DATE_CSV), credential)
    body = json.loads(
        first_sample_body(preview(owner_client, destination).content.decode())
    )
    assert body["signUpDate"] == 1606669523000


def test_panel_masks_api_key(owner_client, users, credential):
    page = text_of(preview(owner_client, template_destination(users, credential)))
    assert "X-APTRINSIC-API-KEY: ••••-key" in page
    assert SANDBOX_KEY not in page


def test_panel_shows_manual_headers_and_url(owner_client, manual_setup):
    page = text_of(preview(owner_client, manual_setup))
    assert "X-Source: warehouse" in page
    assert "/v1/users/tinylion155" in page


def test_panel_warns_batching_single_object_endpoint(owner_client, manual_setup):
    page = text_of(preview(owner_client, manual_setup))
    assert "so a batched array will be rejected with 400 Bad Request" in page


def test_panel_batch_body_is_array(owner_client, users, credential):
    destination = manual_destination(
        users,
        credential,
        batching={
            "enabled": True,
            "algorithm": "fixed",
            "batch_size": 100,
            "group_attribute": "",
            "max_bytes": 1000000,
        },
    )
    body = json.loads(
        first_sample_body(preview(owner_client, destination).content.decode())
    )
    assert [record["User ID"] for record in body] == ["tinylion155", "tinyfrog185"]


def test_panel_macro_percent_encoded(owner_client, make_nexset, credential):
    nexset = make_nexset("User ID,Email\r\na/b c?,x@example.com\r\n")
    destination = manual_destination(
        nexset, credential, url="/v1/users/{User ID}", method="PUT"
    )
    assert "/v1/users/a%2Fb%20c%3F" in text_of(preview(owner_client, destination))


def test_panel_shows_form_error(owner_client, manual_setup):
    page = text_of(preview(owner_client, manual_setup, {"headers": "Broken"}))
    assert 'Header "Broken" has no ":"' in page


def test_dry_run_counts_failures_by_reason(owner_client, make_nexset, credential):
    destination = template_destination(make_nexset(BAD_DATE_CSV), credential)
    page = text_of(
        submit_form(
            owner_client, destination, view="destinations:dry_run", headers=HTMX
        )
    )
    assert (
        '<td>Attribute "…" for signUpDate is invalid. "…" is not a date: use ISO 8601 (2020-12-31T10:00:00) or epoch milliseconds</td><td>2</td>'
        in page
    )
    assert (
        '<td>identifyId is required but attribute "…" is empty in this record</td><td>1</td>'
        in page
    )
    assert '<strong id="dry-run-fail" class="flag">3</strong>' in page


def test_dry_run_sends_nothing(owner_client, make_nexset, credential):
    destination = template_destination(make_nexset(BAD_DATE_CSV), credential)
    submit_form(owner_client, destination, view="destinations:dry_run", headers=HTMX)
    assert sandbox_requests() == []


def test_dry_run_counts_batch_requests(owner_client, manual_setup):
    page = text_of(
        submit_form(
            owner_client, manual_setup, view="destinations:dry_run", headers=HTMX
        )
    )
    assert '<strong id="dry-run-send">2</strong> would be sent in 1 request,' in page


def send_test_data(
    client: Any,
    destination: Destination,
    sample: str | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    changes = {} if sample is None else {"sample": sample}
    return submit_form(
        client,
        destination,
        changes,
        view="destinations:test",
        headers=HTMX if headers is None else headers,
    )


def test_send_test_invalid_json_position(owner_client, users, credential):
    response = send_test_data(
        owner_client,
        template_destination(users, credential),
        '{"identifyId": "u-1",\n  "email": }',
    )
    assert (
        "The sample is not valid JSON: Expecting value at line 2, column 12 (character 33)."
        in text_of(response)
    )


def test_send_test_invalid_json_sends_nothing(owner_client, users, credential):
    send_test_data(
        owner_client, template_destination(users, credential), '{"identifyId": '
    )
    assert sandbox_requests() == []


def test_send_test_invalid_json_stores_nothing(owner_client, users, credential):
    destination = template_destination(users, credential)
    send_test_data(owner_client, destination, "[1, 2")
    assert destination.exchanges.count() == 0


def test_send_test_new_user_put_then_post(owner_client, users, credential):
    send_test_data(owner_client, template_destination(users, credential))
    assert [(entry["method"], entry["path"]) for entry in sandbox_requests()] == [
        ("PUT", "/v1/users/update"),
        ("POST", "/v1/users"),
    ]


def test_send_test_sends_panel_sample(owner_client, users, credential):
    destination = template_destination(users, credential)
    page = owner_client.get(configure_url(destination)).content.decode()
    send_test_data(owner_client, destination)
    assert sandbox_requests()[0]["body"] == json.loads(first_sample_body(page))


def test_send_test_existing_user_one_put(owner_client, users, credential, sandbox):
    destination = template_destination(users, credential)
    send_test_data(owner_client, destination)
    earlier = len(sandbox_requests())
    send_test_data(owner_client, destination)
    assert [
        (entry["method"], entry["path"]) for entry in sandbox_requests()[earlier:]
    ] == [("PUT", "/v1/users/update")]


def test_send_test_sends_edited_sample(owner_client, users, credential):
    destination = template_destination(users, credential)
    sample = {
        "identifyId": "edited-1",
        "propertyKeys": ["AP-TEST-2"],
        "firstName": "Édith",
    }
    send_test_data(owner_client, destination, json.dumps(sample))
    assert sandbox_requests("/v1/users", "POST")[0]["body"] == sample


def test_send_test_shows_status_headers_body_time(owner_client, users, credential):
    page = text_of(
        send_test_data(owner_client, template_destination(users, credential))
    )
    assert "HTTP 404</span>" in page
    assert "HTTP 201</span>" in page
    assert re.search(r'<span class="test-time">\d+ ms</span>', page)
    assert re.search(
        r'<pre class="test-response-headers">[^<]*Content-Type: application/json', page
    )
    assert "User was not found for parameters" in page


def test_send_test_stores_exchanges(owner_client, users, credential):
    destination = template_destination(users, credential)
    send_test_data(owner_client, destination)
    assert list(destination.exchanges.values_list("kind", "method", "status")) == [
        (Exchange.Kind.TEST, "POST", 201),
        (Exchange.Kind.TEST, "PUT", 404),
    ]


def test_send_test_exchange_key_masked(owner_client, users, credential):
    destination = template_destination(users, credential)
    send_test_data(owner_client, destination)
    exchange = destination.exchanges.first()
    assert exchange.request_headers["X-APTRINSIC-API-KEY"] == "••••-key"
    assert SANDBOX_KEY not in json.dumps(exchange.request_headers)


def test_send_test_manual_url_uses_excluded_macro(
    owner_client, make_nexset, credential, sandbox
):
    nexset = make_nexset("User ID,Email\r\nu-1,u1@example.com\r\n")
    destination = manual_destination(
        nexset,
        credential,
        url="/v1/users/{User ID}",
        method="PUT",
        excluded=["User ID"],
    )
    send_test_data(owner_client, destination)
    assert [
        (entry["method"], entry["path"], entry["body"]) for entry in sandbox_requests()
    ] == [("PUT", "/v1/users/u-1", {"Email": "u1@example.com"})]


def test_send_test_manual_batch_sends_array(owner_client, manual_setup, sandbox):
    sandbox.state.configure({"batch_events": True})
    submit_form(
        owner_client,
        manual_setup,
        {"url": "/v1/events/custom", "method": "POST"},
        view="destinations:test",
        headers=HTMX,
    )
    assert [entry["User ID"] for entry in sandbox_requests()[0]["body"]] == [
        "tinylion155",
        "tinyfrog185",
    ]


def test_send_test_bad_settings_send_nothing(owner_client, manual_setup):
    response = submit_form(
        owner_client,
        manual_setup,
        {"headers": "Broken"},
        view="destinations:test",
        headers=HTMX,
    )
    assert "Nothing was sent: correct the settings first." in text_of(response)
    assert sandbox_requests() == []


def test_exclusion_chip_add(owner_client, users, credential):
    destination = manual_destination(users, credential)
    response = submit_form(
        owner_client, destination, {"exclude_add": "Phone"}, headers=HTMX
    )
    assert read_form(response.content.decode())["excluded"] == ["Phone"]


def test_exclusion_chip_add_second(owner_client, manual_setup):
    response = submit_form(
        owner_client, manual_setup, {"exclude_add": "Email"}, headers=HTMX
    )
    assert read_form(response.content.decode())["excluded"] == [
        "Phone",
        "Time Zone",
        "Email",
    ]


def test_exclusion_chip_remove(owner_client, manual_setup):
    response = submit_form(
        owner_client, manual_setup, {"exclude_remove": "Phone"}, headers=HTMX
    )
    assert read_form(response.content.decode())["excluded"] == ["Time Zone"]


def test_exclusion_chip_has_remove_button(owner_client, manual_setup):
    page = owner_client.get(configure_url(manual_setup)).content.decode()
    assert '<button type="submit" name="exclude_remove" value="Time Zone"' in page


def test_exclusion_chip_removed_from_body(owner_client, manual_setup):
    body = json.loads(
        first_sample_body(preview(owner_client, manual_setup).content.decode())
    )
    assert "Phone" not in body[0]


def test_batching_settings_follow_algorithm(owner_client, manual_setup):
    page = submit_form(
        owner_client, manual_setup, {"algorithm": "attribute"}, headers=HTMX
    ).content.decode()
    assert 'id="id_group_attribute"' in page
    assert 'id="id_max_bytes"' not in page


def test_plain_post_saves(client, owner, manual_setup):
    client.force_login(owner)
    response = submit_form(
        client, manual_setup, {"url": "/v1/users/{Email}", "action": "save"}
    )
    manual_setup.refresh_from_db()
    assert response.status_code == 302
    assert manual_setup.config["url"] == "/v1/users/{Email}"


def test_plain_post_change_template_full_page(owner_client, users, credential):
    destination = template_destination(users, credential)
    page = submit_form(
        owner_client,
        destination,
        {"template": "track_event", "action": "change_template"},
    ).content.decode()
    assert "<html" in page
    assert "attributes.Job Title" in page


def test_plain_post_add_exclusion(owner_client, users, credential):
    destination = manual_destination(users, credential)
    response = submit_form(
        owner_client, destination, {"exclude_add": "Phone", "action": "exclude"}
    )
    assert read_form(response.content.decode())["excluded"] == ["Phone"]


def test_plain_post_send_test_full_page(owner_client, users, credential):
    destination = template_destination(users, credential)
    page = text_of(submit_form(owner_client, destination, {"action": "test"}))
    assert "<html" in page
    assert "HTTP 201</span>" in page


def test_plain_post_dry_run_full_page(owner_client, users, credential):
    destination = template_destination(users, credential)
    page = text_of(submit_form(owner_client, destination, {"action": "dry_run"}))
    assert '<strong id="dry-run-send">2</strong>' in page


def test_plain_post_sample_panel_updates(owner_client, users, credential):
    destination = template_destination(users, credential)
    page = submit_form(
        owner_client, destination, {"product_key": "AP-OTHER-2", "action": "refresh"}
    ).content.decode()
    assert json.loads(first_sample_body(page))["propertyKeys"] == ["AP-OTHER-2"]


@pytest.fixture
def viewer_client(client, team):
    client.force_login(make_user(team, "victor", Membership.Role.VIEWER))
    return client


def test_viewer_can_view(viewer_client, manual_setup):
    assert viewer_client.get(configure_url(manual_setup)).status_code == 200


def test_viewer_cannot_save(viewer_client, manual_setup):
    response = submit_form(
        viewer_client, manual_setup, {"url": "/v1/users/{Email}", "action": "save"}
    )
    assert response.status_code == 403


def test_viewer_save_changes_nothing(viewer_client, manual_setup):
    submit_form(
        viewer_client, manual_setup, {"url": "/v1/users/{Email}", "action": "save"}
    )
    manual_setup.refresh_from_db()
    assert manual_setup.config["url"] == "/v1/users/{User ID}"


def test_viewer_cannot_send_test(viewer_client, manual_setup):
    response = submit_form(
        viewer_client, manual_setup, view="destinations:test", headers=HTMX
    )
    assert response.status_code == 403


def test_viewer_page_has_no_done_button(viewer_client, manual_setup):
    page = viewer_client.get(configure_url(manual_setup)).content.decode()
    assert 'id="done"' not in page


BROWSER_TIMEOUT_MS = 15_000


def log_in(page: Any, base: str, username: str) -> None:
    page.goto(base + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "correct-horse-battery")
    page.click("button:has-text('Log in')")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_browser_configure_walk(live_server, team, make_nexset, credential, tmp_path):
    make_user(team, "alice")
    users = make_nexset(USERS_CSV, name="Users")
    template = template_destination(users, credential)
    manual = manual_destination(users, credential)
    console_errors: list[str] = []
    # Playwright's sync API runs an event loop in this thread, and Django
    # raises SynchronousOnlyOperation for ORM calls while one runs, so the
    # database is read only before and after the browser steps.
    with chromium_context(tmp_path / "chromium-profile") as context:
        context.set_default_timeout(BROWSER_TIMEOUT_MS)
        page = context.new_page()

        def keep_error(message: Any) -> None:
            # Chromium requests /favicon.ico, which the pages do not link.
            url = message.location.get("url", "")
            if message.type == "error" and not url.endswith("/favicon.ico"):
                console_errors.append(f"{message.text} ({url})")

        page.on("console", keep_error)
        log_in(page, live_server.url, "alice")
        page.goto(live_server.url + configure_url(template))

        # Typing updates the panel, and the untouched sample follows it.
        with page.expect_response(re.compile(r"/preview/$")):
            page.fill("#id_product_key", "AP-TYPED-2")
        expect(page.locator("#sample-panel pre.sample-body").first).to_contain_text(
            '"propertyKeys":["AP-TYPED-2"]'
        )
        expect(page.locator("#id_sample")).to_have_value(re.compile(r'"AP-TYPED-2"'))

        # Enter in a text field re-renders the form and sends nothing.
        page.press("#id_product_key", "Enter")
        expect(page.locator("#id_product_key")).to_have_value("AP-TYPED-2")
        sent_after_enter = sandbox_requests()

        # A sample expands on click.
        second = page.locator("#sample-panel details.sample").nth(1)
        expect(second.locator("pre.sample-body")).not_to_be_visible()
        second.locator("> summary").click()
        expect(second.locator("pre.sample-body")).to_be_visible()

        # An edited sample is kept while the panel updates.
        page.fill(
            "#id_sample", '{"identifyId": "edited-1", "propertyKeys": ["AP-TYPED-2"]}'
        )
        with page.expect_response(re.compile(r"/preview/$")):
            page.fill("#id_timezone", "Europe/Paris")
        expect(page.locator("#id_sample")).to_have_value(re.compile("edited-1"))
        with page.expect_response(re.compile(r"/test/$")):
            page.click("#send-test")
        expect(page.locator("#test-result")).to_contain_text("HTTP 201")
        screenshot(page, "configure-template")

        # Exclusion chips come and go without a page load.
        page.goto(live_server.url + configure_url(manual))
        page.evaluate("window.loadedBeforeChips = true")
        page.select_option("#id_exclude_add", "Phone")
        expect(page.locator("#exclusions .chip")).to_have_count(1)
        page.click("#exclusions .chip button")
        expect(page.locator("#exclusions .chip")).to_have_count(0)
        loaded_before_chips = page.evaluate("window.loadedBeforeChips")
        screenshot(page, "configure-manual")

    assert console_errors == []
    assert sent_after_enter == []
    assert loaded_before_chips is True
    assert [entry["body"]["identifyId"] for entry in sandbox_requests()] == [
        "edited-1",
        "edited-1",
    ]


def test_viewer_cannot_dry_run(viewer_client, manual_setup):
    response = submit_form(
        viewer_client, manual_setup, view="destinations:dry_run", headers=HTMX
    )
    assert response.status_code == 403


def test_viewer_can_switch_template(viewer_client, users, credential):
    destination = template_destination(users, credential)
    changes = {"template": "track_event", "action": "change_template"}
    response = submit_form(viewer_client, destination, changes, headers=HTMX)
    assert response.status_code == 200


def test_panel_warns_batch_larger_than_claim(owner_client, manual_setup):
    page = text_of(preview(owner_client, manual_setup, {"batch_size": "500"}))
    assert "Batch size 500 is larger than the 200 records a worker claims" in page
