"""A manual destination built in Chromium, from settings to its response Nexset."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from destinations.models import Destination, Run
from nexsets.models import Nexset
from teams.models import Team
from tests.browser import chromium_context, screenshot
from tests.conftest import make_user, purge_queue, sandbox_requests
from tests.services import SANDBOX

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery"
STEP_TIMEOUT_MS = 15_000
EVENTS_CSV = (
    "team,identifyId,eventName,propertyKey,userType,Email\n"
    "red,u1,Login,AP-TEST-2,USER,u1@example.com\n"
    "blue,u2,Login,AP-TEST-2,USER,u2@example.com\n"
    "red,u3,Export,AP-TEST-2,USER,u3@example.com\n"
)


def test_manual_destination_walk(
    live_server: Any,
    team: Team,
    credential: Any,
    make_nexset: Callable[..., Nexset],
    start_worker: Callable[..., Any],
    tmp_path: Path,
) -> None:
    purge_queue()
    start_worker()
    SANDBOX.state.configure({"batch_events": True})
    make_user(team, "alice")
    nexset = make_nexset(EVENTS_CSV, name="Events")

    with chromium_context(tmp_path / "chromium-profile") as context:
        context.set_default_timeout(STEP_TIMEOUT_MS)
        page = context.new_page()
        console_errors = walk(page, live_server.url, nexset.pk)

    assert console_errors == []
    destination = Destination.objects.get()
    run = destination.runs.get()
    batches = {
        entry["query"]: entry["body"]
        for entry in sandbox_requests("/v1/events/custom")
        if isinstance(entry["body"], list)
    }
    assert destination.config["headers"] == "X-Source:warehouse,X-Trace:a:b"
    assert destination.config["excluded"] == ["Email", "team"]
    assert run.status == Run.Status.SUCCEEDED
    assert sorted(batches) == ["team=blue", "team=red"]
    assert [event["identifyId"] for event in batches["team=red"]] == ["u1", "u3"]
    assert all("Email" not in event and "team" not in event for event in batches["team=red"])
    assert destination.response_nexset.record_count >= 2


def wait_settled(page: Page) -> None:
    """Wait until HTMX has swapped and processed its last response.

    A control swapped in becomes live only once HTMX has processed it; a
    change made before that sends nothing.
    """
    page.wait_for_function(
        "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')"
    )
    page.wait_for_timeout(50)


def walk(page: Page, base: str, nexset_id: int) -> list[str]:
    console_errors: list[str] = []

    def keep_error(message: ConsoleMessage) -> None:
        if message.type == "error":
            console_errors.append(f"{message.text} ({message.location.get('url', '')})")

    page.on("console", keep_error)
    page.goto(base + "/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Log in')")

    # Send the Nexset to a manual destination.
    page.goto(f"{base}/nexsets/{nexset_id}/")
    page.click("a:has-text('Send to Destination')")
    page.fill("#id_name", "Events by team")
    page.check("input[name=mode][value=manual]")
    page.click("button:has-text('Next: configure')")
    expect(page.locator("#manual-settings")).to_be_visible()

    # URL with a macro, headers with a colon in a value.
    with page.expect_response(re.compile(r"/preview/$")):
        page.fill("#id_url", "/v1/events/custom?team={team}")
    with page.expect_response(re.compile(r"/preview/$")):
        page.fill("#id_headers", "X-Source:warehouse,X-Trace:a:b")
    panel = page.locator("#sample-panel")
    expect(panel).to_contain_text("X-Trace: a:b")

    # Two exclusion chips, then batching grouped by the excluded team. Each of
    # these re-renders the form, so wait for its response before the next step.
    rerender = re.compile(r"/configure/$")
    with page.expect_response(rerender):
        page.select_option("#id_exclude_add", "Email")
    expect(page.locator("#exclusions .chip")).to_have_count(1)
    wait_settled(page)
    with page.expect_response(rerender):
        page.select_option("#id_exclude_add", "team")
    expect(page.locator("#exclusions .chip")).to_have_count(2)
    wait_settled(page)
    with page.expect_response(rerender):
        page.check("#id_batching_enabled")
    expect(page.locator("#id_algorithm")).to_be_visible()
    wait_settled(page)
    with page.expect_response(rerender):
        page.select_option("#id_algorithm", "attribute")
    expect(page.locator("#id_group_attribute")).to_be_visible()
    wait_settled(page)
    with page.expect_response(rerender):
        page.select_option("#id_group_attribute", "team")
    expect(page.locator("#batching-error")).to_have_count(0)
    wait_settled(page)
    with page.expect_response(re.compile(r"/preview/$")):
        page.check("#id_response_webhook")
    first = panel.locator(".sample").first
    expect(first).to_contain_text(SANDBOX.url + "/v1/events/custom?team=red")
    expect(first.locator("pre.sample-body")).to_contain_text('"identifyId":"u1"')
    expect(first.locator("pre.sample-body")).to_contain_text('"identifyId":"u3"')
    expect(first.locator("pre.sample-body")).not_to_contain_text("u1@example.com")

    # Edit the sample and send it once.
    sample = [{"identifyId": "test-1", "eventName": "Test", "propertyKey": "AP-TEST-2", "userType": "USER", "team": "red"}]
    page.fill("#id_sample", json.dumps(sample))
    with page.expect_response(re.compile(r"/test/$")):
        page.click("#send-test")
    expect(page.locator("#test-result")).to_contain_text("HTTP 201")
    screenshot(page, "configure-manual-batching")

    # Save, activate, and wait for the run without a reload.
    page.click("#done")
    expect(page.locator(".messages")).to_contain_text("Saved Events by team.")
    page.click("#activate")
    expect(page.locator("#run-status")).to_have_text("Succeeded", timeout=30_000)
    expect(page.locator("#run-succeeded")).to_have_text("3")
    screenshot(page, "manual-run")

    # The response Nexset contains the responses and can be opened like any other.
    page.reload()
    page.click("a:has-text('Events by team responses')")
    expect(page.locator("h1")).to_have_text("Events by team responses")
    expect(page.locator("#samples tbody tr").first).to_contain_text('"status": 201')
    screenshot(page, "response-nexset")
    return console_errors
