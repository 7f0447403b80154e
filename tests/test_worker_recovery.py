"""Faults, incremental delivery, retries and bisection with a real worker process."""

from __future__ import annotations

import io
import time

import pytest

from destinations import runs
from destinations.models import Destination, RecordResult, Run
from nexsets import ingest
from tests.conftest import (
    manual_destination,
    purge_queue,
    sandbox_requests,
    sandbox_users,
    template_destination,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WORKER_ENV = {
    "DELIVERY_CONCURRENCY": "4",
    "DELIVERY_MAX_ATTEMPTS": "10",
    "DELIVERY_MAX_BACKOFF_SECONDS": "2",
}


def users_csv(count: int, start: int = 0) -> str:
    return "User ID,Email\n" + "".join(f"u{i},u{i}@example.com\n" for i in range(start, start + count))


def wait_until_finished(run: Run, timeout: float = 90.0) -> Run:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if not run.is_active:
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run.pk} still {run.status} after {timeout} s")


@pytest.fixture
def worker(start_worker):
    purge_queue()
    return start_worker(**WORKER_ENV)


def test_faults_and_429_bursts_delivered(worker, make_nexset, credential, sandbox):
    # Custom events make one request per attempt, and a fault is returned
    # before anything is stored, so each event must arrive exactly once.
    sandbox.state.configure(
        {"fault_rate": 0.3, "fault_statuses": [500, 502, 503], "seed": 11, "fail_next": [429] * 15}
    )
    nexset = make_nexset("User ID,Event Name\n" + "".join(f"u{i},Login\n" for i in range(80)))
    destination = template_destination(nexset, credential, "track_event")
    run = wait_until_finished(runs.activate(destination))
    stored = sorted(event["identifyId"] for event in sandbox.state.snapshot()["events"])
    assert run.status == Run.Status.SUCCEEDED
    assert run.succeeded == 80
    assert run.retried > 0
    assert run.throttled >= 15
    assert stored == sorted(f"u{i}" for i in range(80))


def test_second_upload_sends_only_new(worker, make_nexset, credential, sandbox):
    nexset = make_nexset(users_csv(3))
    destination = template_destination(nexset, credential)
    wait_until_finished(runs.activate(destination))
    sandbox.state.reset()
    ingest.append_upload(nexset, io.BytesIO(users_csv(2, start=3).encode()), "more.csv")
    second = destination.runs.order_by("-pk").first()
    wait_until_finished(second)
    assert second.total == 2
    assert sorted(sandbox_users()) == ["u3", "u4"]


def test_retry_failed_sends_only_failures(worker, make_nexset, credential, sandbox):
    sandbox.state.configure({"fail_next": [400, 400]})
    nexset = make_nexset("User ID,Event Name\n" + "".join(f"u{i},Login\n" for i in range(6)))
    destination = template_destination(nexset, credential, "track_event")
    first = wait_until_finished(runs.activate(destination))
    sandbox.state.reset()
    retry = wait_until_finished(runs.retry_failed(destination))
    assert first.failed == 2
    assert retry.succeeded == 2
    assert len(sandbox_requests("/v1/events/custom")) == 2


def test_rejected_batch_bisected(worker, make_nexset, credential, sandbox):
    sandbox.state.configure({"batch_events": True, "batch_error_index": False})
    nexset = make_nexset(
        "identifyId,eventName,propertyKey,userType\n"
        + "".join(f"u{i},{'' if i in (3, 9) else 'Login'},AP-TEST-2,USER\n" for i in range(16))
    )
    destination = manual_destination(
        nexset,
        credential,
        url="/v1/events/custom",
        batching={"enabled": True, "algorithm": "fixed", "batch_size": 8, "group_attribute": "", "max_bytes": 1000000},
    )
    run = wait_until_finished(runs.activate(destination))
    failed = sorted(
        result.record.position for result in run.results.filter(status=RecordResult.Status.FAILED)
    )
    stored = sorted(event["identifyId"] for event in sandbox.state.snapshot()["events"])
    assert failed == [4, 10]
    assert stored == sorted(f"u{i}" for i in range(16) if i not in (3, 9))
    assert Destination.objects.get(pk=destination.pk).status == Destination.Status.ACTIVE
