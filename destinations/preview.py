"""The sample panel, Send Test Data and the dry run.

All three build requests with destinations.plan, as the workers do, so the
panel shows the bytes a worker sends.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from destinations import manual
from destinations.engine import claim_size
from destinations.manual import API_KEY_HEADER, ManualConfigError, batching_warning
from destinations.models import DeliveredContent, Destination, Exchange
from destinations.plan import DeliveryPlan, PlannedRequest, Rejection
from nexsets.models import Record
from px import flows
from px.client import USER_AGENT, PxResponse, PxTransportError, encode_json

SAMPLE_REQUESTS = 5
REJECTIONS_SHOWN = 20
DRY_RUN_EXAMPLES = 20
RESPONSE_BODY_KEPT = 20000


@dataclass
class ShownRequest:
    method: str
    url: str
    headers: list[tuple[str, str]]
    # The body exactly as sent, decoded as UTF-8.
    body: str
    pretty: str
    positions: list[Any]


@dataclass
class Panel:
    requests: list[ShownRequest] = field(default_factory=list)
    rejections: list[tuple[Any, str]] = field(default_factory=list)
    rejected_count: int = 0
    error: str = ""
    warnings: list[str] = field(default_factory=list)
    # JSON text for the Send Test Data sample: the first request's body for a
    # template, the first request's records for a manual setup.
    sample_body: str = ""


def shown_headers(credential: Any, request: PlannedRequest) -> list[tuple[str, str]]:
    """Return the headers PxClient sets for a request, with the API key masked.

    A custom header replaces a default of the same name, ignoring case, as
    requests merges them. Headers that requests adds itself (Host,
    Content-Length, Accept-Encoding, Connection) are not listed.
    """
    headers = [("User-Agent", USER_AGENT), ("Accept", "application/json")]
    for name, value in request.headers:
        _put_header(headers, name, value)
    _put_header(headers, "Content-Type", request.content_type)
    _put_header(headers, API_KEY_HEADER, credential.masked_key)
    return headers


def _put_header(headers: list[tuple[str, str]], name: str, value: str) -> None:
    for index, (existing, _) in enumerate(headers):
        if existing.lower() == name.lower():
            headers[index] = (name, value)
            return
    headers.append((name, value))


def _records(destination: Destination) -> Any:
    return (
        Record.objects.filter(nexset_id=destination.nexset_id)
        .order_by("position")
        .values_list("position", "data")
    )


def first_requests(
    destination: Destination, plan: DeliveryPlan, count: int = SAMPLE_REQUESTS
) -> tuple[list[PlannedRequest], list[Rejection]]:
    """Plan the first requests of a delivery of the Nexset from its first record.

    Without batching, the first `count` records are planned, each failing one
    as a rejection. With batching, records are planned in the windows that a
    worker claims, because a worker plans each claimed chunk on its own and a
    batch never spans two chunks.
    """
    if not plan.batching:
        return plan.plan(list(_records(destination)[:count]))
    window = claim_size(destination.credential)
    planned: list[PlannedRequest] = []
    rejected: list[Rejection] = []
    # Every window yields at least one request unless all its records fail,
    # so `count` windows are enough in all but that case.
    for start in range(0, count * window, window):
        items = list(_records(destination)[start : start + window])
        if not items:
            break
        window_planned, window_rejected = plan.plan(items)
        planned.extend(window_planned)
        rejected.extend(window_rejected)
        if len(planned) >= count:
            break
    return planned[:count], rejected


def build_panel(
    destination: Destination,
    mode: str,
    template: str,
    config: dict[str, Any],
    errors: dict[str, str] | None = None,
) -> Panel:
    """Show the first requests the settings produce, and the form's errors."""
    panel = Panel(error=" ".join((errors or {}).values()))
    try:
        plan = DeliveryPlan(mode, template, config, destination.credential.base_url)
    except (ManualConfigError, ValueError) as exc:
        panel.error = panel.error or str(exc)
        return panel
    panel.warnings = plan_warnings(plan, config, destination.credential)
    try:
        planned, rejected = first_requests(destination, plan)
    except ManualConfigError as exc:
        panel.error = panel.error or str(exc)
        return panel
    for request in planned:
        body = request.body.decode("utf-8", errors="replace")
        panel.requests.append(
            ShownRequest(
                method=request.method,
                url=request.url,
                headers=shown_headers(destination.credential, request),
                body=body,
                pretty=_pretty(body, request.content_type),
                positions=request.keys,
            )
        )
    panel.rejected_count = len(rejected)
    panel.rejections = [
        (rejection.key, rejection.reason) for rejection in rejected[:REJECTIONS_SHOWN]
    ]
    if planned:
        panel.sample_body = _sample_text(plan, planned[0])
    return panel


