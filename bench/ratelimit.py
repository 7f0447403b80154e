"""Benchmark 2: delivery under a PX rate limit of R requests per second.

The sandbox responds with 429 beyond R requests per second per API key (a
token bucket with one second of burst), and the credential's rate_limit is R too.
A Celery worker process delivers a Track Custom Event run of ``--records``
records.

Targets: the run sends at >= 0.95 R on average, <= 1% of requests get 429,
and the sandbox stores every record exactly once.
"""

from __future__ import annotations

import argparse
import statistics

from bench import harness

NAME = "ratelimit"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench ratelimit", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--records", type=int, default=20_000, help="records in the run (default 20000)"
    )
    parser.add_argument(
        "--rate",
        type=int,
        default=200,
        help="R: requests per second of the sandbox and the credential (default 200)",
    )
    parser.add_argument(
        "--latency-ms",
        type=int,
        default=0,
        help="delay the sandbox adds to each response, in ms (default 0)",
    )
    parser.add_argument(
        "--synchronous-commit-off",
        action="store_true",
        help="diagnostic: run the worker's PostgreSQL sessions with synchronous_commit=off, to measure what waiting for each commit's WAL flush costs",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=600,
        help="seconds to wait for the run before giving up (default 600)",
    )
    args = parser.parse_args(argv)

    with harness.Services(NAME) as services:
        env = harness.product_env(services, harness.DEFAULT_DATABASE)
        worker_env = dict(env)
        if args.synchronous_commit_off:
            # libpq reads PGOPTIONS, so this reaches only the worker's connections.
            worker_env["PGOPTIONS"] = "-c synchronous_commit=off"
        harness.setup_django(env)
        from django.conf import settings

        from destinations.engine import claim_size

        harness.empty_tables()
        harness.purge_broker()
        sandbox = services.sandbox
        sandbox.configure(latency_ms=args.latency_ms, rate_limit=args.rate)

        team, credential = harness.create_team_and_credential(rate_limit=args.rate)
        nexset = harness.create_event_nexset(team, args.records)
        destination = harness.create_event_destination(nexset, credential)

        sandbox.reset()
        with harness.Worker(worker_env, f"{NAME}-worker") as worker:
            cpu = harness.CpuUsage({"worker": worker.pid, "sandbox": sandbox.pid})
            run = harness.start_run(destination)
            run = harness.wait_for_run(run, args.timeout)
            cpu_shares = cpu.shares()
        stats = sandbox.stats()
        events = sandbox.state()["events"]
        # The number of records the worker claims at a time for this credential.
        chunk_size = claim_size(credential)
        gaps = harness.sending_gaps(sandbox.request_log(), chunk_size)

    seconds = harness.run_seconds(run)
    total = stats["total_requests"]
    throttled = stats["status_429"]
    accepted = total - throttled
    # Whole seconds only: the first and last second of the run are partial.
    per_second = [entry["count"] for entry in stats["per_second"]][1:-1]
    distinct = len({event["attributes"]["Seq"] for event in events})
    figures = {
        "records": args.records,
        "rate": args.rate,
        "latency_ms": args.latency_ms,
        "concurrency": settings.DELIVERY_CONCURRENCY,
        "claim_size": chunk_size,
        "tasks_per_run": settings.DELIVERY_TASKS_PER_RUN,
        "synchronous_commit_off": args.synchronous_commit_off,
        "run_status": run.status,
        "run_seconds": round(seconds, 2),
        "run_succeeded": run.succeeded,
        "run_failed": run.failed,
        "run_retried": run.retried,
        "requests": total,
        "requests_429": throttled,
        "share_429": round(throttled / total, 5) if total else None,
        "accepted_per_s": round(accepted / seconds, 1),
        "accepted_vs_rate": round(accepted / seconds / args.rate, 3),
        "median_requests_per_whole_second": statistics.median(per_second)
        if per_second
        else None,
        "min_requests_per_whole_second": min(per_second) if per_second else None,
        "max_requests_per_whole_second": max(per_second) if per_second else None,
        "events_stored": stats["events"],
        "distinct_records_stored": distinct,
    }
    figures.update(gaps)
    figures.update(cpu_shares)
    figures["targets_met"] = {
        "accepted_vs_rate>=0.95": figures["accepted_vs_rate"] >= 0.95,
        "share_429<=0.01": throttled <= 0.01 * total,
        "nothing_lost": stats["events"] == args.records and distinct == args.records,
    }
    harness.save_result(NAME, figures)
    harness.print_figures(
        f"{NAME}: {args.records} records at R = {args.rate} requests/s",
        list(figures.items()),
    )


if __name__ == "__main__":
    main()
