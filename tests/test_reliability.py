"""Retries, rate limits, bisection and incremental delivery, in process."""

from __future__ import annotations

import io
import time

import pytest
from django.db import connection

from destinations import runs
from destinations.engine import RunDelivery
from destinations.models import Destination, RecordResult, Run
from destinations.ratelimit import SharedRateLimit
from nexsets import ingest
from tests.conftest import (
    deliver_in_process,
    manual_destination,
    sandbox_requests,
    sandbox_users,
    template_destination,
)

pytestmark = pytest.mark.django_db

ACTIVE = Destination.Status.ACTIVE
# Seconds that each in-process delivery here may take.
DELIVERY_TIMEOUT = 120


def user_rows(count: int, start: int = 0) -> str:
    lines = ["User ID,Email,Plan"]
    lines += [f"u{i},u{i}@example.com,gold" for i in range(start, start + count)]
    return "\n".join(lines) + "\n"


def event_rows(count: int, bad: set[int] = frozenset()) -> str:
    lines = ["User ID,Event Name,Source"]
    lines += [f"u{i},{'' if i in bad else 'Login'},csv" for i in range(count)]
    return "\n".join(lines) + "\n"


def test_retries_5xx_and_429_until_delivered(
    make_nexset, credential, sandbox, settings, django_capture_on_commit_callbacks
):
    # Custom events make one request per attempt, and a fault is returned
    # before anything is stored, so each event must arrive exactly once.
    settings.DELIVERY_MAX_ATTEMPTS = 10
    settings.DELIVERY_MAX_BACKOFF_SECONDS = 2.0
    sandbox.state.configure(
        {
            "fault_rate": 0.3,
            "fault_statuses": [500, 502, 503],
            "seed": 7,
            "fail_next": [429] * 10,
        }
    )
    nexset = make_nexset(event_rows(60))
    destination = template_destination(
        nexset, credential, "track_event", name="PX", status=ACTIVE
    )
    run = deliver_in_process(
        destination, django_capture_on_commit_callbacks, timeout=DELIVERY_TIMEOUT
    )
    stored = sorted(event["identifyId"] for event in sandbox.state.snapshot()["events"])
    assert run.status == Run.Status.SUCCEEDED
    assert run.succeeded == 60
    assert run.retried > 0
    assert run.throttled >= 10
    assert stored == sorted(f"u{i}" for i in range(60))


def test_gives_up_after_max_attempts(
    make_nexset, credential, sandbox, settings, django_capture_on_commit_callbacks
):
    settings.DELIVERY_MAX_ATTEMPTS = 2
    sandbox.state.configure({"fault_rate": 1.0, "fault_statuses": [503]})
    nexset = make_nexset(user_rows(1))
    destination = template_destination(nexset, credential, name="PX", status=ACTIVE)
    run = deliver_in_process(
        destination, django_capture_on_commit_callbacks, timeout=DELIVERY_TIMEOUT
    )
    result = RecordResult.objects.get(run=run)
    assert run.status == Run.Status.FAILED
    assert result.error.startswith("gave up after 2 attempts: HTTP 503")


def test_client_error_is_not_retried(
    make_nexset, credential, sandbox, django_capture_on_commit_callbacks
):
    sandbox.state.configure({"fail_next": [400]})
    nexset = make_nexset(user_rows(1))
    destination = template_destination(nexset, credential, name="PX", status=ACTIVE)
    run = deliver_in_process(
        destination, django_capture_on_commit_callbacks, timeout=DELIVERY_TIMEOUT
    )
    assert run.failed == 1
    assert run.retried == 0
    assert len(sandbox_requests()) == 1


def test_wrong_key_pauses_destination(
    make_nexset, credential, sandbox, django_capture_on_commit_callbacks
):
    credential.set_api_key("not-the-sandbox-key")
    credential.save()
    nexset = make_nexset(user_rows(50))
    destination = template_destination(nexset, credential, name="PX", status=ACTIVE)
    run = deliver_in_process(
        destination, django_capture_on_commit_callbacks, timeout=DELIVERY_TIMEOUT
    )
    destination.refresh_from_db()
    assert destination.status == Destination.Status.PAUSED
    assert destination.status_reason.startswith("authentication failed: HTTP 401")
    assert run.status == Run.Status.PAUSED
    assert run.results.filter(status=RecordResult.Status.PENDING).count() == 50
    assert len(sandbox_requests()) <= 16


