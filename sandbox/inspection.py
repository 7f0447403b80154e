"""Endpoints under /_sandbox/ for people and tests to inspect and steer the sandbox.

These are not part of PX. They need no API key, and they are neither logged nor
counted, so polling them leaves the request log unchanged.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from .api_request import ApiRequest, InvalidRequest
from .config import ConfigError
from .responses import Response, html_response, json_response, no_content
from .state import SandboxState

PREFIX = "/_sandbox"

# Rows shown per table on the HTML page. The JSON endpoints return everything.
MAX_PAGE_ROWS = 500


def is_inspection_path(path: str) -> bool:
    """Return whether a path belongs to the inspection endpoints."""
    return path == PREFIX or path.startswith(PREFIX + "/")


def _error(status: int, message: str) -> Response:
    return json_response(status, {"error": message})


def _page(state: SandboxState, request: ApiRequest) -> Response:
    return html_response(HTTPStatus.OK, render_page(state))


def _requests(state: SandboxState, request: ApiRequest) -> Response:
    text = request.query_value("since") or "0"
    try:
        since = int(text)
    except ValueError:
        return _error(HTTPStatus.BAD_REQUEST, f"since must be an integer, got {text!r}")
    return json_response(HTTPStatus.OK, state.requests_since(since))


def _state(state: SandboxState, request: ApiRequest) -> Response:
    return json_response(HTTPStatus.OK, state.snapshot())


def _stats(state: SandboxState, request: ApiRequest) -> Response:
    return json_response(HTTPStatus.OK, state.stats())


def _reset(state: SandboxState, request: ApiRequest) -> Response:
    state.reset()
    return no_content()


def _get_config(state: SandboxState, request: ApiRequest) -> Response:
    return json_response(HTTPStatus.OK, state.config_json())


def _put_config(state: SandboxState, request: ApiRequest) -> Response:
    try:
        changes = request.json()
        return json_response(HTTPStatus.OK, state.configure(changes))
    except (InvalidRequest, ConfigError) as error:
        return _error(HTTPStatus.BAD_REQUEST, str(error))


_ROUTES: dict[str, dict[str, Callable[[SandboxState, ApiRequest], Response]]] = {
    "": {"GET": _page},
    "/": {"GET": _page},
    "/requests": {"GET": _requests},
    "/state": {"GET": _state},
    "/stats": {"GET": _stats},
    "/reset": {"POST": _reset},
    "/config": {"GET": _get_config, "PUT": _put_config},
}


def handle_inspection(state: SandboxState, request: ApiRequest) -> Response:
    """Handle a request under /_sandbox/."""
    methods = _ROUTES.get(request.path[len(PREFIX) :])
    if methods is None:
        known = ", ".join(PREFIX + suffix for suffix in _ROUTES if suffix)
        return _error(HTTPStatus.NOT_FOUND, f"unknown path. Known paths: {known}")
    handler = methods.get(request.method)
    if handler is None:
        response = _error(
            HTTPStatus.METHOD_NOT_ALLOWED, f"{request.method} is not allowed here"
        )
        response.headers["Allow"] = ", ".join(sorted(methods))
        return response
    return handler(state, request)


# HTML page


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return html.escape(value)
    return html.escape(json.dumps(value, ensure_ascii=False, sort_keys=True))


def _table(
    title: str,
    columns: list[str],
    rows: list[dict[str, Any]],
    total: int,
) -> str:
    shown = f"latest {len(rows)} of {total}" if len(rows) < total else str(total)
    head = "".join(f"<th>{html.escape(column)}</th>" for column in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{_cell(row.get(column))}</td>" for column in columns)
        + "</tr>"
        for row in rows
    )
    return (
        f"<h2>{html.escape(title)} ({shown})</h2>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


_STYLE = (
    "body{font-family:sans-serif;margin:1.5em}"
    "table{border-collapse:collapse;margin-bottom:1.5em}"
    "td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;"
    "vertical-align:top;font-size:.9em}"
    "td{font-family:monospace;white-space:pre-wrap;word-break:break-all}"
)


def render_page(state: SandboxState) -> str:
    """Render the stored users, accounts and events and the latest requests."""
    data = state.snapshot()
    stats = state.stats()
    requests = state.requests_since(0)[-MAX_PAGE_ROWS:]
    sections = [
        _table(
            "Users",
            ["identifyId", "email", "accountId", "propertyKeys", "customAttributes"],
            data["users"][-MAX_PAGE_ROWS:],
            len(data["users"]),
        ),
        _table(
            "Accounts",
            ["id", "name", "propertyKeys", "customAttributes"],
            data["accounts"][-MAX_PAGE_ROWS:],
            len(data["accounts"]),
        ),
        _table(
            "Custom events",
            ["date", "identifyId", "eventName", "accountId", "attributes"],
            data["events"][-MAX_PAGE_ROWS:],
            len(data["events"]),
        ),
        _table(
            "Requests",
            ["seq", "method", "path", "query", "status", "key_valid", "fault"],
            requests,
            stats["total_requests"],
        ),
    ]
    summary = html.escape(
        f"{stats['total_requests']} PX requests. By status: "
        + json.dumps(stats["by_status"])
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>PX sandbox</title><style>{_STYLE}</style></head><body>"
        f"<h1>PX sandbox</h1><p>{summary}</p>{''.join(sections)}</body></html>"
    )
