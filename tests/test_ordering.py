"""Records that share a key: the last one wins, as in the file."""

from __future__ import annotations

import pytest

from destinations.models import RecordResult
from tests.conftest import (
    deliver_in_process,
    sandbox_requests,
    sandbox_users,
    template_destination,
)

pytestmark = pytest.mark.django_db

DUPLICATES = (
    "User ID,Email\n"
    "dupA,a1@example.com\n"
    "dupA,a2@example.com\n"
    "dupA,a3@example.com\n"
    "dupB,b@example.com\n"
    "dupB,b@example.com\n"
)


def test_last_record_per_key_wins(make_nexset, credential, django_capture_on_commit_callbacks):
    destination = template_destination(make_nexset(DUPLICATES), credential)
    run = deliver_in_process(destination, django_capture_on_commit_callbacks, activate=True)
    users = sandbox_users()
    assert users["dupA"]["email"] == "a3@example.com"
    assert users["dupB"]["email"] == "b@example.com"
    assert run.succeeded == 2
    assert run.skipped == 3


def test_superseded_records_name_their_successor(make_nexset, credential, django_capture_on_commit_callbacks):
    destination = template_destination(make_nexset(DUPLICATES), credential)
    run = deliver_in_process(destination, django_capture_on_commit_callbacks, activate=True)
    first = run.results.get(record__position=1)
    assert first.status == RecordResult.Status.SKIPPED
    assert first.error == "superseded by record #3, which has the same identifyId"
    assert len(sandbox_requests("/v1/users/update")) == 2


def test_events_with_one_user_all_sent(make_nexset, credential, django_capture_on_commit_callbacks):
    nexset = make_nexset("User ID,Event Name\nu1,Login\nu1,Login\nu1,Logout\n")
    destination = template_destination(nexset, credential, template="track_event")
    run = deliver_in_process(destination, django_capture_on_commit_callbacks, activate=True)
    assert run.succeeded == 3
    assert len(sandbox_requests("/v1/events/custom")) == 3
