"""Local HTTP server that behaves like the Gainsight PX REST API."""

from __future__ import annotations

import ipaddress
import logging
import socket
import socketserver
import threading
from collections.abc import Iterable
from http.server import ThreadingHTTPServer
from typing import Any

from .config import DEFAULT_API_KEY, ConfigError, SandboxConfig, parse_config_changes
from .handler import SandboxRequestHandler
from .state import ATTRIBUTE_SETTINGS, SandboxState

logger = logging.getLogger(__name__)

# Seconds between checks for a stop request. stop() waits up to this long.
POLL_INTERVAL_S = 0.05


def validate_loopback_host(host: str) -> str:
    """Return the IP address to bind for host, or raise ValueError unless loopback.

    Accepts loopback IP addresses such as 127.0.0.1 or ::1, and "localhost",
    which binds 127.0.0.1 without asking a resolver.
    """
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError as error:
        raise ValueError(
            f"invalid host {host!r}: give a loopback IP address such as 127.0.0.1"
        ) from error
    if not address.is_loopback:
        raise ValueError(
            f"host {host!r} is not a loopback address. The sandbox listens only "
            "on loopback addresses such as 127.0.0.1 or ::1"
        )
    return str(address)


class SandboxHTTPServer(ThreadingHTTPServer):
    """Threading HTTP server that carries the sandbox state for its handlers."""

    daemon_threads = True
    allow_reuse_address = True
    # Benchmarks open up to 64 connections at once, and a deep backlog keeps the
    # kernel from refusing connections while handler threads start.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], state: SandboxState) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.state = state
        super().__init__(address, SandboxRequestHandler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup of the host name."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class SandboxServer:
    """PX sandbox that listens on a loopback address.

    The socket is bound on construction, so ``url`` is known at once, also for
    port 0. Call ``start()`` to serve in a daemon thread or ``serve_forever()``
    to serve in the calling thread, and ``stop()`` to close. A stopped server
    cannot be started again.

    Keyword arguments are the settings of ``SandboxConfig`` plus
    ``user_attributes`` and ``account_attributes``. Raises ValueError for a
    non-loopback host and ConfigError for an invalid setting.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_keys: Iterable[str] = (DEFAULT_API_KEY,),
        **config: Any,
    ) -> None:
        bind_host = validate_loopback_host(host)
        plain = {
            name: value
            for name, value in config.items()
            if name not in ATTRIBUTE_SETTINGS
        }
        settings = parse_config_changes({"api_keys": list(api_keys), **plain})
        self.state = SandboxState(SandboxConfig(**settings))
        attribute_settings = {
            name: value for name, value in config.items() if name in ATTRIBUTE_SETTINGS
        }
        if attribute_settings:
            self.state.configure(attribute_settings)

        self._httpd = SandboxHTTPServer((bind_host, port), self.state)
        self._thread: threading.Thread | None = None
        self._serving = False

    @property
    def host(self) -> str:
        """Return the bound IP address."""
        return self._httpd.server_name

    @property
    def port(self) -> int:
        """Return the bound TCP port."""
        return self._httpd.server_port

    @property
    def url(self) -> str:
        """Return the base URL, such as http://127.0.0.1:8765, without /v1."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> SandboxServer:
        """Serve in a daemon thread and return self."""
        if self._serving:
            raise RuntimeError("sandbox server is already running")
        self._serving = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL_S},
            name=f"px-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        logger.info("PX sandbox serving on %s", self.url)
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until ``stop()`` is called from another."""
        if self._serving:
            raise RuntimeError("sandbox server is already running")
        self._serving = True
        logger.info("PX sandbox serving on %s", self.url)
        self._httpd.serve_forever(poll_interval=POLL_INTERVAL_S)

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        # shutdown() waits for serve_forever() to return, so it would hang on a
        # server that never served.
        if self._serving:
            self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        logger.info("PX sandbox on %s stopped", self.url)

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Merge setting changes as PUT /_sandbox/config does and return the result."""
        return self.state.configure(changes)

    def reset(self) -> None:
        """Clear data, request log and counters, as POST /_sandbox/reset does."""
        self.state.reset()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


__all__ = ["ConfigError", "SandboxServer", "validate_loopback_host"]
