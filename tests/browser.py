"""Chromium through Playwright for the browser tests.

Chromium is the system build at /usr/bin/chromium, so `playwright install`,
which downloads browsers, is not needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
# Headless, with Chromium's own background traffic (updates, sync, QUIC) off.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT_DIR = Path(__file__).resolve().parent.parent / "var" / "screenshots"


@contextmanager
def chromium_context(profile_dir: Path) -> Iterator[BrowserContext]:
    """Start Chromium with an empty profile in profile_dir and close it afterwards.

    Playwright rejects --user-data-dir among the arguments of
    `chromium.launch`, so the profile is given to `launch_persistent_context`,
    which passes it to Chromium as --user-data-dir.
    """
    profile_dir.mkdir(parents=True, exist_ok=False)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile_dir),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            yield context
        finally:
            context.close()


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as var/screenshots/<name>.png and return its path."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
