"""Celery tasks; they take primary keys only, never keys or records."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from destinations.engine import RunDelivery, release_stale_claims
from destinations.models import Destination, Run

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def deliver_run(run_id: int) -> None:
    """Deliver a run's records for one time slice, then queue the next slice."""
    try:
        run = Run.objects.select_related("destination__credential").get(pk=run_id)
    except Run.DoesNotExist:
        return
    if not run.is_active:
        return
    if run.destination.status != Destination.Status.ACTIVE:
        Run.objects.filter(pk=run_id, status__in=Run.ACTIVE_STATUSES).update(
            status=Run.Status.PAUSED
        )
        return
    deadline = time.monotonic() + settings.DELIVERY_SLICE_SECONDS
    finished = RunDelivery(run).execute(deadline)
    if not finished:
        deliver_run.delay(run_id)


@shared_task(ignore_result=True)
def resume_stalled_runs() -> None:
    """Release claims of dead workers and queue runs that no worker is working on."""
    release_stale_claims()
    cutoff = timezone.now() - timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    stalled = Run.objects.filter(
        status__in=Run.ACTIVE_STATUSES,
        destination__status=Destination.Status.ACTIVE,
        heartbeat_at__lt=cutoff,
    ) | Run.objects.filter(
        status=Run.Status.QUEUED,
        destination__status=Destination.Status.ACTIVE,
        heartbeat_at__isnull=True,
        created__lt=cutoff,
    )
    for run in stalled:
        logger.warning(
            "Run %s stalled since %s; queueing it again", run.pk, run.heartbeat_at
        )
        Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())
        for _ in range(settings.DELIVERY_TASKS_PER_RUN):
            deliver_run.delay(run.pk)
