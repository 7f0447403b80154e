from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection

from credentials.models import Credential
from destinations import runs
from destinations.engine import RunDelivery
from destinations.forms import initial_config
from destinations.models import Destination, Run
from nexsets import ingest
from nexsets.models import Nexset
from teams.models import Membership, Team
from tests.services import SANDBOX, SANDBOX_KEY

BASE_DIR = Path(__file__).resolve().parent.parent
_SANDBOX_DEFAULTS = {
    name: value
    for name, value in SANDBOX.state.config_json().items()
    if name != "api_key_count"
}


@pytest.fixture(autouse=True)
def _clean_sandbox_and_limits() -> Iterator[None]:
    """Give every test an empty sandbox with default settings and fresh rate limits."""
    SANDBOX.state.reset()
    SANDBOX.state.configure(_SANDBOX_DEFAULTS)
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter("pxsync:*"):
        client.delete(key)
    yield


@pytest.fixture
def sandbox() -> Any:
    return SANDBOX


def sandbox_requests(
    path: str | None = None, method: str | None = None
) -> list[dict[str, Any]]:
    """Return what the sandbox received, optionally for one path and method."""
    received = requests.get(SANDBOX.url + "/_sandbox/requests", timeout=5).json()
    return [
        entry
        for entry in received
        if (path is None or entry["path"] == path)
        and (method is None or entry["method"] == method)
    ]


def sandbox_users() -> dict[str, dict[str, Any]]:
    return {user["identifyId"]: user for user in SANDBOX.state.snapshot()["users"]}


def sandbox_accounts() -> dict[str, dict[str, Any]]:
    return {account["id"]: account for account in SANDBOX.state.snapshot()["accounts"]}


@pytest.fixture
def team(db: None) -> Team:
    return Team.objects.create(name="Acme data")


def make_user(team: Team, username: str, role: str = Membership.Role.OWNER) -> Any:
    user = get_user_model().objects.create_user(
        username=username, password="correct-horse-battery"
    )
    Membership.objects.create(team=team, user=user, role=role)
    return user


@pytest.fixture
def owner(team: Team) -> Any:
    return make_user(team, "alice")


@pytest.fixture
def owner_client(client: Any, owner: Any) -> Any:
    client.force_login(owner)
    return client


@pytest.fixture
def credential(team: Team) -> Credential:
    credential = Credential(team=team, name="Sandbox", region=Credential.Region.SANDBOX)
    credential.set_api_key(SANDBOX_KEY)
    credential.save()
    return credential


@pytest.fixture
def make_nexset(team: Team) -> Callable[..., Nexset]:
    def make(
        content: bytes | str, filename: str = "records.csv", name: str = "Records"
    ) -> Nexset:
        data = content.encode() if isinstance(content, str) else content
        return ingest.create_from_upload(team, name, io.BytesIO(data), filename)

    return make


def template_destination(
    nexset: Nexset,
    credential: Credential,
    template: str = "upsert_user",
    *,
    name: str = "PX users",
    status: str = Destination.Status.DRAFT,
    custom_types: dict[str, str] | None = None,
    cursor: int = 0,
    **config: Any,
) -> Destination:
    """Create an endpoint-template destination with product key AP-TEST-2.

    The config starts as the configure form would, with the template's default
    mapping for the Nexset's attributes, and `config` replaces its keys.
    """
    base = initial_config(
        "template", template, nexset.attribute_names, custom_types or {}
    )
    base["product_key"] = "AP-TEST-2"
    base.update(config)
    return Destination.objects.create(
        team=nexset.team,
        name=name,
        nexset=nexset,
        credential=credential,
        mode="template",
        template=template,
        config=base,
        status=status,
        cursor=cursor,
    )


def manual_destination(
    nexset: Nexset,
    credential: Credential,
    *,
    name: str = "PX manual",
    status: str = Destination.Status.DRAFT,
    **config: Any,
) -> Destination:
    """Create a manual-mode destination.

    The config starts as the configure form's, and `config` replaces its keys.
    """
    base = initial_config("manual", "", nexset.attribute_names, {})
    base.update(config)
    return Destination.objects.create(
        team=nexset.team,
        name=name,
        nexset=nexset,
        credential=credential,
        mode="manual",
        template="",
        config=base,
        status=status,
    )


def deliver_in_process(
    destination_or_run: Destination | Run,
    capture: Callable[..., Any] | None = None,
    *,
    activate: bool = False,
    timeout: float = 60,
) -> Run:
    """Deliver a run with RunDelivery in this process and return it refreshed.

    Given a destination, first create its run inside `capture`, the
    django_capture_on_commit_callbacks fixture, so that the Celery tasks the
    run queues on commit are dropped. With activate=True the destination's
    status is first set to ACTIVE by a queryset update, which writes no audit
    entry and creates no run. RunDelivery stops after `timeout` seconds, even
    with records left unsent.
    """
    if isinstance(destination_or_run, Run):
        run = destination_or_run
    else:
        destination = destination_or_run
        if capture is None:
            raise TypeError(
                "capture is missing: pass django_capture_on_commit_callbacks to deliver a destination"
            )
        if activate:
            Destination.objects.filter(pk=destination.pk).update(
                status=Destination.Status.ACTIVE
            )
        with capture(execute=False):
            run = runs.create_run(destination)
        assert run is not None, f"destination {destination.pk} has no new records"
    RunDelivery(run).execute(time.monotonic() + timeout)
    run.refresh_from_db()
    return run


USERS_CSV = (
    "User ID,Job Title,Email,First Name,Last Name,Sign-Up Date,Role,Phone,Time Zone\r\n"
    "tinylion155,BigData Engineer,user1@example.com,Alex,Doe,1559696309000,Admin,(555)-010-0001,GMT+7\r\n"
    "tinyfrog185,Software Engineer,user2@example.com,Sam,Roe,2020-11-29T17:05:23,Slappy,(555)-010-0002,GMT+7\r\n"
)
EVENTS_CSV = (
    "Account ID,User ID,Event Name,Event Date UTC-MS,Source,Terms,Category\r\n"
    "3,tinylion155,Search,1560499354771,CSV,Example of search terms,Enterprise"
)


class WorkerProcess:
    """A real Celery worker process on the test database and Redis."""

    def __init__(self, env: dict[str, str], log_path: Path, concurrency: int = 1):
        self.env = env
        self.log_path = log_path
        self.concurrency = concurrency
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "--loglevel",
                    "INFO",
                    "--pool",
                    "solo",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],
                cwd=BASE_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if b"ready." in self.log_path.read_bytes():
                return self
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"worker exited: {self.log_path.read_text()[-3000:]}"
                )
            time.sleep(0.1)
        raise RuntimeError(
            f"worker not ready after 30 s: {self.log_path.read_text()[-3000:]}"
        )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(15)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)


def worker_env(**overrides: str) -> dict[str, str]:
    """Environment for a worker process that uses the test database."""
    env = dict(os.environ)
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    else:
        user = db.get("USER") or ""
        password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
        auth = f"{user}{password}@" if user else ""
        env["DATABASE_URL"] = (
            f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
        )
    env["REDIS_URL"] = settings.REDIS_URL
    env["PX_SANDBOX_URL"] = SANDBOX.url
    env.update(overrides)
    return env


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(**overrides: str) -> WorkerProcess:
        log_path = tmp_path / f"worker-{len(started)}.log"
        worker = WorkerProcess(worker_env(**overrides), log_path).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def purge_queue() -> None:
    """Drop tasks left in the broker by earlier tests."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete("celery", "unacked", "unacked_index")
