"""Delivery of a run's records to PX by one worker.

Work is claimed in chunks with a conditional UPDATE, so several workers can
share one run and never send the same records. Each record's outcome is
written as soon as its response arrives; a worker that dies leaves only
its claimed records behind, and `release_stale_claims` puts those back, so
only the requests in flight at that moment may be sent twice.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from credentials.crypto import DecryptionError
from credentials.models import Credential
from destinations.manual import ManualConfigError
from destinations.models import DeliveredContent, Destination, RecordResult, Run
from destinations.plan import DeliveryPlan, PlannedRequest
from destinations.ratelimit import SharedRateLimit
from px import flows
from px.client import PxClient, PxResponse, PxTransportError

logger = logging.getLogger(__name__)

# A worker logs its progress on a run at most this often.
LOG_EVERY_SECONDS = 10.0
# How often a worker checks whether its destination was paused or edited.
CHECK_INTERVAL_SECONDS = 0.5
RESPONSE_BODY_LIMIT = 4000


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class Delivered:
    """Outcome of one planned request, after retries and bisection."""

    outcomes: list[tuple[list[Any], str, str, PlannedRequest, PxResponse | None]] = (
        field(default_factory=list)
    )
    requests: int = 0
    retried: int = 0
    throttled: int = 0
    auth_error: str = ""
    exchanges: list[tuple[PlannedRequest, PxResponse]] = field(default_factory=list)
    plan: DeliveryPlan | None = None


def claim_size(credential: Any) -> int:
    """Return how many records a worker claims at a time for this credential.

    About ten seconds of work at the credential's rate, so that a slice ends
    near its deadline even under a low rate limit. The sample panel plans
    batches in windows of this size too, as workers group within a claim.
    """
    return max(
        settings.DELIVERY_CONCURRENCY,
        min(settings.DELIVERY_CLAIM_SIZE, credential.rate_limit * 10),
    )


def release_stale_claims(run: Run | None = None) -> int:
    """Put records claimed by workers that stopped reporting back to pending."""
    cutoff = timezone.now() - timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    stale = RecordResult.objects.filter(
        status=RecordResult.Status.CLAIMED, claimed_at__lt=cutoff
    )
    if run is not None:
        stale = stale.filter(run=run)
    run_ids = sorted(set(stale.values_list("run_id", flat=True)))
    count = stale.update(
        status=RecordResult.Status.PENDING, claimed_by="", claimed_at=None
    )
    if count:
        logger.warning(
            "Released %s records of runs %s claimed by a worker that stopped reporting",
            count,
            run_ids,
        )
    return count


def claim(run: Run, worker: str, size: int) -> list[RecordResult]:
    with transaction.atomic():
        ids = list(
            RecordResult.objects.select_for_update(skip_locked=True)
            .filter(run=run, status=RecordResult.Status.PENDING)
            .order_by("id")
            .values_list("id", flat=True)[:size]
        )
        if not ids:
            return []
        RecordResult.objects.filter(
            id__in=ids, status=RecordResult.Status.PENDING
        ).update(
            status=RecordResult.Status.CLAIMED,
            claimed_by=worker,
            claimed_at=timezone.now(),
        )
    return list(
        RecordResult.objects.filter(
            id__in=ids, status=RecordResult.Status.CLAIMED, claimed_by=worker
        )
        .select_related("record")
        .order_by("id")
    )


class RunDelivery:
    """Deliver a run's pending records until none are left or time is up."""

    def __init__(self, run: Run, worker: str | None = None):
        self.run = run
        self.worker = worker or worker_id()
        self.destination: Destination = run.destination
        self.credential = self.destination.credential
        self.concurrency = settings.DELIVERY_CONCURRENCY
        self.stop_reason = ""
        self._stop = threading.Event()
        self._counts: Counter[str] = Counter()
        self._unlogged: Counter[str] = Counter()
        self._last_log = time.monotonic()
        self._last_error = ""
        self._last_flush = time.monotonic()
        self._limit = SharedRateLimit(self.credential.pk, self.credential.rate_limit)
        self.claim_size = claim_size(self.credential)

    # Entry point ---------------------------------------------------------

    def execute(self, deadline: float) -> bool:
        """Send until the run is finished or the deadline passes.

        Returns True when this worker has nothing more to do for the run,
        False when it stopped at the deadline with work left.
        """
        # A resumed run keeps the time it first started.
        Run.objects.filter(pk=self.run.pk, status=Run.Status.QUEUED).update(
            status=Run.Status.RUNNING,
            started_at=Coalesce(F("started_at"), Value(timezone.now())),
            heartbeat_at=timezone.now(),
        )
        release_stale_claims(self.run)
        try:
            api_key = self.credential.get_api_key()
        except DecryptionError as exc:
            pause_destination(self.destination, str(exc))
            return True
        client = PxClient(
            self.credential.base_url,
            api_key,
            timeout=settings.PX_REQUEST_TIMEOUT,
            pool_size=self.concurrency,
        )
        try:
            with ThreadPoolExecutor(self.concurrency, thread_name_prefix="px") as pool:
                return self._pump(pool, client, deadline)
        finally:
            self._flush(force=True)
            client.close()

    def _destination_active(self) -> bool:
        destination = Destination.objects.get(pk=self.destination.pk)
        self.destination = destination
        if destination.status != Destination.Status.ACTIVE:
            Run.objects.filter(pk=self.run.pk, status__in=Run.ACTIVE_STATUSES).update(
                status=Run.Status.PAUSED
            )
            return False
        return True

    # Claiming and sending -------------------------------------------------

    def _pump(
        self, pool: ThreadPoolExecutor, client: PxClient, deadline: float
    ) -> bool:
        """Keep requests in flight until no record is pending or time is up.

        The next chunk is claimed and planned while the last requests of the
        one before are still in flight, so the threads never wait for the
        database between chunks. Returns True when this worker is done with
        the run, False when the deadline stopped it with work left.
        """
        if not self._destination_active():
            return True
        by_record: dict[int, RecordResult] = {}
        queue: list[tuple[DeliveryPlan, PlannedRequest]] = []
        pending: set[Future[Delivered]] = set()
        exhausted = False
        restart = False
        last_check = time.monotonic()
        while True:
            may_claim = (
                not (exhausted or self._stop.is_set()) and time.monotonic() < deadline
            )
            if not queue and may_claim:
                chunk = claim(self.run, self.worker, self.claim_size)
                if chunk:
                    by_record.update((result.record_id, result) for result in chunk)
                    queue = self._plan_chunk(chunk, by_record)
                else:
                    exhausted = True
            while queue and len(pending) < self.concurrency and not self._stop.is_set():
                plan, request = queue.pop()
                pending.add(pool.submit(self._send, client, plan, request))
            if not pending:
                if self._stop.is_set() or not (queue or may_claim):
                    break
                continue
            done, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            self._record([future.result() for future in done], by_record)
            self._flush()
            if (
                self._stop.is_set()
                or time.monotonic() - last_check < CHECK_INTERVAL_SECONDS
            ):
                continue
            last_check = time.monotonic()
            status, updated = (
                Destination.objects.filter(pk=self.destination.pk)
                .values_list("status", "updated")
                .get()
            )
            if status != Destination.Status.ACTIVE:
                logger.info(
                    "Run %s of destination %s: the destination is %s; stopping after the requests in flight",
                    self.run.pk,
                    self.destination.pk,
                    status,
                )
                self.stop_reason = "paused"
                self._stop.set()
            elif self._credential_changed():
                # A replaced key or region needs a new client: end this slice
                # after the requests in flight, and the next one starts with it.
                logger.info(
                    "Run %s of destination %s: credential %s changed; continuing with it",
                    self.run.pk,
                    self.destination.pk,
                    self.credential.pk,
                )
                restart = True
                break
            elif updated != self.destination.updated:
                # The settings were edited: requests not yet sent are built
                # again with the new ones; those already sent stay as they were.
                unsent = [
                    by_record[key] for _, request in queue for key in request.keys
                ]
                self.destination.refresh_from_db()
                queue = self._plan_chunk(unsent, by_record) if unsent else []
        if restart:
            self._record([future.result() for future in pending], by_record)
            pending = set()
        self._release([by_record[key] for _, request in queue for key in request.keys])
        if restart:
            return False
        if self._stop.is_set():
            return True
        if exhausted:
            self._flush(force=True)
            finish_run_if_done(self.run.pk)
            return True
        return False

    def _credential_changed(self) -> bool:
        current = (
            Credential.objects.filter(pk=self.credential.pk)
            .values_list("encrypted_key", "region", "rate_limit")
            .first()
        )
        seen = (
            self.credential.encrypted_key,
            self.credential.region,
            self.credential.rate_limit,
        )
        return current != seen

    def _plan_chunk(
        self, claimed: list[RecordResult], by_record: dict[int, RecordResult]
    ) -> list[tuple[DeliveryPlan, PlannedRequest]]:
        """Plan the claimed records; return (plan, request) pairs, last first."""
        plan = self._current_plan(claimed)
        if plan is None:
            return []
        items = [(result.record_id, result.record.data) for result in claimed]
        return [(plan, request) for request in self._prepare(plan, items, by_record)]

    def _current_plan(self, claimed: list[RecordResult]) -> DeliveryPlan | None:
        """Build the plan from the destination's settings, or pause it if they are invalid."""
        try:
            return DeliveryPlan.for_destination(self.destination)
        except ManualConfigError as exc:
            self._release(claimed)
            pause_destination(self.destination, f"invalid configuration: {exc}")
            self._stop.set()
            return None

    def _prepare(
        self,
        plan: DeliveryPlan,
        items: list[tuple[int, Any]],
        by_record: dict[Any, RecordResult],
    ) -> list[PlannedRequest]:
        """Plan requests for the items, failing records that cannot be sent.

        Returns the requests in reverse order, so that pop() takes the first.
        """
        planned, rejected = plan.plan(items)
        for rejection in rejected:
            self._finish(
                by_record[rejection.key], RecordResult.Status.FAILED, rejection.reason
            )
        if plan.skip_unchanged:
            planned = self._drop_unchanged(planned, by_record)
        planned.reverse()
        return planned

    def _drop_unchanged(
        self, planned: list[PlannedRequest], by_record: dict[Any, RecordResult]
    ) -> list[PlannedRequest]:
        keys = [request.object_key for request in planned if request.object_key]
        known = dict(
            DeliveredContent.objects.filter(
                destination=self.destination, key__in=keys
            ).values_list("key", "digest")
        )
        kept = []
        for request in planned:
            if request.object_key and known.get(request.object_key) == request.digest:
                for key in request.keys:
                    self._finish(by_record[key], RecordResult.Status.SKIPPED, "")
            else:
                kept.append(request)
        return kept

    # Sending (worker threads) ---------------------------------------------

    def _send(
        self, client: PxClient, plan: DeliveryPlan, request: PlannedRequest
    ) -> Delivered:
        delivered = Delivered(plan=plan)
        self._send_into(client, plan, request, delivered)
        return delivered

    def _send_into(
        self,
        client: PxClient,
        plan: DeliveryPlan,
        request: PlannedRequest,
        delivered: Delivered,
    ) -> None:
        attempt = 0
        while True:
            attempt += 1
            outcome, message, response = self._attempt(client, request, delivered)
            if (
                outcome == flows.RETRY
                and attempt < settings.DELIVERY_MAX_ATTEMPTS
                and not self._stop.is_set()
            ):
                delivered.retried += 1
                time.sleep(backoff_seconds(attempt, response))
                continue
            break
        if outcome == flows.AUTH:
            delivered.auth_error = message
            self._stop.set()
            delivered.outcomes.append(
                (request.keys, "auth", message, request, response)
            )
            return
        if outcome == flows.FAIL and len(request.items) > 1:
            self._split_rejected_batch(client, plan, request, response, delivered)
            return
        if outcome == flows.RETRY:
            message = f"gave up after {attempt} attempts: {message}"
        status = "succeeded" if outcome == flows.OK else "failed"
        delivered.outcomes.append((request.keys, status, message, request, response))

    def _split_rejected_batch(
        self,
        client: PxClient,
        plan: DeliveryPlan,
        request: PlannedRequest,
        response: PxResponse | None,
        delivered: Delivered,
    ) -> None:
        """Find the records of a rejected batch that PX really refuses.

        A response listing the failing elements ({"index", "message"} items)
        fails those and sends the rest again as one batch, which assumes the
        batch was rejected as a whole. Any other rejection is split in halves,
        each sent on its own, down to single records.
        """
        errors = batch_errors(response, len(request.items))
        if errors:
            rest = []
            for index, item in enumerate(request.items):
                if index in errors:
                    message = f"rejected in a batch: {errors[index]}"
                    delivered.outcomes.append(
                        ([item[0]], "failed", message, request, response)
                    )
                else:
                    rest.append(item)
            if rest:
                self._send_into(
                    client, plan, plan.request_for(rest, batch=True), delivered
                )
            return
        middle = len(request.items) // 2
        for half in (request.items[:middle], request.items[middle:]):
            self._send_into(client, plan, plan.request_for(half, batch=True), delivered)

    def _attempt(
        self, client: PxClient, request: PlannedRequest, delivered: Delivered
    ) -> tuple[str, str, PxResponse | None]:
        try:
            if request.template:
                result = flows.run_flow(
                    self._throttled(client, delivered), request.template, request.body
                )
                for attempt in result.attempts:
                    sent = replace(
                        request, method=attempt.method, url=client.url(attempt.path)
                    )
                    delivered.exchanges.append((sent, attempt.response))
                return result.outcome, result.message, result.last_response
            self._limit.acquire()
            delivered.requests += 1
            response = client.request(
                request.method,
                request.url,
                data=request.body,
                content_type=request.content_type,
                headers=request.headers,
            )
            self._observe(response, delivered)
            delivered.exchanges.append((request, response))
            outcome = flows.classify(response)
            message = "" if response.ok else response.error_message()
            if outcome == flows.AUTH:
                message = f"authentication failed: {message}"
            return outcome, message, response
        except PxTransportError as exc:
            return flows.RETRY, str(exc), None

    def _throttled(self, client: PxClient, delivered: Delivered) -> Any:
        engine = self

        class Throttled:
            def request(self, method: str, path: str, **kwargs: Any) -> PxResponse:
                engine._limit.acquire()
                delivered.requests += 1
                response = client.request(method, path, **kwargs)
                engine._observe(response, delivered)
                return response

        return Throttled()

    def _observe(self, response: PxResponse, delivered: Delivered) -> None:
        if response.status == 429:
            delivered.throttled += 1
            self._limit.penalize(response.retry_after)

    # Writing results (main thread) ------------------------------------------

    def _record(
        self, batch: list[Delivered], by_record: dict[Any, RecordResult]
    ) -> None:
        """Write the outcomes of finished requests, in as few queries as possible."""
        rows = []
        delivered_keys: dict[str, str] = {}
        exchanges = []
        for delivered in batch:
            self._counts["requests"] += delivered.requests
            self._counts["retried"] += delivered.retried
            self._counts["throttled"] += delivered.throttled
            exchanges.extend(delivered.exchanges)
            for keys, status, message, request, response in delivered.outcomes:
                results = [by_record[key] for key in keys]
                if status == "auth":
                    self._release(results)
                    pause_destination(self.destination, message)
                    continue
                rows.append((results, status, message, request, response))
                skip_unchanged = (
                    delivered.plan is not None and delivered.plan.skip_unchanged
                )
                if status == "succeeded" and skip_unchanged and request.object_key:
                    delivered_keys[request.object_key] = request.digest
        self._write_outcomes(rows)
        if delivered_keys:
            DeliveredContent.objects.bulk_create(
                [
                    DeliveredContent(
                        destination=self.destination, key=key, digest=digest
                    )
                    for key, digest in delivered_keys.items()
                ],
                update_conflicts=True,
                unique_fields=["destination", "key"],
                update_fields=["digest"],
            )
        if self.destination.config.get("response_webhook") and exchanges:
            from destinations.responses import store_responses

            store_responses(self.destination, self.run, exchanges)

    def _write_outcomes(
        self,
        rows: list[
            tuple[list[RecordResult], str, str, PlannedRequest, PxResponse | None]
        ],
    ) -> None:
        if not rows:
            return
        now = timezone.now()
        with transaction.atomic():
            # Only this worker's claims may be finished: a claim released as
            # stale and taken by another worker belongs to that worker now.
            mine = set(
                RecordResult.objects.select_for_update()
                .filter(
                    pk__in=[result.pk for results, *_ in rows for result in results],
                    status=RecordResult.Status.CLAIMED,
                    claimed_by=self.worker,
                )
                .values_list("pk", flat=True)
            )
            changed = []
            for results, status, error, request, response in rows:
                for result in results:
                    if result.pk not in mine:
                        continue
                    _apply_outcome(result, status, error, request, response, now)
                    changed.append(result)
                    self._counts[status] += 1
                if status == RecordResult.Status.FAILED and error:
                    self._last_error = error
            RecordResult.objects.bulk_update(changed, OUTCOME_FIELDS, batch_size=500)

    def _finish(self, result: RecordResult, status: str, error: str) -> None:
        self._finish_many([result], status, error, None, None)

    def _finish_many(
        self,
        results: list[RecordResult],
        status: str,
        error: str,
        request: PlannedRequest | None,
        response: PxResponse | None,
    ) -> None:
        values: dict[str, Any] = {
            "status": status,
            "error": error,
            "finished_at": timezone.now(),
            "attempts": F("attempts") + 1,
        }
        if request is not None:
            values["request"] = {
                "method": request.method,
                "url": request.url,
                "body": request.body.decode("utf-8", errors="replace")[
                    :RESPONSE_BODY_LIMIT
                ],
            }
        if response is not None:
            values["response_status"] = response.status
            values["response_body"] = response.text[:RESPONSE_BODY_LIMIT]
        # Only this worker's claim may be finished: a claim released as stale
        # and taken by another worker belongs to that worker now.
        RecordResult.objects.filter(
            pk__in=[result.pk for result in results],
            status=RecordResult.Status.CLAIMED,
            claimed_by=self.worker,
        ).update(**values)
        self._counts[status] += len(results)
        if request is None and status == RecordResult.Status.FAILED:
            # Failed before any request: counted as failed, not as sent.
            self._counts["unsent"] += len(results)
        if status == RecordResult.Status.FAILED and error:
            self._last_error = error

    def _release(self, results: list[RecordResult]) -> None:
        if not results:
            return
        RecordResult.objects.filter(
            pk__in=[result.pk for result in results],
            status=RecordResult.Status.CLAIMED,
            claimed_by=self.worker,
        ).update(status=RecordResult.Status.PENDING, claimed_by="", claimed_at=None)

    def _flush(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_flush < 0.5:
            return
        self._last_flush = now
        counts = self._counts
        self._counts = Counter()
        values: dict[str, Any] = {"heartbeat_at": timezone.now()}
        for name in (
            "succeeded",
            "failed",
            "skipped",
            "retried",
            "requests",
            "throttled",
        ):
            if counts[name]:
                values[name] = F(name) + counts[name]
        sent = counts["succeeded"] + counts["failed"] - counts["unsent"]
        if sent:
            values["sent"] = F("sent") + sent
        if self._last_error:
            values["last_error"] = self._last_error[:500]
            self._last_error = ""
        Run.objects.filter(pk=self.run.pk).update(**values)
        self._log_progress(counts, now, force)
        # Keep the claims of this worker fresh so they are not taken as stale.
        RecordResult.objects.filter(
            run=self.run, status=RecordResult.Status.CLAIMED, claimed_by=self.worker
        ).update(claimed_at=timezone.now())

    def _log_progress(self, counts: Counter[str], now: float, force: bool) -> None:
        """Log this worker's progress on the run every LOG_EVERY_SECONDS at most."""
        self._unlogged.update(counts)
        if not force and now - self._last_log < LOG_EVERY_SECONDS:
            return
        self._last_log = now
        done = self._unlogged
        self._unlogged = Counter()
        if not +done:
            return
        logger.info(
            "Run %s of destination %s: %s succeeded, %s failed, %s skipped, "
            "%s retries, %s answered 429, %s requests",
            self.run.pk,
            self.destination.pk,
            done["succeeded"],
            done["failed"],
            done["skipped"],
            done["retried"],
            done["throttled"],
            done["requests"],
        )


OUTCOME_FIELDS = [
    "status",
    "error",
    "finished_at",
    "attempts",
    "request",
    "response_status",
    "response_body",
]


def _apply_outcome(
    result: RecordResult,
    status: str,
    error: str,
    request: PlannedRequest | None,
    response: PxResponse | None,
    now: Any,
) -> None:
    result.status = status
    result.error = error
    result.finished_at = now
    result.attempts += 1
    if request is not None:
        result.request = {
            "method": request.method,
            "url": request.url,
            "body": request.body.decode("utf-8", errors="replace")[
                :RESPONSE_BODY_LIMIT
            ],
        }
    if response is not None:
        result.response_status = response.status
        result.response_body = response.text[:RESPONSE_BODY_LIMIT]


def batch_errors(response: PxResponse | None, size: int) -> dict[int, str]:
    """Read a list of {"index", "message"} from a batch's error response."""
    body = response.json() if response is not None else None
    if not isinstance(body, list):
        return {}
    errors = {}
    for item in body:
        if (
            isinstance(item, dict)
            and isinstance(item.get("index"), int)
            and 0 <= item["index"] < size
        ):
            errors[item["index"]] = str(item.get("message") or "rejected")
    return errors


def backoff_seconds(attempt: int, response: PxResponse | None) -> float:
    """Exponential backoff with full jitter, or the delay a Retry-After header sets."""
    if response is not None and response.retry_after is not None:
        return min(settings.DELIVERY_MAX_BACKOFF_SECONDS, response.retry_after)
    ceiling = min(settings.DELIVERY_MAX_BACKOFF_SECONDS, 0.5 * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def pause_destination(destination: Destination, reason: str) -> None:
    logger.warning("Pausing destination %s: %s", destination.pk, reason)
    Destination.objects.filter(pk=destination.pk).update(
        status=Destination.Status.PAUSED,
        status_reason=reason[:500],
        last_error=reason[:500],
    )
    Run.objects.filter(destination=destination, status__in=Run.ACTIVE_STATUSES).update(
        status=Run.Status.PAUSED, last_error=reason[:500]
    )


def finish_run_if_done(run_id: int) -> bool:
    """Close the run when no record is pending or claimed; return True if closed."""
    counts = dict(
        RecordResult.objects.filter(run_id=run_id)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    if counts.get(RecordResult.Status.PENDING) or counts.get(
        RecordResult.Status.CLAIMED
    ):
        return False
    succeeded = counts.get(RecordResult.Status.SUCCEEDED, 0)
    failed = counts.get(RecordResult.Status.FAILED, 0)
    skipped = counts.get(RecordResult.Status.SKIPPED, 0)
    if failed == 0:
        status = Run.Status.SUCCEEDED
    elif succeeded or skipped:
        status = Run.Status.PARTIAL
    else:
        status = Run.Status.FAILED
    closed = Run.objects.filter(pk=run_id, status__in=Run.ACTIVE_STATUSES).update(
        status=status,
        finished_at=timezone.now(),
        heartbeat_at=timezone.now(),
        succeeded=succeeded,
        failed=failed,
        skipped=skipped,
        sent=RecordResult.objects.filter(run_id=run_id, request__isnull=False).count(),
    )
    if closed:
        run = Run.objects.select_related("destination").get(pk=run_id)
        logger.info(
            "Run %s of destination %s finished: %s succeeded, %s failed, %s skipped",
            run_id,
            run.destination_id,
            succeeded,
            failed,
            skipped,
        )
        error = run.last_error if failed else ""
        Destination.objects.filter(pk=run.destination_id).update(last_error=error)
    return bool(closed)
