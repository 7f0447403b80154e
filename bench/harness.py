"""Processes, database and fixtures shared by the benchmarks.

Every benchmark process starts its own Redis server and PX sandbox on free
ports of 127.0.0.1, points Django at a PostgreSQL database of its own
(``pxsync_bench`` by default) and stops everything it started when
it exits. Figures go to stdout and, as one JSON line per run, to
``bench/results/<name>.jsonl``.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from devstack.processes import free_port, redis_command, wait_for_port

BASE_DIR = Path(__file__).resolve().parent.parent
RESULTS_DIR = BASE_DIR / "bench" / "results"
LOG_DIR = RESULTS_DIR / "logs"
PYTHON = sys.executable
# Load averages (1, 5 and 15 minutes) when the benchmark process started.
LOAD_AT_START = os.getloadavg()

POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432"
)
DEFAULT_DATABASE = "pxsync_bench"
SANDBOX_KEY = "bench-sandbox-key"
PRODUCT_KEY = "AP-BENCH-1"
BENCH_SECRET_KEY = "bench-only-secret-key"
BENCH_CREDENTIAL_KEY = base64.urlsafe_b64encode(
    hashlib.sha256(b"pxsync-bench-credential-key").digest()
).decode()

EVENT_COLUMNS = [
    "Account ID",
    "User ID",
    "Event Name",
    "Event Date UTC-MS",
    "Source",
    "Terms",
    "Category",
    "Seq",
]


def stop_process(
    process: subprocess.Popen[bytes], name: str, timeout: float = 15.0
) -> None:
    """Send SIGTERM to the process group of ``process``, then SIGKILL after ``timeout``."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        print(
            f"{name} (pid {process.pid}) did not stop after SIGTERM; sending SIGKILL",
            flush=True,
        )
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout)


def peak_rss_bytes(pid: int) -> tuple[int, int]:
    """Return (current RSS, peak RSS) of a live process from /proc, in bytes.

    The peak is VmHWM, the high-water mark of the process's own address space.
    ru_maxrss is no substitute in a process started with subprocess: Linux
    keeps ru_maxrss across execve, so it starts at the parent's peak.
    """
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) * 1024
    return values["VmRSS"], values["VmHWM"]


class CpuUsage:
    """CPU time used between construction and ``shares()``, by the machine and by given processes."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids
        self.started = time.monotonic()
        self.machine = self._machine_jiffies()
        self.processes = {
            name: self._process_jiffies(pid) for name, pid in pids.items()
        }

    @staticmethod
    def _machine_jiffies() -> tuple[int, int]:
        """Return (busy, total) jiffies of all CPUs from /proc/stat."""
        values = [
            int(value)
            for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        ]
        idle = values[3] + values[4]  # idle and iowait
        total = sum(values[:8])  # user nice system idle iowait irq softirq steal
        return total - idle, total

    @staticmethod
    def _process_jiffies(pid: int) -> int:
        """Return user plus system jiffies of a process, all its threads included."""
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return int(fields[11]) + int(fields[12])  # utime and stime

    def shares(self) -> dict[str, float]:
        """Return the busy share of all CPUs, and each process's CPU use in cores."""
        busy, total = self._machine_jiffies()
        ticks = os.sysconf("SC_CLK_TCK")
        seconds = time.monotonic() - self.started
        result = {
            "machine_busy_share": round(
                (busy - self.machine[0]) / max(1, total - self.machine[1]), 3
            )
        }
        for name, pid in self.pids.items():
            used = (self._process_jiffies(pid) - self.processes[name]) / ticks
            result[f"{name}_cores"] = round(used / seconds, 3)
        return result


# Redis and the sandbox -------------------------------------------------------


