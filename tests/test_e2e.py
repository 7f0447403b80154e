"""The main user walk through the views, delivered by a real Celery worker process.

The test client logs in, uploads a file, creates and configures a destination
through the same forms a browser posts, and activates it. A worker process
started by `start_worker` then takes the task from Redis, reads the committed
test database and sends to the sandbox over HTTP.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from credentials.models import Credential
from destinations.models import Destination, RecordResult, Run
from nexsets.models import Nexset
from teams.models import Team
from tests.conftest import (
    EVENTS_CSV,
    USERS_CSV,
    purge_queue,
    sandbox_requests,
    sandbox_users,
)
from tests.html_form import submitted_fields
from tests.services import SANDBOX

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PRODUCT_KEY = "AP-E2E-2"
RUN_TIMEOUT_SECONDS = 60
PASSWORD = "correct-horse-battery"
SAMPLE_BODY = re.compile(r'<pre class="sample-body">(.*?)</pre>', re.DOTALL)

USER_BODIES = {
    "tinylion155": {
        "identifyId": "tinylion155",
        "propertyKeys": [PRODUCT_KEY],
        "title": "BigData Engineer",
        "email": "user1@example.com",
        "firstName": "Alex",
        "lastName": "Doe",
        "signUpDate": 1559696309000,
        "role": "Admin",
        "phone": "(555)-010-0001",
        "location": {"timeZone": "GMT+7"},
    },
    "tinyfrog185": {
        "identifyId": "tinyfrog185",
        "propertyKeys": [PRODUCT_KEY],
        "title": "Software Engineer",
        "email": "user2@example.com",
        "firstName": "Sam",
        "lastName": "Roe",
        "signUpDate": 1606669523000,
        "role": "Slappy",
        "phone": "(555)-010-0002",
        "location": {"timeZone": "GMT+7"},
    },
}
EVENT_BODY = {
    "identifyId": "tinylion155",
    "propertyKey": PRODUCT_KEY,
    "accountId": "3",
    "eventName": "Search",
    "date": 1560499354771,
    "attributes": {"Source": "CSV", "Terms": "Example of search terms", "Category": "Enterprise"},
    "userType": "USER",
}


def form_fields(page: str, form_id: str) -> dict[str, str]:
    fields = submitted_fields(page, form_id)
    assert fields, f"no form #{form_id} on the page"
    return dict(fields)


def log_in(client: Any, owner: Any) -> None:
    response = client.post(reverse("login"), {"username": owner.username, "password": PASSWORD})
    assert response.status_code == 302, html.unescape(response.content.decode())
    assert response["Location"] == reverse("home")


def upload(client: Any, content: str, filename: str) -> Nexset:
    response = client.post(reverse("nexsets:create"), {"file": SimpleUploadedFile(filename, content.encode())})
    assert response.status_code == 302, html.unescape(response.content.decode())
    return Nexset.objects.get(pk=int(response["Location"].rstrip("/").rsplit("/", 1)[1]))


def create_destination(client: Any, nexset: Nexset, credential: Credential, template: str) -> Destination:
    """Walk from the Nexset to a saved destination through the create and configure forms."""
    response = client.post(
        reverse("destinations:create"),
        {
            "nexset": nexset.pk,
            "name": f"{nexset.name} to PX",
            "credential": credential.pk,
            "mode": "template",
            "template": template,
        },
    )
    assert response.status_code == 302, html.unescape(response.content.decode())
    destination = Destination.objects.get(nexset=nexset)
    assert response["Location"] == reverse("destinations:configure", args=[destination.pk])

    page = client.get(response["Location"]).content.decode()
    fields = form_fields(page, "config-form")
    assert fields["template"] == template
    fields["product_key"] = PRODUCT_KEY
    fields["action"] = "save"
    response = client.post(reverse("destinations:configure", args=[destination.pk]), fields)
    assert response.status_code == 302, html.unescape(response.content.decode())
    assert response["Location"] == reverse("destinations:detail", args=[destination.pk])

    destination.refresh_from_db()
    assert destination.template == template
    assert destination.config["product_key"] == PRODUCT_KEY
    assert destination.status == Destination.Status.DRAFT
    return destination


def activate(client: Any, destination: Destination) -> Run:
    response = client.post(reverse("destinations:activate", args=[destination.pk]))
    assert response.status_code == 302
    return Run.objects.get(destination=destination)


def wait_for(condition: Callable[[], Any], description: str, timeout: float = RUN_TIMEOUT_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {description}")


def wait_for_run(run: Run) -> Run:
    def finished() -> Run | None:
        run.refresh_from_db()
        return None if run.is_active else run

    return wait_for(finished, f"run {run.pk} to finish")


def delivery_requests() -> list[dict[str, Any]]:
    """Sandbox requests of the delivery, without the attribute lookup of the create form."""
    return [entry for entry in sandbox_requests() if not entry["path"].startswith("/v1/admin/")]


def sample_bodies(page: str) -> list[Any]:
    """Return the request bodies of the sample panel, parsed."""
    return [json.loads(html.unescape(body)) for body in SAMPLE_BODY.findall(page)]


def exchange_key(entry: dict[str, Any]) -> tuple[str, str, int, str]:
    return entry["method"], entry["path"], entry["status"], entry["body"]["identifyId"]


@pytest.fixture
def worker(start_worker: Callable[..., Any]) -> Any:
    purge_queue()
    return start_worker()


def test_upsert_users_walk(client: Any, owner: Any, credential: Credential, worker: Any) -> None:
    log_in(client, owner)
    nexset = upload(client, USERS_CSV, "users.csv")
    destination = create_destination(client, nexset, credential, "upsert_user")
    configure_page = client.get(reverse("destinations:configure", args=[destination.pk])).content.decode()
    assert sample_bodies(configure_page) == list(USER_BODIES.values())

    run = wait_for_run(activate(client, destination))

    assert run.status == Run.Status.SUCCEEDED
    assert run.total == 2
    assert run.sent == 2
    assert run.succeeded == 2
    assert run.failed == 0
    assert run.last_error == ""
    requests = delivery_requests()
    # Records are sent in parallel, so only the order per user is fixed.
    assert sorted(exchange_key(entry) for entry in requests) == [
        ("POST", "/v1/users", 201, "tinyfrog185"),
        ("POST", "/v1/users", 201, "tinylion155"),
        ("PUT", "/v1/users/update", 404, "tinyfrog185"),
        ("PUT", "/v1/users/update", 404, "tinylion155"),
    ]
    for entry in requests:
        assert entry["body"] == USER_BODIES[entry["body"]["identifyId"]]
        assert entry["key_valid"] is True
    for identify_id in USER_BODIES:
        assert [entry["method"] for entry in requests if entry["body"]["identifyId"] == identify_id] == ["PUT", "POST"]
    users = sandbox_users()
    assert set(users) == set(USER_BODIES)
    assert users["tinyfrog185"]["signUpDate"] == 1606669523000
    assert users["tinylion155"]["location"] == {"timeZone": "GMT+7"}

    page = html.unescape(client.get(reverse("destinations:detail", args=[destination.pk])).content.decode())
    assert '<strong id="run-succeeded">2</strong>' in page
    assert "hx-trigger=" not in page.split('id="runs"', 1)[1].split(">", 1)[0]
    destination.refresh_from_db()
    assert destination.status == Destination.Status.ACTIVE
    assert destination.last_error == ""


def test_track_event_walk(client: Any, owner: Any, credential: Credential, worker: Any) -> None:
    log_in(client, owner)
    nexset = upload(client, EVENTS_CSV, "events.csv")
    destination = create_destination(client, nexset, credential, "track_event")

    run = wait_for_run(activate(client, destination))

    assert run.status == Run.Status.SUCCEEDED
    assert run.total == 1
    assert run.sent == 1
    assert run.succeeded == 1
    assert run.failed == 0
    requests = delivery_requests()
    assert [(entry["method"], entry["path"], entry["status"]) for entry in requests] == [
        ("POST", "/v1/events/custom", 201)
    ]
    assert requests[0]["body"] == EVENT_BODY
    assert SANDBOX.state.snapshot()["events"] == [EVENT_BODY]


def test_missing_identify_id_fails_alone(client: Any, owner: Any, credential: Credential, worker: Any) -> None:
    csv_text = USERS_CSV + ",Ghost Writer,ghost@example.com,No,Id,1559696309000,Admin,(555)-010-0003,GMT+7\r\n"
    log_in(client, owner)
    nexset = upload(client, csv_text, "users.csv")
    destination = create_destination(client, nexset, credential, "upsert_user")

    run = wait_for_run(activate(client, destination))

    assert run.status == Run.Status.PARTIAL
    assert run.total == 3
    assert run.succeeded == 2
    assert run.failed == 1
    failed = RecordResult.objects.get(run=run, status=RecordResult.Status.FAILED)
    assert failed.record.position == 3
    assert failed.error == 'identifyId is required but attribute "User ID" is empty in this record'
    assert failed.request is None
    assert failed.response_status is None
    assert run.last_error == failed.error
    requests = delivery_requests()
    assert len(requests) == 4
    assert {entry["body"]["identifyId"] for entry in requests} == set(USER_BODIES)
    assert not any(entry["body"].get("email") == "ghost@example.com" for entry in requests)
    assert set(sandbox_users()) == set(USER_BODIES)

    page = html.unescape(client.get(reverse("destinations:detail", args=[destination.pk])).content.decode())
    assert 'identifyId is required but attribute "User ID" is empty in this record' in page


def test_wrong_key_pauses_destination(client: Any, owner: Any, team: Team, start_worker: Callable[..., Any]) -> None:
    concurrency = 4
    purge_queue()
    start_worker(DELIVERY_CONCURRENCY=str(concurrency))
    credential = Credential(team=team, name="Wrong key", region=Credential.Region.SANDBOX)
    credential.set_api_key("wrong-key-0000-1234")
    credential.save()
    rows = "".join(f"user-{index},user{index}@example.com\r\n" for index in range(40))
    log_in(client, owner)
    nexset = upload(client, "User ID,Email\r\n" + rows, "users.csv")
    destination = create_destination(client, nexset, credential, "upsert_user")

    run = activate(client, destination)

    def paused() -> Destination | None:
        destination.refresh_from_db()
        return destination if destination.status == Destination.Status.PAUSED else None

    wait_for(paused, "the destination to pause", timeout=30)
    time.sleep(2)  # Any retries would show up in the request count by now.
    requests = delivery_requests()
    assert 1 <= len(requests) <= concurrency
    assert all(entry["status"] == 401 for entry in requests)
    assert all(entry["method"] == "PUT" for entry in requests)
    assert destination.status_reason.startswith("authentication failed: HTTP 401")
    assert destination.last_error == destination.status_reason
    run.refresh_from_db()
    assert run.status == Run.Status.PAUSED
    assert run.last_error.startswith("authentication failed")
    # Nothing failed: the records wait, unsent, for a fixed key and a resume.
    assert run.failed == 0
    assert run.succeeded == 0
    assert RecordResult.objects.filter(run=run, status=RecordResult.Status.PENDING).count() == 40

    page = html.unescape(client.get(reverse("destinations:detail", args=[destination.pk])).content.decode())
    assert "Paused: authentication failed: HTTP 401" in page
    assert 'id="activate"' in page


def test_append_sends_only_new_records(client: Any, owner: Any, credential: Credential, worker: Any) -> None:
    log_in(client, owner)
    nexset = upload(client, USERS_CSV, "users.csv")
    destination = create_destination(client, nexset, credential, "upsert_user")
    first = wait_for_run(activate(client, destination))
    assert first.status == Run.Status.SUCCEEDED
    before = len(delivery_requests())
    header, lion, frog = USERS_CSV.splitlines()[:3]
    more = "\r\n".join([
        header,
        lion.replace("user1@example.com", "lion@example.com"),
        frog,
        "tinyowl7,Analyst,owl@example.com,Olu,Wu,1559696309000,Admin,(555)-010-0009,GMT+7",
    ]) + "\r\n"

    response = client.post(
        reverse("nexsets:append", args=[nexset.pk]), {"file": SimpleUploadedFile("more.csv", more.encode())}
    )
    assert response.status_code == 302

    second = wait_for(
        lambda: Run.objects.filter(destination=destination).exclude(pk=first.pk).first(),
        "the run of the appended records",
    )
    second = wait_for_run(second)
    assert second.total == 3
    assert second.status == Run.Status.SUCCEEDED
    assert second.succeeded == 2
    assert second.skipped == 1
    requests = delivery_requests()[before:]
    assert sorted(exchange_key(entry) for entry in requests) == [
        ("POST", "/v1/users", 201, "tinyowl7"),
        ("PUT", "/v1/users/update", 204, "tinylion155"),
        ("PUT", "/v1/users/update", 404, "tinyowl7"),
    ]
    assert sandbox_users()["tinylion155"]["email"] == "lion@example.com"
