"""HTTP responses of the sandbox and the PX error body shape."""

from __future__ import annotations

import dataclasses
import html
import json
from http import HTTPStatus
from typing import Any

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
HTML_CONTENT_TYPE = "text/html;charset=UTF-8"

# Injected faults with these statuses get an HTML page, as a gateway or WAF in
# front of the API would send, so that clients meet non-JSON error bodies.
HTML_FAULT_STATUSES = frozenset({403, 502, 503, 504})

AUTH_FAILED_MESSAGE = (
    "Authentication failed in loginAwareAuthentication: missing or invalid API key"
)


@dataclasses.dataclass
class Response:
    """Status, headers and body of one HTTP response."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


def encode_json(payload: Any) -> bytes:
    """Serialize a payload as compact UTF-8 JSON."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8")


def json_response(
    status: int, payload: Any, headers: dict[str, str] | None = None
) -> Response:
    """Build a JSON response."""
    return Response(status, encode_json(payload), JSON_CONTENT_TYPE, headers or {})


def html_response(status: int, page: str) -> Response:
    """Build an HTML response."""
    return Response(status, page.encode("utf-8"), HTML_CONTENT_TYPE)


def no_content() -> Response:
    """Build a 204 response, which carries no body."""
    return Response(HTTPStatus.NO_CONTENT)


def created() -> Response:
    """Build the 201 response of the PX create operations.

    The contract types the body as a Spring ResponseEntity whose statusCode enum
    contains numeric strings. PX clients read only the status code.
    """
    payload = {"body": {}, "statusCode": "201", "statusCodeValue": 201}
    return json_response(HTTPStatus.CREATED, payload)


def status_name(status: int) -> str:
    """Return the enum-style status name, such as NOT_FOUND, used in PX errors."""
    try:
        return HTTPStatus(status).name
    except ValueError:
        return str(status)


def px_error(
    status: int,
    message: str,
    *,
    sub_errors: list[dict[str, Any]] | None = None,
    debug_message: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Build a PX error response in the ``externalapierror`` shape."""
    payload = {
        "externalapierror": {
            "status": status_name(status),
            "message": message,
            "debugMessage": debug_message,
            "subErrors": sub_errors,
        }
    }
    return json_response(status, payload, headers)


def validation_error(sub_errors: list[dict[str, Any]]) -> Response:
    """Build the 400 response for a body that failed field validation."""
    return px_error(HTTPStatus.BAD_REQUEST, "Validation error", sub_errors=sub_errors)


def unauthorized() -> Response:
    """Build the 401 response for a missing or unknown API key."""
    return px_error(HTTPStatus.UNAUTHORIZED, AUTH_FAILED_MESSAGE)


def rate_limited(retry_after: int | None) -> Response:
    """Build the 429 response, with Retry-After only when it is configured."""
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    return px_error(
        HTTPStatus.TOO_MANY_REQUESTS, "Rate limit exceeded", headers=headers
    )


def injected_fault(status: int, retry_after: int | None) -> Response:
    """Build the response for a fault status injected by the sandbox."""
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        return rate_limited(retry_after)

    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"

    if status in HTML_FAULT_STATUSES:
        title = html.escape(f"{status} {phrase}")
        page = f"<html><head><title>{title}</title></head><body>{title}</body></html>"
        return html_response(status, page)
    if status == HTTPStatus.INTERNAL_SERVER_ERROR:
        return px_error(status, "Internal error")
    return px_error(status, phrase)
