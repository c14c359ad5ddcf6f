"""The browser fixtures every browser test shares (a pytest plugin: one chromium per session).

Debian's chromium, driven by Playwright with ``executable_path`` (never a downloaded browser),
against the Procfile's gunicorn. Every page a test opens is checked for Content-Security-Policy
violations and script errors; screenshots land in ``test-output/screenshots``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.conftest import AUTH, TOKEN

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("OFFLOAD_TEST_OUTPUT", "test-output")) / "screenshots"
# Headless, offline and quiet: nothing leaves the machine during a test.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
    "--metrics-recording-only",
]

# Answers the tests provoke on purpose (a wrong token, a form with errors); the browser logs them.
EXPECTED_STATUSES = (401, 422)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no chromium at {CHROMIUM}: `make test` installs Debian's package (or set CHROMIUM=/path)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, web_server: str) -> Iterator[Page]:
    context = browser.new_context(base_url=web_server, viewport={"width": 1200, "height": 860})
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        expected = any(f"status of {code} " in message.text for code in EXPECTED_STATUSES)
        if message.type == "error" and not expected:
            problems.append(f"{message.text} at {message.location['url']}")

    opened.on("console", on_console)
    opened.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    yield opened
    context.close()
    assert problems == [], f"the pages logged errors (a CSP violation shows up here too): {problems}"


@pytest.fixture
def api(web_server: str) -> Callable[..., dict]:
    def call(method: str, path: str, **kwargs: object) -> dict:
        response = requests.request(method, f"{web_server}{path}", headers=AUTH, timeout=10, **kwargs)
        response.raise_for_status()
        return response.json()

    return call


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def log_in(page: Page, next_path: str = "/") -> None:
    page.goto(f"/login?next={next_path}")
    page.get_by_label("API token or admin password").fill(TOKEN)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{next_path}")
