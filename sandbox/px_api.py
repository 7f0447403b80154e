"""Handlers and routes of the PX REST endpoints that the sandbox models."""

from __future__ import annotations

import copy
import dataclasses
import functools
import uuid
from collections import Counter
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from .api_request import ApiRequest, InvalidRequest
from .query import QueryError, matches, parse_filters, sort_records
from .responses import (
    Response,
    created,
    json_response,
    no_content,
    px_error,
    validation_error,
)
from .state import SandboxState, now_ms
from .validation import validate_account, validate_event, validate_user

Params = dict[str, str]
Handler = Callable[[SandboxState, ApiRequest, Params], Response]

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 1000
MAX_EVENT_DATE_RANGE_MS = 190 * 24 * 60 * 60 * 1000


@dataclasses.dataclass(frozen=True)
class EntityKind:
    """Settings that differ between the user and the account endpoints."""

    model: str
    label: str
    key_field: str
    path_param: str
    list_field: str
    create_required: tuple[str, ...]
    validate: Callable[..., tuple[dict[str, Any], list[dict[str, Any]]]]

    def records(self, state: SandboxState) -> dict[str, dict[str, Any]]:
        """Return the state's dictionary of this kind, keyed by id."""
        return state.users if self.model == "user" else state.accounts


USERS = EntityKind(
    model="user",
    label="User",
    key_field="identifyId",
    path_param="identifyId",
    list_field="users",
    create_required=("identifyId", "propertyKeys"),
    validate=validate_user,
)
ACCOUNTS = EntityKind(
    model="account",
    label="Account",
    key_field="id",
    path_param="accountId",
    list_field="accounts",
    create_required=("id", "name", "propertyKeys"),
    validate=validate_account,
)


def _bad_request(message: str) -> Response:
    return px_error(HTTPStatus.BAD_REQUEST, message)


def _not_found(kind: EntityKind, record_id: str) -> Response:
    message = f"{kind.label} was not found for parameters {{id={record_id}}}"
    return px_error(HTTPStatus.NOT_FOUND, message)


def _json_object(request: ApiRequest) -> dict[str, Any]:
    body = request.json()
    if not isinstance(body, dict):
        raise InvalidRequest("Request body must be a JSON object")
    return body


# Admin


def get_subscription(
    state: SandboxState, request: ApiRequest, params: Params
) -> Response:
    """Return the subscription with its products and product keys."""
    with state.lock:
        return json_response(HTTPStatus.OK, state.subscription)


def get_attributes(
    state: SandboxState, request: ApiRequest, params: Params
) -> Response:
    """Return the attribute definitions of the model type in the path."""
    model = params["type"]
    if model not in ("user", "account"):
        return px_error(HTTPStatus.NOT_FOUND, "Type not found")
    with state.lock:
        return json_response(HTTPStatus.OK, state.attributes(model))


# Users and accounts


