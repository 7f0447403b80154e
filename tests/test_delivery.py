"""Delivery through the engine, in process, against the sandbox over HTTP."""

from __future__ import annotations

import pytest

from destinations.models import Destination, Run
from tests.conftest import (
    EVENTS_CSV,
    USERS_CSV,
    deliver_in_process,
    sandbox_requests,
    sandbox_users,
    template_destination,
)

pytestmark = pytest.mark.django_db


def test_upsert_user_creates_both_users(
    make_nexset, credential, sandbox, django_capture_on_commit_callbacks
):
    nexset = make_nexset(USERS_CSV)
    destination = template_destination(
        nexset, credential, name="PX", status=Destination.Status.ACTIVE
    )
    run = deliver_in_process(destination, django_capture_on_commit_callbacks)
    assert run.status == Run.Status.SUCCEEDED
    assert run.succeeded == 2
    users = sandbox_users()
    assert users["tinyfrog185"]["signUpDate"] == 1606669523000
    assert users["tinylion155"]["signUpDate"] == 1559696309000
    assert users["tinylion155"]["location"] == {"timeZone": "GMT+7"}
    assert users["tinylion155"]["propertyKeys"] == ["AP-TEST-2"]


def test_track_event_posts_one_event(
    make_nexset, credential, sandbox, django_capture_on_commit_callbacks
):
    nexset = make_nexset(EVENTS_CSV, name="Events")
    destination = template_destination(
        nexset,
        credential,
        template="track_event",
        name="PX",
        status=Destination.Status.ACTIVE,
    )
    run = deliver_in_process(destination, django_capture_on_commit_callbacks)
    assert run.status == Run.Status.SUCCEEDED
    posted = sandbox_requests("/v1/events/custom", "POST")
    assert [entry["body"] for entry in posted] == [
        {
            "identifyId": "tinylion155",
            "propertyKey": "AP-TEST-2",
            "accountId": "3",
            "eventName": "Search",
            "date": 1560499354771,
            "attributes": {
                "Source": "CSV",
                "Terms": "Example of search terms",
                "Category": "Enterprise",
            },
            "userType": "USER",
        }
    ]
