"""Benchmark 1: delivery throughput when every PX response is delayed by 100 ms.

Three senders post the same Track Custom Event bodies to one sandbox that adds
``--latency-ms`` to each response and has no rate limit:

- sequential: one request at a time, each on a new requests.Session (a new
  TCP connection per record), timed on the first ``--sample`` records;
- raw: a ThreadPoolExecutor with DELIVERY_CONCURRENCY threads sharing one
  requests.Session whose pool keeps that many connections;
- product: a Celery worker process delivering a run of ``--records`` records.

Targets: product >= 20x sequential and >= 0.8x raw.
"""

from __future__ import annotations

import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from requests.adapters import HTTPAdapter

from bench import harness

NAME = "throughput"
EVENTS_PATH = "/v1/events/custom"


def headers() -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-APTRINSIC-API-KEY": harness.SANDBOX_KEY,
    }


def send_sequential(url: str, bodies: list[bytes]) -> float:
    """Post each body on a new session; return records per second."""
    started = time.perf_counter()
    for body in bodies:
        with requests.Session() as session:
            response = session.post(url, data=body, headers=headers(), timeout=15)
        if response.status_code != 201:
            raise RuntimeError(
                f"sequential post failed: HTTP {response.status_code} {response.text[:200]}"
            )
    return len(bodies) / (time.perf_counter() - started)


def send_raw(url: str, bodies: list[bytes], concurrency: int) -> float:
    """Post every body from ``concurrency`` threads sharing one session; return records per second."""
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=concurrency))
    failures: list[str] = []
    lock = threading.Lock()

    def post(body: bytes) -> None:
        response = session.post(url, data=body, headers=headers(), timeout=15)
        if response.status_code != 201:
            with lock:
                failures.append(f"HTTP {response.status_code}")

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(post, bodies))
    elapsed = time.perf_counter() - started
    session.close()
    if failures:
        raise RuntimeError(f"{len(failures)} raw posts failed, first: {failures[0]}")
    return len(bodies) / elapsed


def median_roundtrip_ms(
    url: str, body: bytes, reuse_connection: bool, count: int = 31
) -> float:
    """Return the median time of one post, on one kept-alive session or a new one each."""
    timings = []
    shared = requests.Session()
    for _ in range(count):
        started = time.perf_counter()
        if reuse_connection:
            shared.post(url, data=body, headers=headers(), timeout=15)
        else:
            with requests.Session() as session:
                session.post(url, data=body, headers=headers(), timeout=15)
        timings.append(time.perf_counter() - started)
    shared.close()
    timings.sort()
    return timings[len(timings) // 2] * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench throughput", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--records",
        type=int,
        default=3000,
        help="records in the product run and the raw run (default 3000)",
    )
    parser.add_argument(
        "--sample",
        type=int,
        default=100,
        help="records posted by the sequential sender (default 100)",
    )
    parser.add_argument(
        "--latency-ms",
        type=int,
        default=100,
        help="delay the sandbox adds to each response, in ms (default 100)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="DELIVERY_CONCURRENCY for the worker and the raw sender (default: the product setting)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300,
        help="seconds to wait for the product run before giving up (default 300)",
    )
    args = parser.parse_args(argv)

    with harness.Services(NAME) as services:
        overrides = (
            {"DELIVERY_CONCURRENCY": str(args.concurrency)} if args.concurrency else {}
        )
        env = harness.product_env(services, harness.DEFAULT_DATABASE, **overrides)
        harness.setup_django(env)
        from django.conf import settings

        from destinations.engine import claim_size

        concurrency = settings.DELIVERY_CONCURRENCY
        harness.empty_tables()
        harness.purge_broker()
        sandbox = services.sandbox
        sandbox.configure(latency_ms=0, rate_limit=0)

        # A credential limit far above what any sender here reaches, so that
        # only the sandbox's latency bounds the rate.
        team, credential = harness.create_team_and_credential(rate_limit=10_000)
        nexset = harness.create_event_nexset(team, args.records)
        destination = harness.create_event_destination(nexset, credential)
        bodies = harness.planned_bodies(destination)
        url = sandbox.url + EVENTS_PATH

        # The sandbox's own round trip without added latency, on a reused and on
        # a new connection: any difference is time spent in the sandbox or the
        # TCP stack, not in the delivery code.
        reused_ms = median_roundtrip_ms(url, bodies[0], reuse_connection=True)
        new_ms = median_roundtrip_ms(url, bodies[0], reuse_connection=False)
        sandbox.configure(latency_ms=args.latency_ms, rate_limit=0)

        sandbox.reset()
        sequential_rate = send_sequential(url, bodies[: args.sample])

        sandbox.reset()
        raw_rate = send_raw(url, bodies, concurrency)
        raw_events = sandbox.stats()["events"]

        sandbox.reset()
        with harness.Worker(env, f"{NAME}-worker") as worker:
            cpu = harness.CpuUsage({"worker": worker.pid, "sandbox": sandbox.pid})
            run = harness.start_run(destination)
            run = harness.wait_for_run(run, args.timeout)
            cpu_shares = cpu.shares()
        stats = sandbox.stats()
        product_seconds = harness.run_seconds(run)
        product_rate = run.succeeded / product_seconds

    figures = {
        "records": args.records,
        "sample": args.sample,
        "latency_ms": args.latency_ms,
        "concurrency": concurrency,
        "claim_size": claim_size(credential),
        "tasks_per_run": settings.DELIVERY_TASKS_PER_RUN,
        "sequential_records_per_s": round(sequential_rate, 2),
        "raw_records_per_s": round(raw_rate, 1),
        "raw_events_stored": raw_events,
        "product_records_per_s": round(product_rate, 1),
        "product_seconds": round(product_seconds, 2),
        "product_run_status": run.status,
        "product_succeeded": run.succeeded,
        "product_requests": stats["total_requests"],
        "product_events_stored": stats["events"],
        "roundtrip_ms_reused_connection": round(reused_ms, 2),
        "roundtrip_ms_new_connection": round(new_ms, 2),
        # Little's law: at most `concurrency` requests in flight, each taking
        # the added latency plus the measured round trip on a reused connection.
        "ceiling_records_per_s": round(
            concurrency * 1000 / (args.latency_ms + reused_ms), 1
        ),
        "product_vs_sequential": round(product_rate / sequential_rate, 2),
        "product_vs_raw": round(product_rate / raw_rate, 3),
    }
    figures.update(cpu_shares)
    figures["targets_met"] = {
        "product_vs_sequential>=20": figures["product_vs_sequential"] >= 20,
        "product_vs_raw>=0.8": figures["product_vs_raw"] >= 0.8,
        "nothing_lost": run.succeeded == args.records
        and stats["events"] == args.records,
    }
    harness.save_result(NAME, figures)
    harness.print_figures(
        f"{NAME}: {args.records} records, {args.latency_ms} ms per response, concurrency {concurrency}",
        list(figures.items()),
    )


if __name__ == "__main__":
    main()
