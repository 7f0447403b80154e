"""The response webhook: each PX response becomes a record of a Nexset."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from destinations.models import Destination, Run
from destinations.plan import PlannedRequest
from nexsets.ingest import append_records
from nexsets.models import Nexset
from px.client import PxResponse


def response_nexset(destination: Destination) -> Nexset:
    """Return the destination's response Nexset, creating it on first use."""
    with transaction.atomic():
        locked = Destination.objects.select_for_update().get(pk=destination.pk)
        if locked.response_nexset_id is None:
            nexset = Nexset.objects.create(
                team_id=locked.team_id,
                name=f"{locked.name} responses",
                source=Nexset.Source.RESPONSES,
            )
            locked.response_nexset = nexset
            locked.save(update_fields=["response_nexset", "updated"])
        destination.response_nexset_id = locked.response_nexset_id
        return locked.response_nexset


def response_record(
    run: Run | None, request: PlannedRequest, response: PxResponse
) -> dict[str, Any]:
    body: Any = response.json()
    if body is None:
        body = response.text
    return {
        "run": run.pk if run else None,
        "method": request.method,
        "url": request.url,
        "status": response.status,
        "latency_ms": round(response.elapsed_ms, 1),
        "received_at": timezone.now().isoformat(),
        "request_records": [record for _, record in request.items],
        "response": body if body != "" else None,
    }


def store_responses(
    destination: Destination,
    run: Run | None,
    exchanges: list[tuple[PlannedRequest, PxResponse]],
) -> None:
    nexset = response_nexset(destination)
    records = [
        response_record(run, request, response) for request, response in exchanges
    ]
    append_records(nexset, records)
