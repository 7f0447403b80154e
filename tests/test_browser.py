"""The main user walk in Chromium, against the live server and a real worker.

Screenshots of each step go to var/screenshots/ under the repository root.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from destinations.models import Destination, Run
from teams.models import Team
from tests.browser import chromium_context, screenshot
from tests.conftest import USERS_CSV, make_user, purge_queue, sandbox_users
from tests.services import SANDBOX, SANDBOX_KEY

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery"
PRODUCT_KEY = "AP-BROWSER-2"
STEP_TIMEOUT_MS = 15_000


def test_upload_to_delivery_walk(
    live_server: Any, team: Team, start_worker: Callable[..., Any], tmp_path: Path
) -> None:
    purge_queue()
    start_worker()
    make_user(team, "alice")
    users_csv = tmp_path / "users.csv"
    users_csv.write_bytes(USERS_CSV.encode())

    # Playwright's sync API runs an event loop in this thread, and Django raises
    # SynchronousOnlyOperation for ORM calls while one runs, so the test reads
    # the database only before and after the browser steps.
    with chromium_context(tmp_path / "chromium-profile") as context:
        context.set_default_timeout(STEP_TIMEOUT_MS)
        page = context.new_page()
        console_errors = walk(page, live_server.url, users_csv)

    assert console_errors == []
    destination = Destination.objects.get()
    assert destination.config["product_key"] == PRODUCT_KEY
    assert destination.status == Destination.Status.ACTIVE
    run = Run.objects.get()
    assert run.status == Run.Status.SUCCEEDED
    assert run.succeeded == 2
    assert set(sandbox_users()) == {"tinylion155", "tinyfrog185"}


def walk(page: Page, base: str, users_csv: Path) -> list[str]:
    """Walk from login to a finished run and return the console errors of the pages."""
    console_errors: list[str] = []

    def keep_error(message: ConsoleMessage) -> None:
        # NOTE: the pages link no icon, so Chromium's own /favicon.ico request
        # gets a 404, which is not counted.
        url = message.location.get("url", "")
        if message.type == "error" and not url.endswith("/favicon.ico"):
            console_errors.append(f"{message.text} ({url})")

    page.on("console", keep_error)

    # Every page redirects to the login form first.
    page.goto(base + "/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Log in')")
    expect(page.locator("h1")).to_have_text("Overview")

    # Upload the users file and see its schema.
    page.click("a:has-text('Upload a Nexset')")
    page.set_input_files("#id_file", str(users_csv))
    page.fill("#id_name", "Users")
    page.click("button:has-text('Upload')")
    expect(page.locator(".messages")).to_contain_text("Stored 2 records from users.csv.")
    schema = page.locator("#schema tbody tr")
    expect(schema).to_have_count(9)
    expect(schema.nth(0)).to_contain_text("User ID")
    expect(schema.nth(5)).to_contain_text("Sign-Up Date")
    expect(page.locator("#samples tbody tr")).to_have_count(2)
    nexset_url = page.url
    screenshot(page, "nexset-schema")

    # Add a credential for the sandbox and test it in place.
    page.click("nav a:has-text('Credentials')")
    page.click("a:has-text('Add a credential')")
    page.fill("#id_name", "Sandbox key")
    page.select_option("#id_region", "SANDBOX")
    page.fill("#id_api_key", SANDBOX_KEY)
    page.click("button:has-text('Save and test')")
    expect(page.locator("h1")).to_have_text("Sandbox key")
    detail_url = page.url
    with page.expect_response(re.compile(r"/credentials/\d+/test/$")) as tested:
        page.click("button:has-text('Test credential')")
    assert tested.value.status == 200
    expect(page.locator("#credential-status .badge")).to_have_text("Valid")
    expect(page.locator("#credential-status")).to_contain_text("Valid: subscription 'PX Sandbox'.")
    # The status was swapped in by HTMX, so the page itself stayed.
    assert page.url == detail_url
    expect(page.locator(".card")).not_to_contain_text(SANDBOX_KEY)
    expect(page.locator(".card")).to_contain_text("••••-key")
    screenshot(page, "credential-valid")

    # From the Nexset to a configured destination.
    page.goto(nexset_url)
    page.click("a:has-text('Send to Destination')")
    page.select_option("#id_credential", label="Sandbox key")
    page.select_option("#id_template", "upsert_user")
    page.click("button:has-text('Next: configure')")
    expect(page.locator("#id_template")).to_have_value("upsert_user")
    with page.expect_response(re.compile(r"/destinations/\d+/preview/$")):
        page.fill("#id_product_key", PRODUCT_KEY)
    panel = page.locator("#sample-panel")
    expect(panel.locator(".sample").first).to_contain_text("PUT")
    expect(panel.locator(".sample").first).to_contain_text(SANDBOX.url + "/v1/users/update")
    expect(panel).to_contain_text("1606669523000")
    expect(panel).to_contain_text(f'"propertyKeys":["{PRODUCT_KEY}"]')
    expect(panel.locator("#panel-error")).to_have_count(0)
    screenshot(page, "destination-configure")
    page.click("#done")
    expect(page.locator(".messages")).to_contain_text("Saved Users to Gainsight PX.")

    # Activate and watch the run finish without reloading the page.
    page.click("#activate")
    expect(page.locator(".messages")).to_contain_text("sends 2 new records")
    page.evaluate("window.loadedBeforeDelivery = true")
    expect(page.locator("#run-succeeded")).to_have_text("2", timeout=30_000)
    expect(page.locator("#run-status")).to_have_text("Succeeded")
    expect(page.locator("#run-failed")).to_have_text("0")
    assert page.evaluate("window.loadedBeforeDelivery") is True
    screenshot(page, "destination-run")
    return console_errors
