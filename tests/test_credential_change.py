"""A credential edited while its destination delivers."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from credentials.models import Credential
from destinations import runs
from destinations.engine import RunDelivery
from destinations.models import Destination, Run
from tests.conftest import sandbox_requests, template_destination

pytestmark = pytest.mark.django_db(transaction=True)


def test_replaced_key_reaches_running_delivery(make_nexset, credential, sandbox, settings):
    settings.DELIVERY_CONCURRENCY = 2
    sandbox.state.configure({"latency_ms": 50})
    nexset = make_nexset("User ID,Event Name\n" + "".join(f"u{i},Login\n" for i in range(80)))
    destination = template_destination(
        nexset, credential, template="track_event", status=Destination.Status.ACTIVE
    )
    settings.DELIVERY_TASKS_PER_RUN = 0  # nothing queued: this test delivers in process
    run = runs.create_run(destination)

    def replace_key_soon() -> None:
        time.sleep(0.6)
        changed = Credential.objects.get(pk=credential.pk)
        changed.set_api_key("a-key-px-rejects")
        changed.save()
        connection.close()

    editor = threading.Thread(target=replace_key_soon)
    editor.start()
    finished = RunDelivery(run).execute(time.monotonic() + 60)
    editor.join()
    assert finished is False
    run.refresh_from_db()
    RunDelivery(Run.objects.get(pk=run.pk)).execute(time.monotonic() + 60)
    destination.refresh_from_db()
    keys = [entry["key_valid"] for entry in sandbox_requests("/v1/events/custom")]
    assert keys[0] is True
    assert keys[-1] is False
    # Once the new key is in use, the old one is never sent again.
    assert keys == sorted(keys, reverse=True)
    assert destination.status == Destination.Status.PAUSED
    assert destination.status_reason.startswith("authentication failed")
