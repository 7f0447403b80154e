"""Stages every PX request passes: auth, rate limit, injected faults, handling.

The order is fixed:

1. Authentication. A missing or unknown ``X-APTRINSIC-API-KEY`` gets 401,
   whatever the path, so an unknown path with a bad key is 401, not 404.
2. Rate limit. A request over the per-key token bucket gets 429.
3. Injected faults: ``fail_next`` entries, then ``drop_rate``, ``fault_rate``
   and ``slow_rate``. A drop or fault status ends the request here, so nothing
   is stored. A slow request goes on to be handled and stored normally.
4. Routing and handling: 404 for an unknown path, 405 for a wrong method, 400
   for a bad body, then the endpoint itself.

``latency_ms`` delays every PX response, including 401, 429 and injected faults.
The handler thread sleeps after handling and before responding.
"""

from __future__ import annotations

import dataclasses
import logging
from http import HTTPStatus

from .api_request import ApiRequest
from .faults import FAULT_RATE_LIMIT
from .px_api import dispatch
from .responses import Response, injected_fault, px_error, rate_limited, unauthorized
from .state import SandboxState

logger = logging.getLogger(__name__)

API_KEY_HEADER = "X-APTRINSIC-API-KEY"


@dataclasses.dataclass(frozen=True)
class PxOutcome:
    """Result of the PX stages for one request.

    ``response`` is None when the connection must be closed without a response.
    ``delay_ms`` is the time to wait before responding or closing.
    """

    response: Response | None
    key_valid: bool
    fault: str | None
    delay_ms: int


def process_px_request(state: SandboxState, request: ApiRequest) -> PxOutcome:
    """Run a PX request through auth, rate limit, faults and its handler."""
    with state.lock:
        latency_ms = state.config.latency_ms
        retry_after = state.config.retry_after

    api_key = request.headers.get(API_KEY_HEADER)
    if not state.is_valid_key(api_key):
        return PxOutcome(unauthorized(), False, None, latency_ms)

    if not state.rate_limiter.allow(api_key):
        return PxOutcome(rate_limited(retry_after), True, FAULT_RATE_LIMIT, latency_ms)

    fault = state.draw_fault()
    if fault is not None and fault.drop:
        return PxOutcome(None, True, fault.label, latency_ms)
    if fault is not None and fault.status is not None:
        response = injected_fault(fault.status, retry_after)
        return PxOutcome(response, True, fault.label, latency_ms)

    try:
        response = dispatch(state, request)
    # One failing handler must not stop the server, so any error becomes a 500.
    except Exception as error:
        logger.exception("Handler failed for %s %s", request.method, request.path)
        response = px_error(
            HTTPStatus.INTERNAL_SERVER_ERROR, "Internal error", debug_message=str(error)
        )

    if fault is None:
        return PxOutcome(response, True, None, latency_ms)
    return PxOutcome(response, True, fault.label, latency_ms + fault.delay_ms)
