"""Command line entry point: ``python -m bench NAME [options]``.

``python -m bench all`` runs every benchmark with its defaults, one process
each, and ``python -m bench NAME --help`` lists a benchmark's options.
"""

from __future__ import annotations

import subprocess
import sys
import time

from bench import ingest, panel, ratelimit, throughput, worker_memory

BENCHMARKS = {
    "throughput": throughput.main,
    "ratelimit": ratelimit.main,
    "worker_memory": worker_memory.main,
    "ingest": ingest.main,
    "panel": panel.main,
}
# Wall-clock bound of each benchmark process started by `all`, in seconds.
ALL_TIMEOUT_SECONDS = 1800


def run_all() -> int:
    """Run each benchmark in its own process; return the number that failed."""
    failed = 0
    for name in BENCHMARKS:
        started = time.monotonic()
        print(f"\n### {name}", flush=True)
        try:
            code = subprocess.run(
                [sys.executable, "-m", "bench", name], timeout=ALL_TIMEOUT_SECONDS
            ).returncode
        except subprocess.TimeoutExpired:
            code = "timed out"
        print(
            f"### {name} finished in {time.monotonic() - started:.0f} s (exit status {code})",
            flush=True,
        )
        failed += code != 0
    return failed


def main() -> None:
    if len(sys.argv) >= 2 and sys.argv[1] == "all":
        sys.exit(1 if run_all() else 0)
    if len(sys.argv) < 2 or sys.argv[1] not in BENCHMARKS:
        names = ", ".join([*BENCHMARKS, "all"])
        sys.exit(
            f"usage: python -m bench NAME [options], where NAME is one of: {names}"
        )
    BENCHMARKS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