def _validate_body(
    state: SandboxState,
    kind: EntityKind,
    body: dict[str, Any],
    required: tuple[str, ...],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    with state.lock:
        definitions = state.attributes(kind.model)
        reject_unknown = state.config.reject_unknown_attributes
    return kind.validate(
        body,
        required=required,
        definitions=definitions,
        reject_unknown=reject_unknown,
    )


def _new_record(kind: EntityKind, fields: dict[str, Any]) -> dict[str, Any]:
    timestamp = now_ms()
    record = dict(fields)
    if kind is USERS:
        record["id"] = fields["identifyId"]
        record["aptrinsicId"] = str(uuid.uuid4())
    record["createDate"] = timestamp
    record["lastModifiedDate"] = timestamp
    return record


def _create(kind: EntityKind, state: SandboxState, request: ApiRequest) -> Response:
    body = _json_object(request)
    fields, errors = _validate_body(state, kind, body, kind.create_required)
    if errors:
        return validation_error(errors)

    record_id = fields[kind.key_field]
    with state.lock:
        records = kind.records(state)
        if record_id in records:
            message = (
                "Bad request, possible duplicate: "
                f"{kind.label} already exists for parameters {{id={record_id}}}"
            )
            return _bad_request(message)
        records[record_id] = _new_record(kind, fields)
    return created()


def _merge(record: dict[str, Any], fields: dict[str, Any]) -> None:
    """Merge validated fields into a stored record.

    NOTE: PX does not document whether PUT replaces or merges. The sandbox
    merges: fields absent from the body keep their stored values, and each
    customAttributes key is merged on its own.
    """
    for name, value in fields.items():
        if name == "customAttributes":
            record.setdefault("customAttributes", {}).update(value)
        else:
            record[name] = value
    record["lastModifiedDate"] = now_ms()


def _update(
    kind: EntityKind,
    state: SandboxState,
    request: ApiRequest,
    path_id: str | None,
) -> Response:
    body = _json_object(request)
    required = () if path_id is not None else (kind.key_field,)
    fields, errors = _validate_body(state, kind, body, required)
    if errors:
        return validation_error(errors)

    if path_id is not None:
        # The id in the path names the record. NOTE: PX does not document what a
        # different id in the body does, so the sandbox ignores it.
        fields.pop(kind.key_field, None)
        record_id = path_id
    else:
        record_id = fields.pop(kind.key_field)

    with state.lock:
        record = kind.records(state).get(record_id)
        if record is None:
            return _not_found(kind, record_id)
        _merge(record, fields)
    return no_content()


def _get(kind: EntityKind, state: SandboxState, record_id: str) -> Response:
    with state.lock:
        record = kind.records(state).get(record_id)
        if record is None:
            return _not_found(kind, record_id)
        output = _account_output(state, [record])[0] if kind is ACCOUNTS else record
        return json_response(HTTPStatus.OK, output)


def _delete(kind: EntityKind, state: SandboxState, record_id: str) -> Response:
    """Delete a record at once.

    NOTE: PX soft-deletes users and revives them when the same id is written
    within 7 days, which the sandbox does not model. Deleting an account also
    deletes its users, as the contract states.
    """
    with state.lock:
        record = kind.records(state).pop(record_id, None)
        if record is None:
            return _not_found(kind, record_id)
        if kind is ACCOUNTS:
            orphans = [
                user_id
                for user_id, user in state.users.items()
                if user.get("accountId") == record_id
            ]
            for user_id in orphans:
                del state.users[user_id]
    return no_content()


def _account_output(
    state: SandboxState, accounts: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Return account copies with the read-only ``numberOfUsers`` filled in."""
    user_counts = Counter(user.get("accountId") for user in state.users.values())
    output = []
    for account in accounts:
        item = copy.copy(account)
        item["numberOfUsers"] = user_counts.get(account["id"], 0)
        output.append(item)
    return output


def list_records(
    kind: EntityKind, state: SandboxState, request: ApiRequest, params: Params
) -> Response:
    """Return a page of stored users or accounts."""

    def load() -> list[dict[str, Any]]:
        return list(kind.records(state).values())

    def prepare(page: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return _account_output(state, page) if kind is ACCOUNTS else page

    return _list(state, request, kind.list_field, load, prepare)


def create_record(
    kind: EntityKind, state: SandboxState, request: ApiRequest, params: Params
) -> Response:
    """Store a new user or account. An existing id gets 400 "possible duplicate"."""
    return _create(kind, state, request)


def update_by_body(
    kind: EntityKind, state: SandboxState, request: ApiRequest, params: Params
) -> Response:
    """Merge the body into the record whose id the body carries."""
    return _update(kind, state, request, None)


def update_by_path(
    kind: EntityKind, state: SandboxState, request: ApiRequest, params: Params
) -> Response:
    """Merge the body into the record whose id is in the path."""
    return _update(kind, state, request, params[kind.path_param])


def get_record(
    kind: EntityKind, state: SandboxState, request: ApiRequest, params: Params
) -> Response:
    """Return the record whose id is in the path."""
    return _get(kind, state, params[kind.path_param])


def delete_by_path(
    kind: EntityKind, state: SandboxState, request: ApiRequest, params: Params
) -> Response:
    """Delete the record whose id is in the path."""
    return _delete(kind, state, params[kind.path_param])


def delete_by_body(
    kind: EntityKind, state: SandboxState, request: ApiRequest, params: Params
) -> Response:
    """Delete the record whose id the body carries."""
    body = _json_object(request)
    record_id = body.get(kind.key_field)
    if not isinstance(record_id, str) or not record_id:
        raise InvalidRequest(f"{kind.key_field} must be a non-empty string")
    return _delete(kind, state, record_id)


# Lists


def _page_size(request: ApiRequest) -> int:
    text = request.query_value("pageSize")
    if text is None or text == "":
        return DEFAULT_PAGE_SIZE
    try:
        size = int(text)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise InvalidRequest(
            f"pageSize must be an integer from 1 to {MAX_PAGE_SIZE}, got {text!r}"
        )
    return size


def _list(
    state: SandboxState,
    request: ApiRequest,
    list_field: str,
    load: Callable[[], list[dict[str, Any]]],
    prepare: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
    extra_filter: Callable[[dict[str, Any]], bool] | None = None,
) -> Response:
    """Return one page of ``{list_field, totalHits, scrollId}``.

    The first request matches, sorts and keeps the records under a new scroll
    id. Later requests with that ``scrollId`` read on from the kept records.
    A full page always carries a scrollId, even when no record remains, because
    PX documents that clients should stop on a short page, not on a null scrollId.
    """
    page_size = _page_size(request)
    scroll_id = request.query_value("scrollId")

    if scroll_id:
        cursor = state.find_scroll(scroll_id)
        if cursor is None:
            return _bad_request(f"Invalid or expired scrollId {scroll_id!r}")
    else:
        try:
            filters = parse_filters(request.query.get("filter", []))
            with state.lock:
                records = [
                    record
                    for record in load()
                    if matches(record, filters)
                    and (extra_filter is None or extra_filter(record))
                ]
                sort_records(records, request.query_value("sort"))
        except QueryError as error:
            return _bad_request(str(error))
        scroll_id, cursor = state.open_scroll(records)

    with state.lock:
        page = cursor.records[cursor.offset : cursor.offset + page_size]
        cursor.offset += len(page)
        next_scroll_id = scroll_id if len(page) == page_size else None
        if next_scroll_id is None:
            state.close_scroll(scroll_id)
        items = prepare(page) if prepare is not None else page
        payload = {
            list_field: items,
            "totalHits": len(cursor.records),
            "scrollId": next_scroll_id,
        }
        return json_response(HTTPStatus.OK, payload)


# Custom events


def _date_range_filter(
    request: ApiRequest,
) -> Callable[[dict[str, Any]], bool] | None:
    """Build the ``dateRangeStart``/``dateRangeEnd`` check for listed events.

    NOTE: PX returns only the last day of events when no range is given. The
    sandbox returns every event then, so tests need not pass a range.
    """
    bounds = []
    for name in ("dateRangeStart", "dateRangeEnd"):
        text = request.query_value(name)
        if text is None or text == "":
            bounds.append(None)
            continue
        try:
            bounds.append(int(text))
        except ValueError as error:
            raise InvalidRequest(
                f"{name} must be epoch milliseconds, got {text!r}"
            ) from error

    start, end = bounds
    if start is None and end is None:
        return None
    if start is not None and end is not None and end - start > MAX_EVENT_DATE_RANGE_MS:
        raise InvalidRequest("Exceeded date range190days")

    def in_range(event: dict[str, Any]) -> bool:
        date = event.get("date", 0)
        return (start is None or date >= start) and (end is None or date <= end)

    return in_range


def list_events(state: SandboxState, request: ApiRequest, params: Params) -> Response:
    """Return a page of stored custom events."""
    return _list(
        state,
        request,
        "customEvents",
        lambda: list(state.events),
        extra_filter=_date_range_filter(request),
    )


def _store_event(state: SandboxState, event: dict[str, Any]) -> None:
    # NOTE: PX does not document the date of an event sent without one, so the
    # sandbox uses the time of receipt.
    event.setdefault("date", now_ms())
    state.events.append(event)


def create_events(state: SandboxState, request: ApiRequest, params: Params) -> Response:
    """Store one custom event, or a batch when ``batch_events`` is on."""
    body = request.json()
    if isinstance(body, list):
        with state.lock:
            batch_allowed = state.config.batch_events
        if not batch_allowed:
            return _bad_request(
                "Request body must be one JSON object (CustomEvent), not an array"
            )
        return _create_event_batch(state, body)

    event, errors = validate_event(body)
    if errors:
        return validation_error(errors)
    with state.lock:
        _store_event(state, event)
    return created()


def _create_event_batch(state: SandboxState, body: list[Any]) -> Response:
    """Store an array of events, all or none.

    Test-only extension: the PX contract takes one event per request. It does
    define an unused ``CustomEventsBatchError {index, message}`` type, which
    this models: when any element is invalid nothing is stored, and the 400
    lists each invalid element (or, with ``batch_error_index`` off, gives a
    plain validation error).
    """
    if not body:
        return _bad_request("Request body must contain at least one custom event")

    valid_events = []
    batch_errors = []
    for index, element in enumerate(body):
        event, errors = validate_event(element)
        if errors:
            message = "; ".join(error["message"] for error in errors)
            batch_errors.append({"index": index, "message": message})
        else:
            valid_events.append(event)

    if batch_errors:
        with state.lock:
            with_index = state.config.batch_error_index
        if with_index:
            return json_response(HTTPStatus.BAD_REQUEST, batch_errors)
        return _bad_request(f"{len(batch_errors)} custom events in the batch are invalid")
    with state.lock:
        for event in valid_events:
            _store_event(state, event)
    return created()


# Routes


@dataclasses.dataclass(frozen=True)
class Route:
    """HTTP method, path pattern with ``{name}`` segments, and handler."""

    method: str
    pattern: str
    handler: Handler

    @property
    def segments(self) -> list[str]:
        """Return the pattern split at "/"."""
        return self.pattern.split("/")[1:]

    def match(self, segments: list[str]) -> Params | None:
        """Return the path parameters when the segments fit, else None."""
        pattern = self.segments
        if len(pattern) != len(segments):
            return None
        params: Params = {}
        for expected, actual in zip(pattern, segments, strict=True):
            if expected.startswith("{"):
                if not actual:
                    return None
                params[expected[1:-1]] = actual
            elif expected != actual:
                return None
        return params

    @property
    def literal_count(self) -> int:
        """Return the number of fixed segments, used to prefer literal paths."""
        return sum(1 for segment in self.segments if not segment.startswith("{"))


def _for(kind: EntityKind, handler: Callable[..., Response]) -> Handler:
    return functools.partial(handler, kind)


ROUTES = (
    Route("GET", "/v1/admin/subscription", get_subscription),
    Route("GET", "/v1/admin/model/{type}/attributes", get_attributes),
    Route("GET", "/v1/users", _for(USERS, list_records)),
    Route("POST", "/v1/users", _for(USERS, create_record)),
    Route("PUT", "/v1/users/update", _for(USERS, update_by_body)),
    Route("DELETE", "/v1/users/delete", _for(USERS, delete_by_body)),
    Route("GET", "/v1/users/{identifyId}", _for(USERS, get_record)),
    Route("PUT", "/v1/users/{identifyId}", _for(USERS, update_by_path)),
    Route("DELETE", "/v1/users/{identifyId}", _for(USERS, delete_by_path)),
    Route("GET", "/v1/accounts", _for(ACCOUNTS, list_records)),
    Route("POST", "/v1/accounts", _for(ACCOUNTS, create_record)),
    Route("PUT", "/v1/accounts/update", _for(ACCOUNTS, update_by_body)),
    Route("GET", "/v1/accounts/{accountId}", _for(ACCOUNTS, get_record)),
    Route("PUT", "/v1/accounts/{accountId}", _for(ACCOUNTS, update_by_path)),
    Route("DELETE", "/v1/accounts/{accountId}", _for(ACCOUNTS, delete_by_path)),
    Route("GET", "/v1/events/custom", list_events),
    Route("POST", "/v1/events/custom", create_events),
)


def dispatch(state: SandboxState, request: ApiRequest) -> Response:
    """Route a PX request that passed auth, rate limit and faults to its handler.

    A literal path beats a ``{name}`` pattern, as in Spring: PUT /v1/users/update
    updates by body, while GET /v1/users/update reads the user "update".
    Invalid bodies and parameters get 400 responses.
    """
    try:
        segments = request.path_segments()
    except InvalidRequest as error:
        return _bad_request(str(error))

    matched = [(route, route.match(segments)) for route in ROUTES]
    matched = [(route, params) for route, params in matched if params is not None]
    if not matched:
        return px_error(HTTPStatus.NOT_FOUND, f"No endpoint {request.path}")

    for_method = [item for item in matched if item[0].method == request.method]
    if not for_method:
        allowed = ", ".join(sorted({route.method for route, _ in matched}))
        return px_error(
            HTTPStatus.METHOD_NOT_ALLOWED,
            f"Request method '{request.method}' not supported",
            headers={"Allow": allowed},
        )

    route, params = max(for_method, key=lambda item: item[0].literal_count)
    try:
        return route.handler(state, request, params)
    except InvalidRequest as error:
        return _bad_request(str(error))
