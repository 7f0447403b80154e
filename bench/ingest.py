"""Benchmark 4: CSV ingest rate and memory.

Three passes read a generated CSV file of ``--rows`` rows and 10 columns:

- product: nexsets.ingest.create_from_upload, which parses, infers the schema
  and inserts into PostgreSQL in one transaction;
- baseline: csv.reader, with each row turned into a dict and encoded with
  json.dumps;
- parse: nexsets.parsing.iter_records alone, to split the product's time
  between parsing and storing.

Each pass runs in its own process, and that process's peak resident set
(VmHWM) is the pass's peak memory. The product pass also runs on a file of
``--small-rows`` rows, to show whether memory grows with the file.

Targets: product rate >= 0.5x baseline; product peak memory about the same
for both file sizes.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import json
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path

from bench import harness

NAME = "ingest"
DATA_DIR = harness.RESULTS_DIR / "data"
COLUMNS = [
    "User ID",
    "Email",
    "First Name",
    "Last Name",
    "Company",
    "Plan",
    "Seats",
    "Score",
    "Sign-Up Date",
    "Country",
]
MIB = 2**20


def write_csv(path: Path, rows: int) -> None:
    """Write a CSV of ``rows`` users; one Company value in ten needs quoting."""
    plans = ("free", "team", "enterprise")
    countries = ("US", "DE", "FR", "JP", "BR")
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for i in range(rows):
            company = f"Acme {i % 997}, Inc." if i % 10 == 0 else f"Company {i % 997}"
            writer.writerow(
                [
                    f"user-{i:07d}",
                    f"user{i}@example.com",
                    f"First{i % 311}",
                    f"Last{i % 419}",
                    company,
                    plans[i % 3],
                    str(1 + i % 250),
                    f"{(i % 1000) / 10:.1f}",
                    f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}",
                    countries[i % 5],
                ]
            )


def data_file(rows: int) -> Path:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / f"users-{rows}.csv"
    if not path.exists():
        partial = path.with_suffix(".partial")
        write_csv(partial, rows)
        partial.rename(path)
    return path


# Passes, each run in a child process -------------------------------------------


def pass_baseline(path: Path) -> int:
    rows = 0
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        for row in reader:
            json.dumps(dict(zip(header, row, strict=True)))
            rows += 1
    return rows


def pass_parse(path: Path) -> int:
    from nexsets.parsing import iter_records

    rows = 0
    with path.open("rb") as handle:
        for _ in iter_records(handle, path.name, max_bytes=2**31):
            rows += 1
    return rows


def pass_product(path: Path) -> int:
    from nexsets import ingest
    from teams.models import Team

    team = Team.objects.create(name=f"Ingest {path.name}")
    with path.open("rb") as handle:
        nexset = ingest.create_from_upload(team, path.name, handle, path.name)
    return nexset.record_count


PASSES = {"baseline": pass_baseline, "parse": pass_parse, "product": pass_product}


def child(mode: str, path: Path, profile_path: Path | None) -> None:
    """Run one pass and print its figures as JSON on the last line of stdout."""
    if mode != "baseline":
        import django

        django.setup()
    _, rss_before = harness.peak_rss_bytes(os.getpid())
    profiler = cProfile.Profile() if profile_path else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    rows = PASSES[mode](path)
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - started
    _, peak = harness.peak_rss_bytes(os.getpid())
    if profiler:
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).sort_stats("tottime").print_stats(30)
        profile_path.write_text(buffer.getvalue())
    print(
        json.dumps(
            {
                "mode": mode,
                "rows": rows,
                "seconds": round(seconds, 2),
                "rows_per_s": round(rows / seconds),
                "peak_rss_mib": round(peak / MIB, 1),
                "peak_rss_before_pass_mib": round(rss_before / MIB, 1),
            }
        )
    )


def run_child(
    env: dict[str, str],
    mode: str,
    path: Path,
    profile: bool = False,
    timeout: float = 900,
) -> dict:
    from django.db import close_old_connections

    if mode == "product":
        harness.empty_tables()
        close_old_connections()
    args = [harness.PYTHON, "-m", "bench", NAME, "--child", mode, str(path)]
    if profile:
        args += [
            "--profile-output",
            str(harness.LOG_DIR / f"{NAME}-{mode}-{path.stem}-profile.txt"),
        ]
    completed = subprocess.run(
        args,
        cwd=harness.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"{mode} pass on {path.name} failed:\n{completed.stderr[-3000:]}"
        )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench ingest", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--rows",
        type=int,
        default=200_000,
        help="rows of the large file (default 200000)",
    )
    parser.add_argument(
        "--small-rows",
        type=int,
        default=20_000,
        help="rows of the small file, for the memory comparison (default 20000)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile the product pass on the small file with cProfile; written to bench/results/logs/",
    )
    parser.add_argument(
        "--child", nargs=2, metavar=("MODE", "FILE"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--profile-output", type=Path, default=None, help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], Path(args.child[1]), args.profile_output)
        return

    large = data_file(args.rows)
    small = data_file(args.small_rows)
    with harness.Services(NAME) as services:
        env = harness.product_env(
            services, harness.DEFAULT_DATABASE, LOG_LEVEL="WARNING"
        )
        harness.setup_django(env)
        results = {
            "baseline": run_child(env, "baseline", large),
            "parse": run_child(env, "parse", large),
            "product": run_child(env, "product", large),
            "product_small": run_child(env, "product", small),
        }
        if args.profile:
            run_child(env, "product", small, profile=True)
        harness.empty_tables()

    baseline_rate = results["baseline"]["rows_per_s"]
    product_rate = results["product"]["rows_per_s"]
    figures = {
        "rows": args.rows,
        "small_rows": args.small_rows,
        "file_mib": round(large.stat().st_size / MIB, 1),
        "small_file_mib": round(small.stat().st_size / MIB, 1),
        **results,
        "product_vs_baseline": round(product_rate / baseline_rate, 3),
        "parse_vs_baseline": round(results["parse"]["rows_per_s"] / baseline_rate, 3),
        # Seconds of the product pass not spent parsing: schema inference,
        # building model instances and the INSERTs.
        "product_seconds_storing": round(
            results["product"]["seconds"] - results["parse"]["seconds"], 2
        ),
        "peak_large_vs_small": round(
            results["product"]["peak_rss_mib"]
            / results["product_small"]["peak_rss_mib"],
            3,
        ),
    }
    figures["targets_met"] = {
        "product_vs_baseline>=0.5": figures["product_vs_baseline"] >= 0.5,
        "peak_large_vs_small<=1.2": figures["peak_large_vs_small"] <= 1.2,
        "all_rows_stored": results["product"]["rows"] == args.rows
        and results["product_small"]["rows"] == args.small_rows,
    }
    harness.save_result(NAME, figures)
    harness.print_figures(
        f"{NAME}: {args.rows} rows x {len(COLUMNS)} columns ({figures['file_mib']} MiB)",
        list(figures.items()),
    )


if __name__ == "__main__":
    sys.exit(main())
