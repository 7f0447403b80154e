"""A Nexset fed by POSTing JSON to its webhook URL, and the failure export."""

from __future__ import annotations

import csv
import io
import json

import pytest

from destinations.models import Destination, Run
from nexsets.models import Nexset
from tests.conftest import deliver_in_process, sandbox_users, template_destination

pytestmark = pytest.mark.django_db


@pytest.fixture
def hooked(team, owner_client):
    nexset = Nexset.objects.create(
        team=team, name="Signups", source=Nexset.Source.WEBHOOK
    )
    response = owner_client.post(f"/nexsets/{nexset.pk}/webhook-token/")
    token = response.context["token"]
    return nexset, token


def post_records(client, nexset, token, body):
    return client.post(
        f"/hooks/nexsets/{nexset.pk}/",
        data=body if isinstance(body, (bytes, str)) else json.dumps(body),
        content_type="application/json",
        HTTP_X_NEXSET_TOKEN=token,
    )


def test_webhook_array_becomes_records(client, hooked):
    nexset, token = hooked
    response = post_records(
        client, nexset, token, [{"User ID": "w1"}, {"User ID": "w2"}]
    )
    nexset.refresh_from_db()
    assert response.status_code == 202
    assert nexset.record_count == 2
    assert nexset.schema == [{"name": "User ID", "type": "string"}]


def test_webhook_single_object_is_one_record(client, hooked):
    nexset, token = hooked
    post_records(client, nexset, token, {"User ID": "w1"})
    nexset.refresh_from_db()
    assert nexset.record_count == 1


def test_webhook_wrong_token_is_404(client, hooked):
    nexset, _ = hooked
    response = post_records(client, nexset, "wrong", [{"User ID": "w1"}])
    assert response.status_code == 404
    assert nexset.records.count() == 0


def test_webhook_bad_element_stores_nothing(client, hooked):
    nexset, token = hooked
    response = post_records(client, nexset, token, [{"User ID": "w1"}, 5])
    assert response.status_code == 400
    assert "nothing was stored" in response.json()["error"]
    assert nexset.records.count() == 0


def test_webhook_malformed_json_is_400(client, hooked):
    nexset, token = hooked
    response = post_records(client, nexset, token, b'[{"User ID": "w1"')
    assert response.status_code == 400
    assert nexset.records.count() == 0


def test_webhook_records_reach_active_destination(
    client, hooked, credential, django_capture_on_commit_callbacks
):
    nexset, token = hooked
    post_records(client, nexset, token, [{"User ID": "w1"}])
    nexset.refresh_from_db()
    # The destination starts after record 1, which was posted before it existed.
    destination = template_destination(
        nexset, credential, name="PX", status=Destination.Status.ACTIVE, cursor=1
    )
    with django_capture_on_commit_callbacks(execute=True):
        post_records(client, nexset, token, [{"User ID": "w2"}])
    run = deliver_in_process(destination.runs.get(), timeout=30)
    assert run.status == Run.Status.SUCCEEDED
    assert list(sandbox_users()) == ["w2"]


def test_failures_csv_lists_latest_failures(
    owner_client, make_nexset, credential, django_capture_on_commit_callbacks
):
    nexset = make_nexset("User ID,Email\nu1,a@example.com\n,b@example.com\n")
    destination = template_destination(
        nexset, credential, name="PX", status=Destination.Status.ACTIVE
    )
    deliver_in_process(destination, django_capture_on_commit_callbacks, timeout=30)
    response = owner_client.get(f"/destinations/{destination.pk}/failures.csv")
    rows = list(
        csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))
    )
    assert response["Content-Type"] == "text/csv"
    assert [row["position"] for row in rows] == ["2"]
    assert "identifyId" in rows[0]["error"]
