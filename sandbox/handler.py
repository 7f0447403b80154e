"""HTTP/1.1 request handler: reads bodies, applies delays, writes responses."""

from __future__ import annotations

import logging
import socket
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .api_request import ApiRequest
from .inspection import handle_inspection, is_inspection_path
from .pipeline import API_KEY_HEADER, process_px_request
from .responses import Response, px_error

if TYPE_CHECKING:
    from .state import SandboxState

logger = logging.getLogger(__name__)

# Largest request body read. PX documents no limit, so this only protects the
# sandbox process, and larger bodies get 413.
MAX_BODY_BYTES = 32 * 1024 * 1024


class BodyReadError(Exception):
    """Request body that cannot be read, with the status to return."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class SandboxRequestHandler(BaseHTTPRequestHandler):
    """Handler for PX paths and the /_sandbox/ inspection paths."""

    protocol_version = "HTTP/1.1"
    server_version = "PXSandbox/1.0"
    # Headers and body go out in two writes; with Nagle's algorithm the body
    # waits for the client's delayed ACK, about 40 ms on a kept-alive
    # connection.
    disable_nagle_algorithm = True
    # Seconds an idle keep-alive connection may wait for its next request.
    timeout = 60

    @property
    def state(self) -> SandboxState:
        """Return the state of the server this handler serves."""
        return self.server.state  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        """Handle GET."""
        self._handle()

    def do_POST(self) -> None:
        """Handle POST."""
        self._handle()

    def do_PUT(self) -> None:
        """Handle PUT."""
        self._handle()

    def do_DELETE(self) -> None:
        """Handle DELETE."""
        self._handle()

    def do_PATCH(self) -> None:
        """Handle PATCH, which no endpoint accepts, so that it gets 405, not 501."""
        self._handle()

    def log_message(self, format: str, *args: object) -> None:
        """Send http.server's access and error lines to the module logger."""
        logger.debug("%s %s", self.address_string(), format % args)

    def _handle(self) -> None:
        received = time.time()
        target = urlsplit(self.path)
        path = target.path or "/"

        try:
            body = self._read_body()
        except BodyReadError as error:
            logger.warning("Rejected body of %s %s: %s", self.command, path, error)
            self.close_connection = True
            if not is_inspection_path(path):
                self.state.record_request(
                    received=received,
                    method=self.command,
                    path=path,
                    query=target.query,
                    body=None,
                    status=error.status,
                    key_valid=self.state.is_valid_key(self.headers.get(API_KEY_HEADER)),
                    fault=None,
                )
            self._send(px_error(error.status, str(error)))
            return

        request = ApiRequest(self.command, path, target.query, self.headers, body)
        if is_inspection_path(path):
            self._send(handle_inspection(self.state, request))
            return

        outcome = process_px_request(self.state, request)
        if outcome.delay_ms > 0:
            time.sleep(outcome.delay_ms / 1000)

        # Log before responding, so a client that has its response also finds
        # the request in the log.
        response = outcome.response
        self.state.record_request(
            received=received,
            method=self.command,
            path=path,
            query=target.query,
            body=request.body_for_log(),
            status=None if response is None else response.status,
            key_valid=outcome.key_valid,
            fault=outcome.fault,
        )
        if response is None:
            self._drop()
        else:
            self._send(response)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked_body()

        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return b""
        try:
            length = int(length_text)
        except ValueError:
            length = -1
        if length < 0:
            raise BodyReadError(
                HTTPStatus.BAD_REQUEST, f"Invalid Content-Length {length_text!r}"
            )
        if length > MAX_BODY_BYTES:
            raise BodyReadError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"Request body of {length} bytes exceeds {MAX_BODY_BYTES} bytes",
            )
        return self.rfile.read(length)

    def _read_chunked_body(self) -> bytes:
        chunks = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError as error:
                raise BodyReadError(
                    HTTPStatus.BAD_REQUEST, f"Invalid chunk size {size_line!r}"
                ) from error
            if size == 0:
                # Skip optional trailer lines up to the blank line that ends them.
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise BodyReadError(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    f"Chunked request body exceeds {MAX_BODY_BYTES} bytes",
                )
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _send(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            if response.content_type:
                self.send_header("Content-Type", response.content_type)
            for name, value in response.headers.items():
                self.send_header(name, value)
            # RFC 9110 forbids Content-Length on 204 responses.
            if response.status != HTTPStatus.NO_CONTENT:
                self.send_header("Content-Length", str(len(response.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if response.body and response.status != HTTPStatus.NO_CONTENT:
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError) as error:
            logger.debug("Client disconnected before the response was sent: %s", error)
            self.close_connection = True

    def _drop(self) -> None:
        """Close the connection without sending a response."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError as error:
            logger.debug("Shutdown of a dropped connection failed: %s", error)