class Services:
    """A Redis server and a PX sandbox, each in its own process on 127.0.0.1."""

    def __init__(self, name: str):
        self.name = name
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.redis_url = ""
        self.sandbox: SandboxControl | None = None

    def __enter__(self) -> Services:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        try:
            self._start_redis()
            self._start_sandbox()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        with open(LOG_DIR / f"{self.name}-{name}.log", "wb") as log:
            process = subprocess.Popen(
                args,
                cwd=BASE_DIR,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append((name, process))
        return process

    def _start_redis(self) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError(
                "redis-server is not installed: apt-get install redis-server"
            )
        port = free_port()
        self._start("redis", redis_command(executable, port))
        wait_for_port(port)
        self.redis_url = f"redis://127.0.0.1:{port}/0"

    def _start_sandbox(self) -> None:
        port_file = LOG_DIR / f"{self.name}-sandbox.port"
        port_file.unlink(missing_ok=True)
        process = self._start(
            "sandbox",
            [
                PYTHON,
                "-m",
                "sandbox",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--port-file",
                str(port_file),
                "--api-key",
                SANDBOX_KEY,
                "--log-level",
                "WARNING",
            ],
        )
        deadline = time.monotonic() + 20
        while not port_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the sandbox did not start; see {LOG_DIR / (self.name + '-sandbox.log')}"
                )
            time.sleep(0.05)
        port = int(port_file.read_text())
        self.sandbox = SandboxControl(f"http://127.0.0.1:{port}", process.pid)

    def close(self) -> None:
        for name, process in reversed(self.processes):
            stop_process(process, name)
        self.processes.clear()


class SandboxControl:
    """Client of the sandbox's /_sandbox/ endpoints."""

    def __init__(self, url: str, pid: int):
        self.url = url
        self.pid = pid

    def configure(self, **changes: Any) -> dict[str, Any]:
        response = requests.put(f"{self.url}/_sandbox/config", json=changes, timeout=10)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        requests.post(f"{self.url}/_sandbox/reset", timeout=30).raise_for_status()

    def stats(self) -> dict[str, Any]:
        response = requests.get(f"{self.url}/_sandbox/stats", timeout=30)
        response.raise_for_status()
        return response.json()

    def request_log(self) -> list[dict[str, Any]]:
        response = requests.get(f"{self.url}/_sandbox/requests", timeout=120)
        response.raise_for_status()
        return response.json()

    def state(self) -> dict[str, Any]:
        response = requests.get(f"{self.url}/_sandbox/state", timeout=120)
        response.raise_for_status()
        return response.json()


# Django ------------------------------------------------------------------------


def database_url(database: str) -> str:
    return f"{POSTGRES_URL}/{database}"


def product_env(services: Services, database: str, **overrides: str) -> dict[str, str]:
    """Environment for this process and for the processes it starts."""
    env = dict(os.environ)
    # DEBUG=false as in production: with DEBUG=true Django keeps the last 9,000
    # SQL queries of each connection in memory, which would distort the memory
    # figures. That needs a SECRET_KEY and CREDENTIAL_KEYS of its own.
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=database_url(database),
        REDIS_URL=services.redis_url,
        PX_SANDBOX_URL=services.sandbox.url if services.sandbox else "",
        DEBUG="false",
        SECRET_KEY=BENCH_SECRET_KEY,
        CREDENTIAL_KEYS=BENCH_CREDENTIAL_KEY,
        ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        LOG_LEVEL="INFO",
    )
    env.update(overrides)
    return env


