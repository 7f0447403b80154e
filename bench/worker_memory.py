"""Benchmark 3: peak memory of a worker process for a small and a large run.

For each size, a new Celery worker process (solo pool) delivers a Track
Custom Event run to a sandbox with no added latency and no rate limit. When
the run has finished, the benchmark reads the worker's peak resident set
(VmHWM in /proc). It also samples the resident set once a second, to show
whether it keeps growing during the run.

Target: peak of the large run <= 1.2x peak of the small run.
"""

from __future__ import annotations

import argparse
import time

from bench import harness

NAME = "worker_memory"
MIB = 2**20


def deliver_and_measure(env: dict[str, str], destination, timeout: float) -> dict:
    """Deliver every pending record of ``destination`` in a new worker; return its memory figures."""
    from destinations.models import Run

    samples: list[tuple[float, float]] = []
    with harness.Worker(
        env, f"{NAME}-worker-{destination.nexset.record_count}"
    ) as worker:
        idle_rss, _ = harness.peak_rss_bytes(worker.pid)
        run = harness.start_run(destination)
        deadline = time.monotonic() + timeout
        while True:
            current = Run.objects.get(pk=run.pk)
            rss, _ = harness.peak_rss_bytes(worker.pid)
            samples.append((current.done / current.total, rss))
            if not current.is_active:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"run {run.pk} did not finish in {timeout:g} s: {current.done} of {current.total} done"
                )
            time.sleep(1.0)
        _, peak = harness.peak_rss_bytes(worker.pid)
    # The resident set when the run had passed each tenth of its records.
    by_tenth = {}
    for share, rss in samples:
        tenth = min(10, int(share * 10))
        by_tenth.setdefault(tenth, rss)
    return {
        "records": current.total,
        "run_status": current.status,
        "run_succeeded": current.succeeded,
        "run_seconds": round(harness.run_seconds(current), 1),
        "records_per_s": round(current.succeeded / harness.run_seconds(current), 1),
        "idle_rss_mib": round(idle_rss / MIB, 1),
        "peak_rss_mib": round(peak / MIB, 1),
        "rss_mib_by_tenth_done": {
            f"{tenth * 10}%": round(rss / MIB, 1)
            for tenth, rss in sorted(by_tenth.items())
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench worker_memory", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--small",
        type=int,
        default=10_000,
        help="records in the small run (default 10000)",
    )
    parser.add_argument(
        "--large",
        type=int,
        default=100_000,
        help="records in the large run (default 100000)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=1200,
        help="seconds to wait for each run before giving up (default 1200)",
    )
    args = parser.parse_args(argv)

    with harness.Services(NAME) as services:
        env = harness.product_env(services, harness.DEFAULT_DATABASE)
        harness.setup_django(env)
        harness.empty_tables()
        harness.purge_broker()
        sandbox = services.sandbox
        # A short request log: the sandbox keeps every logged body in memory.
        sandbox.configure(latency_ms=0, rate_limit=0, log_limit=1000)
        # A credential limit far above what one worker reaches, so that the
        # worker sends as fast as it can.
        team, credential = harness.create_team_and_credential(rate_limit=100_000)

        results = {}
        for label, count in (("small", args.small), ("large", args.large)):
            nexset = harness.create_event_nexset(team, count, name=f"{count} events")
            destination = harness.create_event_destination(nexset, credential)
            sandbox.reset()
            results[label] = deliver_and_measure(env, destination, args.timeout)
            results[label]["events_stored"] = sandbox.stats()["events"]

    ratio = results["large"]["peak_rss_mib"] / results["small"]["peak_rss_mib"]
    figures = {
        "small": results["small"],
        "large": results["large"],
        "peak_large_vs_small": round(ratio, 3),
    }
    figures["targets_met"] = {
        "peak_large_vs_small<=1.2": ratio <= 1.2,
        "nothing_lost": all(
            r["events_stored"] == r["records"] == r["run_succeeded"]
            for r in results.values()
        ),
    }
    harness.save_result(NAME, figures)
    rows = [
        (f"{label} {name}", value)
        for label in ("small", "large")
        for name, value in results[label].items()
    ]
    rows += [
        ("peak_large_vs_small", figures["peak_large_vs_small"]),
        ("targets_met", figures["targets_met"]),
    ]
    harness.print_figures(f"{NAME}: {args.small} vs {args.large} records", rows)


if __name__ == "__main__":
    main()
