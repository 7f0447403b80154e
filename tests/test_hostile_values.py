"""Messy values from real files reach PX exactly as they should, end to end."""

from __future__ import annotations

import urllib.parse

import pytest

from destinations.models import Destination, RecordResult
from tests.conftest import (
    deliver_in_process,
    manual_destination,
    sandbox_requests,
    sandbox_users,
    template_destination,
)

pytestmark = pytest.mark.django_db

AWKWARD_IDS = ["a/b", "a+b", "50%", "x#1", "why?", "two words", "Zoë", "😀"]
CUSTOM_TYPES = {"plan": "STRING", "trialEnds": "DATE_TIME", "seats": "NUMBER", "beta": "BOOLEAN"}
ACTIVE = Destination.Status.ACTIVE
# Every destination here is active and converts custom attributes by CUSTOM_TYPES.
USER_DESTINATION = {"name": "PX", "status": ACTIVE, "custom_types": CUSTOM_TYPES}


def csv_of(header: str, rows: list[str]) -> str:
    return header + "\n" + "\n".join(rows) + "\n"


def test_awkward_ids_reach_px_unchanged(make_nexset, credential, django_capture_on_commit_callbacks):
    rows = [f'"{identify_id}",x@example.com' for identify_id in AWKWARD_IDS]
    nexset = make_nexset(csv_of("User ID,Email", rows))
    destination = template_destination(nexset, credential, **USER_DESTINATION)
    run = deliver_in_process(destination, django_capture_on_commit_callbacks)
    assert run.succeeded == len(AWKWARD_IDS)
    assert sorted(sandbox_users()) == sorted(AWKWARD_IDS)


def test_url_macro_percent_encodes_ids(make_nexset, credential, sandbox, django_capture_on_commit_callbacks):
    for identify_id in AWKWARD_IDS:
        sandbox.state.users[identify_id] = {"identifyId": identify_id, "propertyKeys": ["AP-TEST-2"]}
    rows = [f'"{identify_id}",Ada' for identify_id in AWKWARD_IDS]
    nexset = make_nexset(csv_of("User ID,firstName", rows))
    destination = manual_destination(
        nexset,
        credential,
        status=ACTIVE,
        method="PUT",
        url="/v1/users/{User ID}",
        excluded=["User ID"],
    )
    run = deliver_in_process(destination, django_capture_on_commit_callbacks)
    paths = [entry["path"] for entry in sandbox_requests(method="PUT")]
    expected = [f"/v1/users/{urllib.parse.quote(i, safe='')}" for i in AWKWARD_IDS]
    assert run.succeeded == len(AWKWARD_IDS)
    assert sorted(urllib.parse.unquote(p) for p in paths) == sorted(
        urllib.parse.unquote(p) for p in expected
    )
    assert all(sandbox_users()[i]["firstName"] == "Ada" for i in AWKWARD_IDS)


def test_values_keep_their_exact_form(make_nexset, credential, django_capture_on_commit_callbacks):
    nexset = make_nexset(
        csv_of(
            "User ID,Account ID,Phone,plan,seats,beta,Note",
            ['007,1234567890123456789,0123,null,12345678901234567,yes,"Café ☕ 😀"'],
        )
    )
    mapping = {
        "identifyId": {"attribute": "User ID"},
        "accountId": {"attribute": "Account ID"},
        "phone": {"attribute": "Phone"},
        "customAttributes.plan": {"attribute": "plan"},
        "customAttributes.seats": {"attribute": "seats"},
        "customAttributes.beta": {"attribute": "beta"},
        "lastName": {"attribute": "Note"},
    }
    destination = template_destination(
        nexset, credential, mapping=mapping, **USER_DESTINATION
    )
    run = deliver_in_process(destination, django_capture_on_commit_callbacks)
    body = sandbox_requests("/v1/users/update")[0]["body"]
    assert run.succeeded == 1
    assert body["identifyId"] == "007"
    assert body["accountId"] == "1234567890123456789"
    assert body["phone"] == "0123"
    assert body["customAttributes"]["plan"] == "null"
    assert body["customAttributes"]["seats"] == 12345678901234567
    assert body["customAttributes"]["beta"] is True
    assert body["lastName"] == "Café ☕ 😀"


def test_false_stays_false_for_booleans(make_nexset, credential, django_capture_on_commit_callbacks):
    nexset = make_nexset(csv_of("User ID,beta", ["u1,false", "u2,0", "u3,FALSE", "u4,no"]))
    mapping = {"identifyId": {"attribute": "User ID"}, "customAttributes.beta": {"attribute": "beta"}}
    destination = template_destination(
        nexset, credential, mapping=mapping, **USER_DESTINATION
    )
    deliver_in_process(destination, django_capture_on_commit_callbacks)
    values = {u: user["customAttributes"]["beta"] for u, user in sandbox_users().items()}
    assert values == {"u1": False, "u2": False, "u3": False, "u4": False}


def test_empty_is_left_out_not_null(make_nexset, credential, django_capture_on_commit_callbacks):
    nexset = make_nexset(csv_of("User ID,Email,firstName", ["u1,,Ann"]))
    destination = template_destination(nexset, credential, **USER_DESTINATION)
    deliver_in_process(destination, django_capture_on_commit_callbacks)
    body = sandbox_requests("/v1/users/update")[0]["body"]
    assert "email" not in body
    assert body["firstName"] == "Ann"


def test_decimal_comma_fails_that_record(make_nexset, credential, django_capture_on_commit_callbacks):
    nexset = make_nexset(csv_of("User ID;seats", ["u1;1,5", "u2;2"]))
    mapping = {"identifyId": {"attribute": "User ID"}, "customAttributes.seats": {"attribute": "seats"}}
    destination = template_destination(
        nexset, credential, mapping=mapping, **USER_DESTINATION
    )
    run = deliver_in_process(destination, django_capture_on_commit_callbacks)
    failed = run.results.get(status=RecordResult.Status.FAILED)
    assert failed.record.position == 1
    assert "1,5" in failed.error
    assert list(sandbox_users()) == ["u2"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2020-11-29T17:05:23", 1606669523000),
        ("2020-11-29T17:05:23+02:00", 1606662323000),
        ("2020-11-29", 1606608000000),
        ("1606669523", 1606669523000),
        ("1606669523000", 1606669523000),
    ],
)
def test_dates_become_epoch_ms(make_nexset, credential, value, expected, django_capture_on_commit_callbacks):
    nexset = make_nexset(csv_of("User ID,Sign-Up Date", [f"u1,{value}"]))
    destination = template_destination(nexset, credential, **USER_DESTINATION)
    deliver_in_process(destination, django_capture_on_commit_callbacks)
    assert sandbox_requests("/v1/users/update")[0]["body"]["signUpDate"] == expected


@pytest.mark.parametrize("value", ["1066-10-14", "2999-01-01T00:00:00Z"])
def test_far_dates_fail_with_reason(make_nexset, credential, value, django_capture_on_commit_callbacks):
    nexset = make_nexset(csv_of("User ID,Sign-Up Date", [f"u1,{value}"]))
    destination = template_destination(nexset, credential, **USER_DESTINATION)
    run = deliver_in_process(destination, django_capture_on_commit_callbacks)
    failed = run.results.get()
    assert failed.status == RecordResult.Status.FAILED
    assert value in failed.error
    assert sandbox_requests() == []