def test_missing_required_field_fails_before_http(
    make_nexset, credential, sandbox, django_capture_on_commit_callbacks
):
    nexset = make_nexset("User ID,Email\nu1,a@example.com\n,b@example.com\n")
    destination = template_destination(nexset, credential, name="PX", status=ACTIVE)
    run = deliver_in_process(
        destination, django_capture_on_commit_callbacks, timeout=DELIVERY_TIMEOUT
    )
    failed = run.results.get(status=RecordResult.Status.FAILED)
    assert run.status == Run.Status.PARTIAL
    assert "identifyId" in failed.error
    assert failed.response_status is None
    assert list(sandbox_users()) == ["u1"]


def test_second_upload_sends_only_new_records(
    make_nexset, credential, sandbox, django_capture_on_commit_callbacks
):
    nexset = make_nexset(user_rows(3))
    destination = template_destination(nexset, credential, name="PX", status=ACTIVE)
    deliver_in_process(
        destination, django_capture_on_commit_callbacks, timeout=DELIVERY_TIMEOUT
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ingest.append_upload(
            nexset, io.BytesIO(user_rows(2, start=3).encode()), "more.csv"
        )
    sandbox.state.reset()
    with django_capture_on_commit_callbacks(execute=False):
        for callback in callbacks:
            callback()
    second = destination.runs.order_by("-pk").first()
    deliver_in_process(second, timeout=DELIVERY_TIMEOUT)
    assert second.total == 2
    assert sorted(sandbox_users()) == ["u3", "u4"]


def test_unchanged_records_are_skipped(
    make_nexset, credential, sandbox, django_capture_on_commit_callbacks
):
    nexset = make_nexset(user_rows(3))
    destination = template_destination(nexset, credential, name="PX", status=ACTIVE)
    deliver_in_process(
        destination, django_capture_on_commit_callbacks, timeout=DELIVERY_TIMEOUT
    )
    with django_capture_on_commit_callbacks(execute=False):
        ingest.append_upload(
            nexset,
            io.BytesIO(
                b"User ID,Email,Plan\nu0,u0@example.com,gold\nu1,new@example.com,gold\n"
            ),
            "again.csv",
        )
    sandbox.state.reset()
    run = deliver_in_process(
        destination, django_capture_on_commit_callbacks, timeout=DELIVERY_TIMEOUT
    )
    assert run.skipped == 1
    assert run.succeeded == 1
    assert [
        entry["body"]["identifyId"] for entry in sandbox_requests("/v1/users/update")
    ] == ["u1"]


def test_retry_failed_resends_only_failures(
    make_nexset, credential, sandbox, django_capture_on_commit_callbacks
):
    sandbox.state.configure({"fail_next": [400, 400]})
    nexset = make_nexset(event_rows(6))
    destination = template_destination(
        nexset, credential, template="track_event", name="PX", status=ACTIVE
    )
    with django_capture_on_commit_callbacks(execute=False):
        run = runs.create_run(destination)
    settings_concurrency = RunDelivery(run).concurrency
    assert settings_concurrency >= 1
    deliver_in_process(run, timeout=DELIVERY_TIMEOUT)
    assert run.failed == 2
    sandbox.state.reset()
    with django_capture_on_commit_callbacks(execute=False):
        retry = runs.retry_failed(destination)
    deliver_in_process(retry, timeout=DELIVERY_TIMEOUT)
    assert retry.total == 2
    assert retry.succeeded == 2
    assert len(sandbox_requests("/v1/events/custom")) == 2
    assert runs.latest_failed_record_ids(destination) == []


def batch_event_destination(make_nexset, credential, bad=(3, 9), count=16):
    nexset = make_nexset(
        "identifyId,eventName,propertyKey,userType\n"
        + "".join(
            f"u{i},{'' if i in bad else 'Login'},AP-TEST-2,USER\n" for i in range(count)
        )
    )
    return manual_destination(
        nexset,
        credential,
        status=ACTIVE,
        url="/v1/events/custom",
        batching={
            "enabled": True,
            "algorithm": "fixed",
            "batch_size": 8,
            "group_attribute": "",
            "max_bytes": 1000000,
        },
    )


def stored_event_users(sandbox):
    return sorted(event["identifyId"] for event in sandbox.state.snapshot()["events"])


def failed_positions(run):
    return sorted(
        r.record.position for r in run.results.filter(status=RecordResult.Status.FAILED)
    )


def test_batch_errors_fail_only_named_records(
    make_nexset, credential, sandbox, django_capture_on_commit_callbacks
):
    sandbox.state.configure({"batch_events": True})
    destination = batch_event_destination(make_nexset, credential)
    run = deliver_in_process(
        destination, django_capture_on_commit_callbacks, timeout=DELIVERY_TIMEOUT
    )
    assert failed_positions(run) == [4, 10]
    assert run.succeeded == 14
    assert stored_event_users(sandbox) == sorted(
        f"u{i}" for i in range(16) if i not in (3, 9)
    )
    # Two rejected batches, then each batch again without its bad record.
    assert len(sandbox_requests("/v1/events/custom")) == 4


def test_rejected_batch_is_bisected(
    make_nexset, credential, sandbox, django_capture_on_commit_callbacks
):
    sandbox.state.configure({"batch_events": True, "batch_error_index": False})
    destination = batch_event_destination(make_nexset, credential)
    run = deliver_in_process(
        destination, django_capture_on_commit_callbacks, timeout=DELIVERY_TIMEOUT
    )
    assert failed_positions(run) == [4, 10]
    assert run.succeeded == 14
    assert stored_event_users(sandbox) == sorted(
        f"u{i}" for i in range(16) if i not in (3, 9)
    )


def test_shared_limit_spaces_requests(credential, settings):
    limit = SharedRateLimit(credential.pk, rate=50)
    started = time.monotonic()
    for _ in range(26):
        limit.acquire()
    elapsed = time.monotonic() - started
    # 26 slots at 50 per second: the last one starts 25 intervals later.
    assert elapsed >= 25 / 50 * 0.95


def test_penalty_halves_shared_rate(credential):
    limit = SharedRateLimit(credential.pk, rate=100)
    assert limit.penalize() == pytest.approx(0.5, abs=0.01)
    assert limit.penalize() == pytest.approx(0.25, abs=0.01)


@pytest.mark.django_db(transaction=True)
def test_edit_applies_to_unsent_records(
    make_nexset, credential, sandbox, settings, django_capture_on_commit_callbacks
):
    settings.DELIVERY_CONCURRENCY = 1
    sandbox.state.configure({"latency_ms": 100})
    nexset = make_nexset(event_rows(30))
    destination = template_destination(
        nexset, credential, template="track_event", name="PX", status=ACTIVE
    )
    with django_capture_on_commit_callbacks(execute=False):
        run = runs.create_run(destination)

    import threading

    def edit_soon():
        time.sleep(0.8)
        edited = Destination.objects.get(pk=destination.pk)
        edited.config = {**edited.config, "product_key": "AP-EDITED-2"}
        edited.save()
        connection.close()

    editor = threading.Thread(target=edit_soon)
    editor.start()
    deliver_in_process(run, timeout=DELIVERY_TIMEOUT)
    editor.join()
    keys = [
        entry["body"]["propertyKey"] for entry in sandbox_requests("/v1/events/custom")
    ]
    assert run.succeeded == 30
    assert len(keys) == 30
    assert keys[0] == "AP-TEST-2"
    assert keys[-1] == "AP-EDITED-2"
    # Once the edit is seen, no request goes out with the old key again.
    assert keys == sorted(keys, key=lambda key: key == "AP-EDITED-2")


def test_grouping_by_excluded_macro_attribute(make_nexset, credential, sandbox, django_capture_on_commit_callbacks):
    sandbox.state.configure({"batch_events": True})
    nexset = make_nexset(
        "team,identifyId,eventName,propertyKey,userType\n"
        "red,u1,Login,AP-TEST-2,USER\nblue,u2,Login,AP-TEST-2,USER\nred,u3,Login,AP-TEST-2,USER\n"
    )
    destination = manual_destination(
        nexset,
        credential,
        status=ACTIVE,
        url="/v1/events/custom?team={team}",
        excluded=["team"],
        batching={"enabled": True, "algorithm": "attribute", "batch_size": 10, "group_attribute": "team", "max_bytes": 1000000},
    )
    deliver_in_process(
        destination, django_capture_on_commit_callbacks, timeout=DELIVERY_TIMEOUT
    )
    sent = {entry["query"]: [event["identifyId"] for event in entry["body"]] for entry in sandbox_requests("/v1/events/custom")}
    assert sent == {"team=red": ["u1", "u3"], "team=blue": ["u2"]}
