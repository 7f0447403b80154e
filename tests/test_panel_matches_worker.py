"""The sample panel shows the bytes the delivery engine sends.

Each test renders the panel through the preview view, delivers the same
Nexset with destinations.engine.RunDelivery in process, and compares the
panel's bodies with the bodies the sandbox received.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest

from destinations.models import Destination
from px.flows import FLOWS
from tests.conftest import (
    EVENTS_CSV,
    USERS_CSV,
    deliver_in_process,
    manual_destination,
    sandbox_requests,
    template_destination,
)
from tests.test_configure import preview

pytestmark = pytest.mark.django_db

ACCOUNTS_CSV = (
    "Account ID,Account Name,Industry,Employees,Renewal Date\r\n"
    "acme/1,Acme Zürich,Manufacturing,250,2025-06-30\r\n"
    "globex,Globex,Energy,12000,1767225600000\r\n"
)
EVENTS_BY_TEAM_CSV = (
    "identifyId,eventName,propertyKey,userType,team,secret\r\n"
    "u-1,Résumé ✓,AP-TEST-2,USER,red,s1\r\n"
    "u-2,Search,AP-TEST-2,USER,blue,s2\r\n"
    "u-3,Search,AP-TEST-2,USER,red,s3\r\n"
    "u-4,Export,AP-TEST-2,USER,blue,s4\r\n"
    "u-5,Search,AP-TEST-2,USER,red,s5\r\n"
)
NEXSET_FOR_TEMPLATE = {
    "upsert_user": USERS_CSV,
    "update_user": USERS_CSV,
    "upsert_account": ACCOUNTS_CSV,
    "update_account": ACCOUNTS_CSV,
    "track_event": EVENTS_CSV,
}


def panel_bodies(client: Any, destination: Destination) -> list[str]:
    """Return the bodies the panel shows, as text, in panel order."""
    page = preview(client, destination).content.decode()
    return [
        html.unescape(body)
        for body in re.findall(r'<pre class="sample-body">(.*?)</pre>', page, re.DOTALL)
    ]


def panel_positions(client: Any, destination: Destination) -> list[str]:
    page = preview(client, destination).content.decode()
    return re.findall(r"· records? (#[^<]*)</span>", page)


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def received_bodies(method: str, path: str) -> list[Any]:
    return [entry["body"] for entry in sandbox_requests(path, method)]


def received_texts(method: str, path: str) -> list[str]:
    """Return the received bodies as compact JSON text, sorted."""
    return sorted(compact(body) for body in received_bodies(method, path))


@pytest.mark.parametrize("template", NEXSET_FOR_TEMPLATE)
def test_template_first_body_matches_worker(
    template, owner_client, make_nexset, credential, django_capture_on_commit_callbacks
):
    destination = template_destination(
        make_nexset(NEXSET_FOR_TEMPLATE[template]), credential, template=template
    )
    first_body = json.loads(panel_bodies(owner_client, destination)[0])
    deliver_in_process(destination, django_capture_on_commit_callbacks, activate=True)
    first_step = FLOWS[template].update
    assert first_body in received_bodies(first_step.method, first_step.path)


@pytest.mark.parametrize("template", NEXSET_FOR_TEMPLATE)
def test_template_all_bodies_match_worker(
    template, owner_client, make_nexset, credential, django_capture_on_commit_callbacks
):
    destination = template_destination(
        make_nexset(NEXSET_FOR_TEMPLATE[template]), credential, template=template
    )
    bodies = sorted(panel_bodies(owner_client, destination))
    deliver_in_process(destination, django_capture_on_commit_callbacks, activate=True)
    first_step = FLOWS[template].update
    assert received_texts(first_step.method, first_step.path) == bodies


@pytest.fixture
def batched_by_team(make_nexset: Any, credential: Any, sandbox: Any) -> Destination:
    sandbox.state.configure({"batch_events": True})
    return manual_destination(
        make_nexset(EVENTS_BY_TEAM_CSV, name="Events"),
        credential,
        method="POST",
        url="/v1/events/custom",
        headers="X-Source:warehouse",
        excluded=["secret"],
        batching={
            "enabled": True,
            "algorithm": "attribute",
            "batch_size": 2,
            "group_attribute": "team",
            "max_bytes": 1000000,
        },
    )


def test_manual_batch_first_body_matches_worker(
    owner_client, batched_by_team, django_capture_on_commit_callbacks
):
    first_body = panel_bodies(owner_client, batched_by_team)[0]
    deliver_in_process(
        batched_by_team, django_capture_on_commit_callbacks, activate=True
    )
    assert json.loads(first_body) in received_bodies("POST", "/v1/events/custom")


def test_manual_batch_first_bytes_match_worker(
    owner_client, batched_by_team, django_capture_on_commit_callbacks
):
    first_body = panel_bodies(owner_client, batched_by_team)[0]
    deliver_in_process(
        batched_by_team, django_capture_on_commit_callbacks, activate=True
    )
    assert first_body in received_texts("POST", "/v1/events/custom")


def test_manual_batch_all_bytes_match_worker(
    owner_client, batched_by_team, django_capture_on_commit_callbacks
):
    bodies = sorted(panel_bodies(owner_client, batched_by_team))
    deliver_in_process(
        batched_by_team, django_capture_on_commit_callbacks, activate=True
    )
    assert received_texts("POST", "/v1/events/custom") == bodies


def test_manual_batch_groups_by_team(owner_client, batched_by_team):
    assert panel_positions(owner_client, batched_by_team) == ["#1, #3", "#5", "#2, #4"]


def test_manual_batch_positions_follow_claim_windows(
    owner_client, batched_by_team, settings
):
    settings.DELIVERY_CLAIM_SIZE = 3
    settings.DELIVERY_CONCURRENCY = 1
    assert panel_positions(owner_client, batched_by_team) == [
        "#1, #3",
        "#2",
        "#4",
        "#5",
    ]


def test_manual_batch_excludes_attribute(owner_client, batched_by_team):
    first_batch = json.loads(panel_bodies(owner_client, batched_by_team)[0])
    assert [sorted(record) for record in first_batch] == [
        ["eventName", "identifyId", "propertyKey", "team", "userType"]
    ] * 2


def test_manual_batch_keeps_non_ascii(owner_client, batched_by_team):
    assert '"eventName":"Résumé ✓"' in panel_bodies(owner_client, batched_by_team)[0]


def test_manual_batch_follows_claim_windows(
    owner_client, batched_by_team, settings, django_capture_on_commit_callbacks
):
    # A worker batches within each claimed chunk, so with chunks of 3 records
    # records 1 and 5 (both "red") never share a request. A claim is at least
    # DELIVERY_CONCURRENCY records.
    settings.DELIVERY_CLAIM_SIZE = 3
    settings.DELIVERY_CONCURRENCY = 1
    bodies = sorted(panel_bodies(owner_client, batched_by_team))
    deliver_in_process(
        batched_by_team, django_capture_on_commit_callbacks, activate=True
    )
    assert received_texts("POST", "/v1/events/custom") == bodies