def plan_warnings(
    plan: DeliveryPlan, config: dict[str, Any], credential: Any
) -> list[str]:
    """Return what the settings will do that the user may not expect."""
    if plan.mode != "manual":
        return []
    warnings = []
    single_object = batching_warning(plan.method, config.get("url", ""), plan.batching)
    if single_object:
        warnings.append(single_object)
    window = claim_size(credential)
    if plan.batching and plan.batch_size > window:
        warnings.append(
            f"Batch size {plan.batch_size} is larger than the {window} records"
            f" a worker claims at a time with this credential, so each request"
            f" carries at most {window} records."
        )
    content_format = manual.CONTENT_FORMATS[plan.content_format]
    if not content_format["px_accepts"]:
        warnings.append(
            f"Gainsight PX accepts only JSON bodies, so it rejects {plan.content_format.upper()} requests."
            " Use this format only for an endpoint that reads it."
        )
    return warnings


def _pretty(body: str, content_type: str) -> str:
    if content_type != "application/json":
        return body
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body


def _sample_text(plan: DeliveryPlan, request: PlannedRequest) -> str:
    if plan.mode == "template":
        return _pretty(
            request.body.decode("utf-8", errors="replace"), request.content_type
        )
    records = [record for _, record in request.items]
    return json.dumps(
        records if plan.batching else records[0], indent=2, ensure_ascii=False
    )


class SampleError(ValueError):
    pass