def create_database(database: str) -> None:
    import psycopg

    with psycopg.connect(database_url("postgres"), autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{database}"')


def setup_django(env: dict[str, str]) -> None:
    """Configure Django from ``env``, create the database and migrate it."""
    os.environ.update(env)
    if str(BASE_DIR) not in sys.path:
        sys.path.insert(0, str(BASE_DIR))
    database = env["DATABASE_URL"].rsplit("/", 1)[1]
    create_database(database)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", "--no-input", verbosity=0)


def empty_tables() -> None:
    """Delete every row the product stores, keeping migrations and content types."""
    from django.db import connection

    preserved = {"django_migrations", "django_content_type", "auth_permission"}
    tables = [
        name
        for name in connection.introspection.django_table_names(only_existing=True)
        if name not in preserved
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE "
            + ", ".join(f'"{name}"' for name in tables)
            + " RESTART IDENTITY CASCADE"
        )


# Fixtures ------------------------------------------------------------------------


def event_row(index: int) -> dict[str, str]:
    """Return custom-event record number ``index`` as a CSV upload stores it, all values strings."""
    return {
        "Account ID": f"acct-{index % 500}",
        "User ID": f"user-{index % 5000:05d}",
        "Event Name": ("Search", "Export", "Login", "Share")[index % 4],
        "Event Date UTC-MS": str(1_700_000_000_000 + index * 1000),
        "Source": "bench",
        "Terms": f"query terms number {index}",
        "Category": ("Enterprise", "Team", "Free")[index % 3],
        "Seq": str(index),
    }


def create_credential(team: Any, rate_limit: int) -> Any:
    """Create the team's credential for the sandbox, limited to ``rate_limit`` requests/s."""
    from credentials.models import Credential

    credential = Credential(
        team=team,
        name="Sandbox",
        region=Credential.Region.SANDBOX,
        rate_limit=rate_limit,
    )
    credential.set_api_key(SANDBOX_KEY)
    credential.save()
    return credential


def create_team_and_credential(rate_limit: int) -> tuple[Any, Any]:
    from teams.models import Team

    team = Team.objects.create(name="Benchmarks")
    return team, create_credential(team, rate_limit)


def bulk_insert_records(nexset: Any, rows: Iterator[dict[str, Any]]) -> int:
    """Insert records at positions 1, 2, ... with COPY, bypassing upload parsing.

    COPY writes fixtures about 8 times faster than Record.objects.bulk_create:
    56,000 against 7,200 rows per second for 50,000 rows on the machine
    described in docs/benchmarks.md.
    """
    from django.db import connection, transaction
    from django.utils import timezone

    from nexsets.models import Record

    meta = Record._meta
    columns = [
        meta.get_field(name).column
        for name in ("nexset", "position", "data", "created")
    ]
    statement = f'COPY "{meta.db_table}" ({", ".join(columns)}) FROM STDIN'
    now = timezone.now()
    count = 0
    with (
        transaction.atomic(),
        connection.cursor() as cursor,
        cursor.cursor.copy(statement) as copy,
    ):
        for row in rows:
            count += 1
            copy.write_row((nexset.pk, count, json.dumps(row), now))
    return count


def create_event_nexset(team: Any, count: int, name: str = "Events") -> Any:
    """Create a Nexset of ``count`` custom-event records with its schema."""
    from nexsets.models import Nexset
    from nexsets.schema import SchemaBuilder

    builder = SchemaBuilder()
    for index in range(min(count, 100)):
        builder.add(event_row(index))
    nexset = Nexset.objects.create(
        team=team,
        name=name,
        schema=[{"name": a.name, "type": a.type} for a in builder.attributes()],
    )
    nexset.record_count = bulk_insert_records(
        nexset, (event_row(i) for i in range(count))
    )
    nexset.save(update_fields=["record_count"])
    return nexset


def create_event_destination(nexset: Any, credential: Any) -> Any:
    """Create an active Track Custom Event destination with the default mapping."""
    from destinations.forms import initial_config
    from destinations.models import Destination

    config = initial_config("template", "track_event", nexset.attribute_names, {})
    config["product_key"] = PRODUCT_KEY
    return Destination.objects.create(
        team=nexset.team,
        name="PX events",
        nexset=nexset,
        credential=credential,
        mode="template",
        template="track_event",
        config=config,
        status=Destination.Status.ACTIVE,
    )


def planned_bodies(destination: Any) -> list[bytes]:
    """Return the request bodies the product sends for the destination's records."""
    from destinations.plan import DeliveryPlan
    from nexsets.models import Record

    records = Record.objects.filter(nexset_id=destination.nexset_id)
    items = list(records.order_by("position").values_list("position", "data"))
    planned, rejected = DeliveryPlan.for_destination(destination).plan(items)
    if rejected:
        raise RuntimeError(
            f"{len(rejected)} records were rejected, first: {rejected[0].reason}"
        )
    return [request.body for request in planned]


# Worker --------------------------------------------------------------------------


class Worker:
    """A Celery worker process (solo pool, as the end-to-end tests start it)."""

    def __init__(self, env: dict[str, str], log_name: str):
        self.env = env
        self.log_path = LOG_DIR / f"{log_name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Worker:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def start(self, timeout: float = 60.0) -> Worker:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    PYTHON,
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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b"ready." in self.log_path.read_bytes():
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited; see {self.log_path}")
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"the worker was not ready after {timeout:g} s; see {self.log_path}"
        )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, "worker")


