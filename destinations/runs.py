"""Starting, pausing and resuming delivery."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from destinations.models import Destination, RecordResult, Run
from nexsets.models import Record
from px.templates import TEMPLATES

logger = logging.getLogger(__name__)

RESULT_CHUNK = 2000


def _enqueue(run: Run) -> None:
    """Queue the run's delivery tasks once the transaction commits.

    Each task claims its own chunks, so DELIVERY_TASKS_PER_RUN tasks spread
    one run over that many worker processes.
    """
    from destinations.tasks import deliver_run

    def send() -> None:
        for _ in range(settings.DELIVERY_TASKS_PER_RUN):
            deliver_run.delay(run.pk)

    transaction.on_commit(send)


def create_run(destination: Destination) -> Run | None:
    """Hand the records after the destination's cursor to a new run.

    Returns None when there is nothing new to send.
    """
    with transaction.atomic():
        locked = Destination.objects.select_for_update().get(pk=destination.pk)
        last = (
            Record.objects.filter(nexset_id=locked.nexset_id).aggregate(
                last=Max("position")
            )["last"]
            or 0
        )
        if last <= locked.cursor:
            return None
        run = Run.objects.create(destination=locked)
        record_ids = (
            Record.objects.filter(
                nexset_id=locked.nexset_id,
                position__gt=locked.cursor,
                position__lte=last,
            )
            .order_by("position")
            .values_list("id", flat=True)
        )
        total = 0
        batch: list[RecordResult] = []
        for record_id in record_ids.iterator(chunk_size=RESULT_CHUNK):
            batch.append(RecordResult(run=run, record_id=record_id))
            if len(batch) >= RESULT_CHUNK:
                RecordResult.objects.bulk_create(batch)
                total += len(batch)
                batch = []
        if batch:
            RecordResult.objects.bulk_create(batch)
            total += len(batch)
        run.total = total
        run.save(update_fields=["total"])
        skip_superseded(run, locked)
        locked.cursor = last
        locked.save(update_fields=["cursor", "updated"])
        _enqueue(run)
    logger.info(
        "Run %s of destination %s created with %s records",
        run.pk,
        destination.pk,
        total,
    )
    return run


def activate(destination: Destination) -> Run | None:
    """Start delivery: resume paused runs, then send records not yet sent."""
    with transaction.atomic():
        Destination.objects.filter(pk=destination.pk).update(
            status=Destination.Status.ACTIVE, status_reason="", last_error=""
        )
        destination.status = Destination.Status.ACTIVE
        destination.status_reason = ""
        for run in Run.objects.filter(
            destination=destination, status=Run.Status.PAUSED
        ):
            Run.objects.filter(pk=run.pk).update(status=Run.Status.QUEUED)
            _enqueue(run)
    return create_run(destination)


def pause(destination: Destination, reason: str = "") -> None:
    """Stop delivery; workers stop after the requests already in flight."""
    Destination.objects.filter(pk=destination.pk).update(
        status=Destination.Status.PAUSED, status_reason=reason
    )
    destination.status = Destination.Status.PAUSED
    destination.status_reason = reason
    Run.objects.filter(destination=destination, status__in=Run.ACTIVE_STATUSES).update(
        status=Run.Status.PAUSED
    )


def start_incremental_runs(nexset_id: int) -> None:
    """Deliver records newly added to a Nexset through its active destinations."""
    for destination in Destination.objects.filter(
        nexset_id=nexset_id, status=Destination.Status.ACTIVE
    ):
        create_run(destination)


def retry_failed(destination: Destination) -> Run | None:
    """Send again only the records whose latest outcome is a failure."""
    with transaction.atomic():
        failed_ids = latest_failed_record_ids(destination)
        if not failed_ids:
            return None
        run = Run.objects.create(
            destination=destination, kind=Run.Kind.RETRY, total=len(failed_ids)
        )
        RecordResult.objects.bulk_create(
            [RecordResult(run=run, record_id=record_id) for record_id in failed_ids],
            batch_size=RESULT_CHUNK,
        )
        skip_superseded(run, destination)
        if destination.status == Destination.Status.ACTIVE:
            _enqueue(run)
        else:
            Run.objects.filter(pk=run.pk).update(status=Run.Status.PAUSED)
    return run


def skip_superseded(run: Run, destination: Destination) -> int:
    """Skip the records of an upsert or update run that a later record replaces.

    Records sharing a key (identifyId or account id) would otherwise be sent
    concurrently, and PX would keep whichever response came last rather than
    the last record. Only the last record per key is sent; the others are
    marked skipped, naming the record that replaces them. Returns how many.
    """
    if (
        destination.mode != Destination.Mode.TEMPLATE
        or destination.template not in TEMPLATES
    ):
        return 0
    template = TEMPLATES[destination.template]
    if template.object_type == "event":
        return 0
    source = (destination.config.get("mapping") or {}).get(template.key_field) or {}
    attribute = source.get("attribute")
    if attribute is None:
        return 0
    last_by_key: dict[str, tuple[int, int]] = {}
    superseded: list[tuple[int, str]] = []
    results = (
        RecordResult.objects.filter(run=run)
        .order_by("record__position")
        .values_list("id", "record__position", "record__data")
    )
    for result_id, position, data in results.iterator(chunk_size=RESULT_CHUNK):
        value = data.get(attribute) if isinstance(data, dict) else None
        if value is None or value == "":
            continue
        key = str(value)
        if key in last_by_key:
            superseded.append((last_by_key[key][0], key))
        last_by_key[key] = (result_id, position)
    if not superseded:
        return 0
    now = timezone.now()
    skipped = [
        RecordResult(
            pk=result_id,
            status=RecordResult.Status.SKIPPED,
            error=f"superseded by record #{last_by_key[key][1]}, which has the same {template.key_field}",
            finished_at=now,
        )
        for result_id, key in superseded
    ]
    RecordResult.objects.bulk_update(
        skipped, ["status", "error", "finished_at"], batch_size=RESULT_CHUNK
    )
    Run.objects.filter(pk=run.pk).update(skipped=F("skipped") + len(superseded))
    logger.info(
        "Run %s of destination %s: %s records superseded by later ones with the same key",
        run.pk,
        destination.pk,
        len(superseded),
    )
    return len(superseded)


def latest_failed_record_ids(destination: Destination) -> list[int]:
    """Return records whose most recent result for the destination failed."""
    latest: dict[int, str] = {}
    results = (
        RecordResult.objects.filter(run__destination=destination)
        .exclude(status__in=[RecordResult.Status.PENDING, RecordResult.Status.CLAIMED])
        .order_by("run_id")
        .values_list("record_id", "status")
    )
    for record_id, status in results.iterator(chunk_size=RESULT_CHUNK):
        latest[record_id] = status
    return sorted(
        record_id
        for record_id, status in latest.items()
        if status == RecordResult.Status.FAILED
    )
