"""Delivery by real Celery worker processes: crashes, Redis restarts, sharing."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import redis

from destinations import runs
from destinations.models import RecordResult, Run
from destinations.tasks import deliver_run, resume_stalled_runs
from tests.conftest import purge_queue, sandbox_requests, template_destination

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CONCURRENCY = 4


def event_csv(count: int) -> str:
    return "User ID,Event Name\n" + "".join(f"u{i},Login\n" for i in range(count))


def wait_for(predicate, timeout: float = 90.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def finished(run: Run) -> bool:
    run.refresh_from_db()
    return not run.is_active


def events_per_user() -> Counter[str]:
    return Counter(event["identifyId"] for event in _sandbox_events())


def _sandbox_events():
    from tests.services import SANDBOX

    return SANDBOX.state.snapshot()["events"]


def test_killed_worker_run_resumes(make_nexset, credential, sandbox, start_worker):
    purge_queue()
    sandbox.state.configure({"latency_ms": 30})
    count = 400
    destination = template_destination(
        make_nexset(event_csv(count)), credential, "track_event", name="Events"
    )
    env = {
        "DELIVERY_CONCURRENCY": str(CONCURRENCY),
        "DELIVERY_LEASE_SECONDS": "2",
        "DELIVERY_CLAIM_SIZE": "20",
    }
    worker = start_worker(**env)
    run = runs.activate(destination)
    wait_for(
        lambda: run.results.filter(status=RecordResult.Status.SUCCEEDED).count() >= 80
    )
    worker.kill(signal.SIGKILL)
    sent_before_restart = len(_sandbox_events())
    assert sent_before_restart < count
    start_worker(**env)
    # The beat schedule runs this every few seconds; call it once the lease has run out.
    time.sleep(2.5)
    with override_lease(2):
        resume_stalled_runs()
    wait_for(lambda: finished(run))
    per_user = events_per_user()
    assert run.status == Run.Status.SUCCEEDED
    assert run.succeeded == count
    assert sorted(per_user) == sorted(f"u{i}" for i in range(count))
    # Only requests in flight when the worker died may have been sent twice.
    assert sum(per_user.values()) - count <= CONCURRENCY


class override_lease:
    def __init__(self, seconds: int):
        self.seconds = seconds

    def __enter__(self):
        from django.conf import settings

        self.previous = settings.DELIVERY_LEASE_SECONDS
        settings.DELIVERY_LEASE_SECONDS = self.seconds

    def __exit__(self, *exc):
        from django.conf import settings

        settings.DELIVERY_LEASE_SECONDS = self.previous


def test_two_workers_share_one_run(make_nexset, credential, sandbox, start_worker):
    purge_queue()
    sandbox.state.configure({"latency_ms": 20})
    count = 300
    destination = template_destination(
        make_nexset(event_csv(count)), credential, "track_event", name="Events"
    )
    env = {"DELIVERY_CONCURRENCY": str(CONCURRENCY), "DELIVERY_CLAIM_SIZE": "10"}
    start_worker(**env)
    start_worker(**env)
    run = runs.activate(destination)
    deliver_run.delay(run.pk)
    wait_for(lambda: finished(run))
    workers = set(run.results.values_list("claimed_by", flat=True))
    per_user = events_per_user()
    assert run.status == Run.Status.SUCCEEDED
    assert len(workers) == 2
    assert sorted(per_user) == sorted(f"u{i}" for i in range(count))
    assert set(per_user.values()) == {1}


def test_limit_holds_across_two_workers(make_nexset, credential, sandbox, start_worker):
    purge_queue()
    credential.rate_limit = 25
    credential.save()
    count = 150
    destination = template_destination(
        make_nexset(event_csv(count)), credential, "track_event", name="Events"
    )
    env = {"DELIVERY_CONCURRENCY": str(CONCURRENCY), "DELIVERY_CLAIM_SIZE": "10"}
    start_worker(**env)
    start_worker(**env)
    run = runs.activate(destination)
    deliver_run.delay(run.pk)
    wait_for(lambda: finished(run))
    times = sorted(entry["time"] for entry in sandbox_requests("/v1/events/custom"))
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert run.succeeded == count
    span = times[-1] - times[0]
    # Requests leave 40 ms apart; they arrive with a few ms of jitter, so a
    # one-second window may catch a couple more than 25.
    assert busiest <= 28
    assert (len(times) - 1) / span <= 25 * 1.05


def test_run_survives_redis_restart(
    make_nexset, credential, sandbox, start_worker, tmp_path
):
    url, process = start_redis_with_disk(tmp_path)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    sandbox.state.configure({"latency_ms": 30})
    count = 300
    destination = template_destination(
        make_nexset(event_csv(count)), credential, "track_event", name="Events"
    )
    env = {
        "DELIVERY_CONCURRENCY": str(CONCURRENCY),
        "DELIVERY_CLAIM_SIZE": "20",
        "REDIS_URL": url,
        "DELIVERY_SLICE_SECONDS": "3",
    }
    start_worker(**env)
    try:
        with use_broker(url):
            run = runs.activate(destination)
        wait_for(
            lambda: (
                run.results.filter(status=RecordResult.Status.SUCCEEDED).count() >= 50
            )
        )
        process.terminate()
        process.wait(10)
        time.sleep(2)
        process = restart_redis(tmp_path, port)
        wait_for(lambda: finished(run), timeout=120)
    finally:
        process.kill()
    per_user = events_per_user()
    assert run.status == Run.Status.SUCCEEDED
    assert sorted(per_user) == sorted(f"u{i}" for i in range(count))
    assert sum(per_user.values()) - count <= CONCURRENCY


class use_broker:
    """Send this process's tasks to another Redis for the duration."""

    def __init__(self, url: str):
        self.url = url

    def __enter__(self):
        from config.celery import app

        self.previous = app.conf.broker_url
        self._switch(app, self.url)

    def __exit__(self, *exc):
        from config.celery import app

        self._switch(app, self.previous)

    @staticmethod
    def _switch(app, url):
        app.close()
        app.amqp._producer_pool = None
        app.conf.broker_url = url


def start_redis_with_disk(directory: Path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0", restart_redis(directory, port)


def restart_redis(directory: Path, port: int) -> subprocess.Popen[bytes]:
    """Start Redis with an append-only file, as production runs it."""
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    wait_for(lambda: _pings(client), timeout=10, interval=0.05)
    return process


def _pings(client) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