def purge_broker() -> None:
    import redis
    from django.conf import settings

    redis.Redis.from_url(settings.REDIS_URL).flushdb()


def start_run(destination: Any) -> Any:
    """Create a run of every record after the cursor; the commit queues its task."""
    from destinations import runs

    run = runs.create_run(destination)
    if run is None:
        raise RuntimeError(f"destination {destination.pk} has no records to send")
    return run


def wait_for_run(run: Any, timeout: float, poll: float = 0.2) -> Any:
    """Poll until the run leaves the queued and running states; raise after ``timeout``."""
    from destinations.models import Run

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = Run.objects.get(pk=run.pk)
        if not current.is_active:
            return current
        time.sleep(poll)
    current = Run.objects.get(pk=run.pk)
    raise TimeoutError(
        f"run {run.pk} is still {current.status} after {timeout:g} s: {current.done} of {current.total} records done"
    )


def sending_gaps(
    request_log: list[dict[str, Any]], claim_size: int, threshold: float = 0.05
) -> dict[str, Any]:
    """Find pauses of more than ``threshold`` seconds between requests arriving at the sandbox.

    Returns their count and total in seconds, the same for the pauses at a
    claimed chunk's boundary, and the median request spacing, which is 1/rate
    for a sender held to its rate. A pause is at a chunk boundary when the
    records sent before and after it belong to different chunks. That relies
    on the fixtures: record ``Seq`` n is the record at position n + 1, and
    one worker claims records in position order, ``claim_size`` at a time.
    """
    entries = sorted(request_log, key=lambda entry: entry["time"])
    spacings = []
    gaps = []
    boundary_gaps = []
    for earlier, later in itertools.pairwise(entries):
        spacing = later["time"] - earlier["time"]
        spacings.append(spacing)
        if spacing <= threshold:
            continue
        gaps.append(spacing)
        chunks = {
            int(entry["body"]["attributes"]["Seq"]) // claim_size
            for entry in (earlier, later)
        }
        if len(chunks) == 2:
            boundary_gaps.append(spacing)
    spacings.sort()
    return {
        "gaps_over_50ms": len(gaps),
        "gap_seconds": round(sum(gaps), 2),
        "chunk_boundary_gaps": len(boundary_gaps),
        "chunk_boundary_gap_seconds": round(sum(boundary_gaps), 2),
        "median_spacing_ms": (
            round(spacings[len(spacings) // 2] * 1000, 2) if spacings else None
        ),
    }


def run_seconds(run: Any) -> float:
    """Seconds from the worker starting the run to the run closing."""
    return (run.finished_at - run.started_at).total_seconds()


# Results -------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_at_start": [round(value, 2) for value in LOAD_AT_START],
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        info["postgresql"] = cursor.fetchone()[0]
    # The version of the redis-server binary that Services starts.
    version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True
    ).stdout
    info["redis"] = version.split("v=", 1)[1].split()[0] if "v=" in version else version
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
    )
    dirty = subprocess.run(
        # --no-optional-locks: status must not refresh and rewrite the index.
        ["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
    )
    info["commit"] = commit.stdout.strip() + (
        "+changes" if dirty.stdout.strip() else ""
    )
    return info


def save_result(name: str, figures: dict[str, Any]) -> Path:
    """Append the figures with the machine description to bench/results/<name>.jsonl."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    entry = {
        "benchmark": name,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        **figures,
    }
    path = RESULTS_DIR / f"{name}.jsonl"
    with path.open("a") as handle:
        handle.write(json.dumps(entry) + "\n")
    return path


def print_figures(title: str, rows: list[tuple[str, Any]]) -> None:
    print(f"\n== {title}", flush=True)
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label:<{width}}  {value}", flush=True)
