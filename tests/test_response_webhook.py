"""The response webhook: every API response of a run becomes a record of a Nexset."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from django.urls import reverse

from destinations.models import Destination
from nexsets.models import Nexset
from tests.conftest import (
    USERS_CSV,
    deliver_in_process,
    manual_destination,
    sandbox_requests,
    template_destination,
)
from tests.test_configure import post_form, shown_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def delivered(
    make_nexset: Any, credential: Any, django_capture_on_commit_callbacks: Any
) -> tuple[Destination, Any]:
    """An upsert of two new users: each is a PUT that returns 404, then a POST."""
    destination = template_destination(
        make_nexset(USERS_CSV), credential, response_webhook=True
    )
    run = deliver_in_process(
        destination, django_capture_on_commit_callbacks, activate=True
    )
    destination.refresh_from_db()
    return destination, run


def response_records(destination: Destination) -> list[dict[str, Any]]:
    return [
        record.data
        for record in destination.response_nexset.records.order_by("position")
    ]


def test_webhook_creates_response_nexset(delivered):
    destination, _ = delivered
    assert destination.response_nexset.source == Nexset.Source.RESPONSES


def test_webhook_nexset_named_after_destination(delivered):
    destination, _ = delivered
    assert destination.response_nexset.name == "PX users responses"


def test_webhook_one_record_per_response(delivered):
    destination, _ = delivered
    assert len(response_records(destination)) == len(sandbox_requests())


def test_webhook_record_statuses(delivered):
    destination, _ = delivered
    assert sorted(record["status"] for record in response_records(destination)) == [
        201,
        201,
        404,
        404,
    ]


def test_webhook_record_contains_body(delivered):
    destination, _ = delivered
    not_found = [
        record for record in response_records(destination) if record["status"] == 404
    ]
    assert (
        "User was not found" in not_found[0]["response"]["externalapierror"]["message"]
    )


def test_webhook_record_contains_latency(delivered):
    destination, _ = delivered
    assert all(record["latency_ms"] >= 0 for record in response_records(destination))


def test_webhook_record_contains_run(delivered):
    destination, run = delivered
    assert {record["run"] for record in response_records(destination)} == {run.pk}


def test_webhook_record_contains_request_records(delivered):
    destination, _ = delivered
    sent = sorted(
        record["request_records"][0]["identifyId"]
        for record in response_records(destination)
    )
    assert sent == ["tinyfrog185", "tinyfrog185", "tinylion155", "tinylion155"]


def test_webhook_record_contains_method_and_url(delivered):
    destination, _ = delivered
    requests = sorted(
        (record["method"], record["url"].rsplit("/v1", 1)[1])
        for record in response_records(destination)
    )
    assert requests == [
        ("POST", "/users"),
        ("POST", "/users"),
        ("PUT", "/users/update"),
        ("PUT", "/users/update"),
    ]


def test_webhook_nexset_has_schema(delivered):
    destination, _ = delivered
    names = destination.response_nexset.attribute_names
    assert {"run", "status", "latency_ms", "request_records", "response"} <= set(names)


def test_webhook_nexset_record_count(delivered):
    destination, _ = delivered
    assert destination.response_nexset.record_count == 4


def test_webhook_off_creates_nothing(
    make_nexset, credential, django_capture_on_commit_callbacks
):
    destination = template_destination(make_nexset(USERS_CSV), credential)
    deliver_in_process(destination, django_capture_on_commit_callbacks, activate=True)
    destination.refresh_from_db()
    assert destination.response_nexset is None


def test_webhook_batch_record_contains_batch(
    make_nexset, credential, sandbox, django_capture_on_commit_callbacks
):
    sandbox.state.configure({"batch_events": True})
    destination = manual_destination(
        make_nexset(USERS_CSV),
        credential,
        response_webhook=True,
        batching={
            "enabled": True,
            "algorithm": "fixed",
            "batch_size": 100,
            "group_attribute": "",
            "max_bytes": 1000000,
        },
    )
    deliver_in_process(destination, django_capture_on_commit_callbacks, activate=True)
    destination.refresh_from_db()
    batches = [
        [item["User ID"] for item in record["request_records"]]
        for record in response_records(destination)
    ]
    assert batches[0] == ["tinylion155", "tinyfrog185"]


@pytest.fixture
def onward(delivered: tuple[Destination, Any], credential: Any) -> Destination:
    """A second destination that sends the response Nexset on."""
    destination, _ = delivered
    return manual_destination(
        destination.response_nexset,
        credential,
        url="/v1/events/custom",
        excluded=["received_at"],
    )


def test_webhook_nexset_onward_panel_renders(owner_client, onward):
    response = owner_client.get(reverse("destinations:configure", args=[onward.pk]))
    assert response.status_code == 200


def test_webhook_nexset_onward_panel_shows_response(owner_client, onward):
    page = owner_client.get(
        reverse("destinations:configure", args=[onward.pk])
    ).content.decode()
    body = json.loads(
        html.unescape(
            re.findall(r'<pre class="sample-body">(.*?)</pre>', page, re.DOTALL)[0]
        )
    )
    assert body["request_records"][0]["identifyId"] in ("tinylion155", "tinyfrog185")


def test_webhook_nexset_onward_can_be_saved(owner_client, onward):
    url = reverse("destinations:configure", args=[onward.pk])
    response = post_form(
        owner_client, url, shown_form(owner_client, onward), {"action": "save"}
    )
    assert response.status_code == 302
