"""Command line entry point: ``python -m sandbox``.

Prints ``PX sandbox listening on http://HOST:PORT`` to stdout once it accepts
connections, and stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from .config import DEFAULT_API_KEY, DEFAULT_FAULT_STATUSES
from .server import SandboxServer

logger = logging.getLogger("sandbox")


def _status_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"expected HTTP statuses separated by commas, such as 500,502,503; "
            f"got {text!r}"
        ) from error


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the sandbox command."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description="Serve a local stand-in for the Gainsight PX REST API.",
    )
    _add_server_options(parser)
    _add_limit_options(parser)
    _add_fault_options(parser)
    return parser


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("server")
    group.add_argument(
        "--host",
        default="127.0.0.1",
        help="loopback address to listen on (default: %(default)s)",
    )
    group.add_argument(
        "--port",
        type=int,
        default=8765,
        help="TCP port to listen on; 0 picks a free port (default: %(default)s)",
    )
    group.add_argument(
        "--api-key",
        dest="api_keys",
        action="append",
        metavar="KEY",
        help="accepted X-APTRINSIC-API-KEY value; repeatable "
        f"(default: {DEFAULT_API_KEY})",
    )
    group.add_argument(
        "--batch-events",
        action="store_true",
        help="test-only: accept a JSON array on POST /v1/events/custom",
    )
    group.add_argument(
        "--port-file",
        type=Path,
        default=None,
        metavar="PATH",
        help="write the bound port to this file once listening; removed on exit",
    )
    group.add_argument(
        "--log-level",
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="level of the log written to stderr (default: %(default)s)",
    )


def _add_limit_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("rate limit and delays")
    group.add_argument(
        "--rate-limit",
        type=float,
        default=0.0,
        metavar="N",
        help="requests per second allowed per API key, then 429; 0 means no limit",
    )
    group.add_argument(
        "--retry-after",
        type=int,
        default=None,
        metavar="SECONDS",
        help="add a Retry-After header with this value to 429 responses",
    )
    group.add_argument(
        "--latency-ms",
        type=int,
        default=0,
        metavar="N",
        help="milliseconds of delay before every PX response",
    )


def _add_fault_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("injected faults")
    group.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        metavar="F",
        help="share (0 to 1) of PX requests that get a status from --fault-statuses",
    )
    group.add_argument(
        "--fault-statuses",
        type=_status_list,
        default=list(DEFAULT_FAULT_STATUSES),
        metavar="LIST",
        help="comma-separated statuses for injected faults (default: 500,502,503)",
    )
    group.add_argument(
        "--drop-rate",
        type=float,
        default=0.0,
        metavar="F",
        help="share (0 to 1) of PX requests whose connection is closed "
        "without a response",
    )
    group.add_argument(
        "--slow-rate",
        type=float,
        default=0.0,
        metavar="F",
        help="share (0 to 1) of PX requests delayed by --slow-ms and then handled",
    )
    group.add_argument(
        "--slow-ms",
        type=int,
        default=1000,
        metavar="N",
        help="milliseconds of delay for slow requests (default: %(default)s)",
    )
    group.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the random generator that picks faults, for repeatable runs",
    )


def write_port_file(path: Path, port: int) -> None:
    """Write the port atomically, so a reader never sees a partial file."""
    directory = path.parent if str(path.parent) else Path(".")
    with tempfile.NamedTemporaryFile(
        "w", dir=directory, prefix=f".{path.name}.", delete=False
    ) as handle:
        handle.write(f"{port}\n")
        temporary = Path(handle.name)
    os.replace(temporary, path)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox until SIGTERM or SIGINT and return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )

    try:
        server = SandboxServer(
            host=args.host,
            port=args.port,
            api_keys=args.api_keys or [DEFAULT_API_KEY],
            rate_limit=args.rate_limit,
            retry_after=args.retry_after,
            latency_ms=args.latency_ms,
            fault_rate=args.fault_rate,
            fault_statuses=args.fault_statuses,
            drop_rate=args.drop_rate,
            slow_rate=args.slow_rate,
            slow_ms=args.slow_ms,
            batch_events=args.batch_events,
            seed=args.seed,
        )
    except ValueError as error:
        # ConfigError is a ValueError too: a bad setting or a non-loopback host.
        parser.error(str(error))
    except OSError as error:
        parser.exit(1, f"cannot listen on {args.host}:{args.port}: {error}\n")

    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        logger.info("Received %s, stopping", signal.Signals(signum).name)
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    server.start()
    try:
        if args.port_file is not None:
            write_port_file(args.port_file, server.port)
        print(f"PX sandbox listening on {server.url}", flush=True)
        logger.info("Inspection page: %s/_sandbox/", server.url)
        while not stop_requested.wait(0.5):
            pass
    finally:
        server.stop()
        if args.port_file is not None:
            args.port_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