def parse_sample(text: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SampleError(
            f"The sample is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno} (character {exc.pos})."
            " Correct it, or reset it from the panel."
        ) from None
    if not isinstance(value, (dict, list)) or (
        isinstance(value, list) and not all(isinstance(v, dict) for v in value)
    ):
        raise SampleError(
            "The sample must be a JSON object, or an array of objects for a batch."
        )
    if isinstance(value, list) and not value:
        raise SampleError(
            "The sample is an empty array: a batch needs at least one record."
        )
    return value


def build_test_request(
    destination: Destination, plan: DeliveryPlan, sample: Any
) -> PlannedRequest:
    """Build the request that Send Test Data sends for an edited sample.

    For a template the sample is the request body. For a manual setup it is
    the record (or, with batching, the array of records) after exclusions,
    encoded in the content format. URL macros read the sample, and fall back
    to the panel's first stored record for attributes the sample lacks, such
    as excluded ones.
    """
    if plan.mode == "template":
        if not isinstance(sample, dict):
            raise SampleError(
                "A template sends one object per request: the sample must be a JSON object."
            )
        return PlannedRequest(
            method=plan.flow.update.method,
            url=plan.base_url + plan.flow.update.path,
            body=encode_json(sample),
            content_type="application/json",
            items=[(0, sample)],
            template=plan.template,
        )
    if isinstance(sample, list) and not plan.batching:
        raise SampleError(
            "Record batching is off, so a request carries one record: the sample must be a JSON object."
        )
    records = sample if isinstance(sample, list) else [sample]
    url_record = {**_first_stored_record(destination, plan), **records[0]}
    try:
        url = manual.render_url(plan.url_template, url_record)
        body, content_type = manual.encode_body(
            records if plan.batching else records[0], plan.content_format
        )
    except (manual.RecordError, ManualConfigError) as exc:
        raise SampleError(f"The sample cannot be sent: {exc}") from None
    return PlannedRequest(
        method=plan.method,
        url=url,
        body=body,
        content_type=content_type,
        headers=list(plan.headers),
        items=list(enumerate(records)),
    )


def _first_stored_record(
    destination: Destination, plan: DeliveryPlan
) -> dict[str, Any]:
    planned, _ = first_requests(destination, plan, count=1)
    if not planned:
        return {}
    position = planned[0].keys[0]
    data = (
        Record.objects.filter(nexset_id=destination.nexset_id, position=position)
        .values_list("data", flat=True)
        .first()
    )
    return data if isinstance(data, dict) else {}


def send_test(
    destination: Destination,
    mode: str,
    template: str,
    config: dict[str, Any],
    sample_text: str,
) -> list[Exchange]:
    """Send one edited sample with the current settings and keep the exchanges.

    A template's sample goes through the template's flow, so a new upsert is
    a PUT that returns 404 and then a POST. Each HTTP exchange is stored as an
    Exchange of kind TEST with the API key masked.
    """
    sample = parse_sample(sample_text)
    plan = DeliveryPlan(mode, template, config, destination.credential.base_url)
    request = build_test_request(destination, plan, sample)
    client = destination.credential.client()
    try:
        if request.template:
            recorder = _RecordingClient(client)
            try:
                flows.run_flow(recorder, request.template, request.body)
            except PxTransportError as exc:
                recorder.failed(exc)
            calls = recorder.calls
        else:
            calls = []
            try:
                response = client.request(
                    request.method,
                    request.url,
                    data=request.body,
                    content_type=request.content_type,
                    headers=request.headers,
                )
                calls.append((request.method, request.url, request.body, response, ""))
            except PxTransportError as exc:
                calls.append(
                    (request.method, request.url, request.body, None, str(exc))
                )
    finally:
        client.close()
    exchanges: list[Exchange] = []
    for method, url, body, response, error in calls:
        sent = PlannedRequest(
            method=method,
            url=client.url(url),
            body=body,
            content_type=request.content_type,
            headers=request.headers,
        )
        exchanges.append(
            Exchange.objects.create(
                destination=destination,
                kind=Exchange.Kind.TEST,
                method=method,
                url=sent.url,
                request_headers=dict(shown_headers(destination.credential, sent)),
                request_body=body.decode("utf-8", errors="replace"),
                status=response.status if response else None,
                response_headers=dict(response.headers) if response else {},
                response_body=response.text[:RESPONSE_BODY_KEPT] if response else "",
                elapsed_ms=response.elapsed_ms if response else None,
                error=error,
            )
        )
    return exchanges


class _RecordingClient:
    """Pass requests to a PxClient and remember each one for the history."""

    def __init__(self, client: Any):
        self.client = client
        self.calls: list[tuple[str, str, bytes, PxResponse | None, str]] = []
        self._last: tuple[str, str, bytes] | None = None

    def request(
        self, method: str, path: str, *, data: bytes, **kwargs: Any
    ) -> PxResponse:
        self._last = (method, path, data)
        response = self.client.request(method, path, data=data, **kwargs)
        self.calls.append((method, path, data, response, ""))
        return response

    def failed(self, exc: Exception) -> None:
        if self._last:
            method, path, data = self._last
            self.calls.append((method, path, data, None, str(exc)))


@dataclass
class DryRun:
    total: int = 0
    would_send: int = 0
    would_skip: int = 0
    would_fail: int = 0
    requests: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    examples: list[tuple[Any, str]] = field(default_factory=list)
    error: str = ""

    @property
    def reason_counts(self) -> list[tuple[str, int]]:
        """Return the reasons, most frequent first.

        Templates cannot call Counter.most_common: a Counter returns 0 for
        the missing key "most_common" before Django tries the attribute.
        """
        return self.reasons.most_common()


def dry_run(
    destination: Destination, mode: str, template: str, config: dict[str, Any]
) -> DryRun:
    """Validate every record of the Nexset with the current settings, sending nothing.

    Records are planned in the windows a worker claims, so the request count
    matches a delivery of the whole Nexset. Records whose payload was already
    delivered unchanged count as skipped, as the worker skips them.

    NOTE: this runs inside the web request, so a Nexset of millions of records
    can take longer than a proxy in front of the app waits.
    """
    result = DryRun()
    try:
        plan = DeliveryPlan(mode, template, config, destination.credential.base_url)
    except (ManualConfigError, ValueError) as exc:
        result.error = str(exc)
        return result
    window = claim_size(destination.credential)
    chunk: list[tuple[int, dict[str, Any]]] = []
    try:
        for item in _records(destination).iterator(chunk_size=window):
            result.total += 1
            chunk.append(item)
            if len(chunk) >= window:
                _dry_run_window(destination, plan, chunk, result)
                chunk = []
        if chunk:
            _dry_run_window(destination, plan, chunk, result)
    except ManualConfigError as exc:
        result.error = str(exc)
    return result


def _dry_run_window(
    destination: Destination,
    plan: DeliveryPlan,
    items: list[tuple[int, dict[str, Any]]],
    result: DryRun,
) -> None:
    planned, rejected = plan.plan(items)
    if plan.skip_unchanged:
        planned = _drop_unchanged(destination, planned, result)
    result.requests += len(planned)
    result.would_send += sum(len(request.items) for request in planned)
    for rejection in rejected:
        result.would_fail += 1
        result.reasons[_reason_kind(rejection.reason)] += 1
        if len(result.examples) < DRY_RUN_EXAMPLES:
            result.examples.append((rejection.key, rejection.reason))


def _drop_unchanged(
    destination: Destination, planned: list[PlannedRequest], result: DryRun
) -> list[PlannedRequest]:
    keys = [request.object_key for request in planned if request.object_key]
    delivered = dict(
        DeliveredContent.objects.filter(
            destination=destination, key__in=keys
        ).values_list("key", "digest")
    )
    to_send = []
    for request in planned:
        if request.object_key and delivered.get(request.object_key) == request.digest:
            result.would_skip += len(request.items)
        else:
            to_send.append(request)
    return to_send


def _reason_kind(reason: str) -> str:
    """Group reasons that differ only in the quoted value."""
    return re.sub(r'"[^"]*"', '"…"', reason)[:200]
