"""The request sequences behind the endpoint templates.

PX has no upsert endpoint. An upsert updates with the id in the body (so ids
with `/`, `+`, `%` or spaces need no URL encoding), creates on 404, and
updates once more when the create returns 400 "possible duplicate" because
the object was created in between. An update never creates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from px.client import PxClient, PxResponse, is_not_found, is_possible_duplicate

# Outcomes of a response for the record that caused it.
OK = "ok"
RETRY = "retry"  # 429, 5xx or no response: worth sending again later
FAIL = "fail"  # the record is wrong for PX: sending it again cannot help
AUTH = "auth"  # the key was rejected: stop the whole destination


@dataclass(frozen=True)
class Step:
    method: str
    path: str


@dataclass(frozen=True)
class Flow:
    """The first request of a template and what to do on 404."""

    update: Step
    create: Step | None  # None: a 404 fails the record
    success_status: int
    object_label: str  # "user", "account" or "event", for messages


FLOWS = {
    "upsert_account": Flow(
        Step("PUT", "/v1/accounts/update"), Step("POST", "/v1/accounts"), 204, "account"
    ),
    "update_account": Flow(Step("PUT", "/v1/accounts/update"), None, 204, "account"),
    "upsert_user": Flow(
        Step("PUT", "/v1/users/update"), Step("POST", "/v1/users"), 204, "user"
    ),
    "update_user": Flow(Step("PUT", "/v1/users/update"), None, 204, "user"),
    "track_event": Flow(Step("POST", "/v1/events/custom"), None, 201, "event"),
}


@dataclass
class Attempt:
    """One HTTP exchange made while running a flow."""

    method: str
    path: str
    response: PxResponse


@dataclass
class FlowResult:
    outcome: str
    message: str = ""
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def last_response(self) -> PxResponse | None:
        return self.attempts[-1].response if self.attempts else None


def classify(response: PxResponse) -> str:
    if response.ok:
        return OK
    if response.status in (401, 403):
        return AUTH
    if response.status == 429 or response.status >= 500:
        return RETRY
    return FAIL


def run_flow(client: PxClient, template_key: str, body: bytes) -> FlowResult:
    """Send one record's body through a template's request sequence.

    Raises PxTransportError when a request gets no response. The caller then
    retries the whole flow, which is safe because every step is an idempotent update
    or a create guarded by the update before it. Custom events are the
    exception: a POST whose response was lost may have been stored.
    """
    flow = FLOWS[template_key]
    result = FlowResult(OK)

    def send(step: Step) -> PxResponse:
        response = client.request(step.method, step.path, data=body)
        result.attempts.append(Attempt(step.method, step.path, response))
        return response

    response = send(flow.update)
    if is_not_found(response) and flow.update.method == "PUT":
        if flow.create is None:
            return _finish(
                result,
                FAIL,
                f"{flow.object_label} not found: {response.error_message()}",
            )
        response = send(flow.create)
        if is_possible_duplicate(response):
            response = send(flow.update)
    if response.ok:
        return result
    outcome = classify(response)
    message = response.error_message()
    if outcome == AUTH:
        message = f"authentication failed: {message}"
    return _finish(result, outcome, message)


def _finish(result: FlowResult, outcome: str, message: str) -> FlowResult:
    result.outcome = outcome
    result.message = message
    return result
