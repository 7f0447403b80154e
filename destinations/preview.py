"""The sample panel, Send Test Data and the dry run."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from destinations.manual import API_KEY_HEADER, ManualConfigError, batching_warning
from destinations.manual import RecordError as ManualRecordError
from destinations.models import Destination, Exchange
from destinations.plan import DeliveryPlan, PlannedRequest, Rejection
from nexsets.models import Record
from px import flows
from px.client import USER_AGENT, PxResponse, PxTransportError, encode_json

SAMPLE_RECORDS = 5
DRY_RUN_CHUNK = 2000
DRY_RUN_EXAMPLES = 20


@dataclass
class ShownRequest:
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: str
    pretty: str
    positions: list[int]


@dataclass
class Panel:
    requests: list[ShownRequest] = field(default_factory=list)
    rejections: list[tuple[int, str]] = field(default_factory=list)
    error: str = ""
    warning: str = ""
    sample_body: str = ""


def shown_headers(credential: Any, request: PlannedRequest) -> list[tuple[str, str]]:
    """Headers as sent, with the API key masked."""
    headers = [("Accept", "application/json"), ("User-Agent", USER_AGENT)]
    headers.extend(request.headers)
    headers.append(("Content-Type", request.content_type))
    headers.append((API_KEY_HEADER, credential.masked_key))
    return headers


def sample_items(destination: Destination, limit: int = SAMPLE_RECORDS) -> list[tuple[int, dict[str, Any]]]:
    records = Record.objects.filter(nexset_id=destination.nexset_id).order_by("position")
    return [(record.position, record.data) for record in records[: limit]]


def build_panel(destination: Destination, mode: str, template: str, config: dict[str, Any]) -> Panel:
    panel = Panel()
    try:
        plan = DeliveryPlan(mode, template, config, destination.credential.base_url)
    except (ManualConfigError, ValueError) as exc:
        panel.error = str(exc)
        return panel
    if mode == "manual":
        panel.warning = batching_warning(plan.method, config.get("url", ""), plan.batching) or ""
    limit = SAMPLE_RECORDS
    if plan.batching:
        limit = max(SAMPLE_RECORDS, plan.batch_size * 3)
    planned, rejected = plan.plan(sample_items(destination, limit))
    for request in planned[:SAMPLE_RECORDS]:
        body = request.body.decode("utf-8", errors="replace")
        panel.requests.append(
            ShownRequest(
                method=request.method,
                url=request.url,
                headers=shown_headers(destination.credential, request),
                body=body,
                pretty=_pretty(body, request.content_type),
                positions=[key for key in request.keys],
            )
        )
    panel.rejections = [(rejection.key, rejection.reason) for rejection in rejected]
    if panel.requests:
        panel.sample_body = panel.requests[0].pretty
    return panel


def _pretty(body: str, content_type: str) -> str:
    if content_type != "application/json":
        return body
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body


class SampleError(ValueError):
    pass


def parse_sample(text: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SampleError(
            f"The sample is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno} (character {exc.pos})."
        ) from None
    if not isinstance(value, (dict, list)) or (isinstance(value, list) and not all(isinstance(v, dict) for v in value)):
        raise SampleError("The sample must be a JSON object, or an array of objects for a batch.")
    return value


def send_test(destination: Destination, mode: str, template: str, config: dict[str, Any], sample_text: str) -> list[Exchange]:
    """Send one edited sample with the current settings and keep the exchanges.

    The sample is the request body itself (the panel's first body, edited), so
    for templates it is sent as it is, through the template's flow.
    """
    sample = parse_sample(sample_text)
    plan = DeliveryPlan(mode, template, config, destination.credential.base_url)
    if mode == "template":
        if not isinstance(sample, dict):
            raise SampleError("A template sends one object per request: the sample must be a JSON object.")
        request = PlannedRequest(
            method=plan.flow.update.method,
            url=plan.base_url + plan.flow.update.path,
            body=encode_json(sample),
            content_type="application/json",
            items=[(0, sample)],
            template=template,
        )
    else:
        records = sample if isinstance(sample, list) else [sample]
        try:
            request = plan.request_for([(i, r) for i, r in enumerate(records)], batch=isinstance(sample, list))
        except ManualRecordError as exc:
            raise SampleError(str(exc)) from None
    client = destination.credential.client()
    exchanges: list[Exchange] = []
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
                response = client.request(request.method, request.url, data=request.body, content_type=request.content_type, headers=request.headers)
                calls.append((request.method, request.url, request.body, response, ""))
            except PxTransportError as exc:
                calls.append((request.method, request.url, request.body, None, str(exc)))
    finally:
        client.close()
    for method, url, body, response, error in calls:
        shown = PlannedRequest(method=method, url=client.url(url), body=body, content_type=request.content_type, headers=request.headers)
        exchanges.append(
            Exchange.objects.create(
                destination=destination,
                kind=Exchange.Kind.TEST,
                method=method,
                url=client.url(url),
                request_headers=dict(shown_headers(destination.credential, shown)),
                request_body=body.decode("utf-8", errors="replace"),
                status=response.status if response else None,
                response_headers=dict(response.headers) if response else {},
                response_body=response.text[:20000] if response else "",
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

    def request(self, method: str, path: str, *, data: bytes, **kwargs: Any) -> PxResponse:
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
    would_fail: int = 0
    requests: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    examples: list[tuple[int, str]] = field(default_factory=list)
    error: str = ""


def dry_run(destination: Destination, mode: str, template: str, config: dict[str, Any]) -> DryRun:
    """Validate every record of the Nexset with the current settings, sending nothing."""
    result = DryRun()
    try:
        plan = DeliveryPlan(mode, template, config, destination.credential.base_url)
    except (ManualConfigError, ValueError) as exc:
        result.error = str(exc)
        return result
    records = Record.objects.filter(nexset_id=destination.nexset_id).order_by("position")
    chunk: list[tuple[int, dict[str, Any]]] = []

    def check(items: list[tuple[int, dict[str, Any]]]) -> None:
        planned, rejected = plan.plan(items)
        result.requests += len(planned)
        result.would_send += sum(len(request.items) for request in planned)
        _count_rejections(result, rejected)

    for position, data in records.values_list("position", "data").iterator(chunk_size=DRY_RUN_CHUNK):
        result.total += 1
        chunk.append((position, data))
        if len(chunk) >= DRY_RUN_CHUNK:
            check(chunk)
            chunk = []
    if chunk:
        check(chunk)
    return result


def _count_rejections(result: DryRun, rejected: list[Rejection]) -> None:
    for rejection in rejected:
        result.would_fail += 1
        result.reasons[_reason_kind(rejection.reason)] += 1
        if len(result.examples) < DRY_RUN_EXAMPLES:
            result.examples.append((rejection.key, rejection.reason))


def _reason_kind(reason: str) -> str:
    """Group reasons that differ only in the quoted value."""
    return re.sub(r'"[^"]*"', '"…"', reason)[:200]
