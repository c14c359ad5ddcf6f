"""The pages in a real browser: Debian's chromium driven by Playwright, against gunicorn,
a real worker and the fixture's Redis.

Every page a test visits is checked for Content-Security-Policy violations and script
errors, and screenshots land in ``test-output/screenshots`` (``docs/`` holds current ones).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from subprocess import Popen

import requests
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.browsing import CHROMIUM, log_in, shot  # noqa: F401 - fixtures come from the plugin
from tests.conftest import AUTH, TOKEN
from tests.http_peers import Answer, HttpPeer


def test_strangers_are_refused_and_a_wrong_token_says_so(page: Page):
    page.goto("/jobs")
    assert page.url.endswith("/login?next=/jobs")
    page.goto("/rq/")
    assert page.url.endswith("/login?next=/rq/")
    page.get_by_label("API token or admin password").fill("not-a-token")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("neither an API token nor the admin password")
    shot(page, "login")
    page.get_by_label("API token or admin password").fill(TOKEN)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/rq/")
    expect(page.get_by_text("Queues").first).to_be_visible()  # rq-dashboard, behind the same session
    shot(page, "dashboard")


def test_a_form_shows_errors_beside_fields_then_a_job_runs_live_to_its_result(page: Page, worker: Popen[bytes]):
    log_in(page)
    expect(page.get_by_role("link", name="demo.sleep")).to_be_visible()
    shot(page, "tasks")

    page.goto("/tasks/mail.send")
    page.get_by_label("To").fill("ada@example.com\nnot-an-address")
    page.get_by_label("Subject").fill("Hello")
    page.get_by_label("Body").fill("A note")
    page.get_by_role("button", name="Run mail.send").click()
    error = page.locator("#error-to")
    expect(error).to_have_text("item 2: value is not a valid email address: An email address must have an @-sign.")
    expect(page.locator('[data-field="to"]')).to_contain_text("item 2")  # beside its own field
    expect(page.get_by_label("To")).to_have_attribute("aria-invalid", "true")
    shot(page, "task-form-errors")

    page.goto("/tasks/demo.sleep")
    page.get_by_label("Seconds", exact=True).fill("3")
    page.get_by_label("Steps", exact=True).fill("6")
    page.get_by_role("button", name="Run demo.sleep").click()
    page.wait_for_url("**/jobs/*")
    page.evaluate("window.offloadNoReload = true")
    page.wait_for_function("() => { const v = document.getElementById('progress').value; return v > 0 && v < 100 }")
    expect(page.locator("#status")).to_have_text("started")
    expect(page.locator("#progress-message")).to_contain_text("step")
    shot(page, "job-running")
    page.wait_for_function("() => document.getElementById('progress').value === 100", timeout=20_000)
    expect(page.locator("#status")).to_have_text("finished")
    expect(page.locator("#percent")).to_have_text("100%")
    expect(page.locator("#result")).to_contain_text('"slept"')
    expect(page.locator("#log li").first).to_be_visible()
    assert page.evaluate("window.offloadNoReload") is True  # it all arrived without a reload
    shot(page, "job-finished")


def test_progress_still_arrives_by_polling_without_event_streams(page: Page, worker: Popen[bytes], api):
    log_in(page)
    page.add_init_script("delete window.EventSource")
    job = api("POST", "/api/jobs", json={"task": "demo.sleep", "args": {"seconds": 1.5, "steps": 3}})
    page.goto(f"/jobs/{job['id']}")
    expect(page.locator("#live")).to_have_text("updating every second")
    expect(page.locator("#status")).to_have_text("finished", timeout=20_000)
    assert page.evaluate("document.getElementById('progress').value") == 100


def test_cancel_a_running_job(page: Page, worker: Popen[bytes], api):
    log_in(page)
    job = api("POST", "/api/jobs", json={"task": "demo.sleep", "args": {"seconds": 60, "steps": 60}})
    page.goto(f"/jobs/{job['id']}")
    expect(page.locator("#status")).to_have_text("started", timeout=20_000)
    expect(page.get_by_role("button", name="Retry")).to_be_disabled()
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#status")).to_have_text("stopped", timeout=20_000)
    expect(page.get_by_role("button", name="Cancel")).to_be_disabled()
    expect(page.get_by_role("button", name="Retry")).to_be_enabled()
    expect(page.locator("#stopped")).to_contain_text("Stopped on request")  # not an error
    expect(page.locator("#error-block")).to_be_hidden()
    assert api("GET", f"/api/jobs/{job['id']}")["status"] == "stopped"
    shot(page, "job-stopped")


def test_retry_a_failed_job_then_delete_it(page: Page, worker: Popen[bytes], api):
    log_in(page)
    job = api("POST", "/api/jobs", json={"task": "demo.fail", "args": {"message": "the printer is on fire"}})
    page.goto(f"/jobs/{job['id']}")
    expect(page.locator("#status")).to_have_text("failed", timeout=20_000)
    expect(page.locator("#error-type")).to_have_text("RuntimeError")
    expect(page.locator("#error-message")).to_have_text("the printer is on fire")
    page.get_by_text("Traceback", exact=True).click()
    expect(page.locator("#traceback")).to_contain_text("Traceback (most recent call last)")
    shot(page, "job-failed")
    for attempt in range(2, 7):  # a fast-failing retry, followed to its end each time without a reload
        page.get_by_role("button", name="Retry").click()
        expect(page.locator("#attempts")).to_have_text(str(attempt), timeout=20_000)
        expect(page.locator("#status")).to_have_text("failed", timeout=20_000)
        expect(page.get_by_role("button", name="Retry")).to_be_enabled()
    expect(page.locator("#log .attempt")).to_have_count(5)  # each attempt's lines under its own mark
    page.get_by_role("button", name="Delete").click()
    page.wait_for_url("**/jobs")
    response = requests.get(f"{page.url.rsplit('/jobs', 1)[0]}/api/jobs/{job['id']}", headers=AUTH, timeout=5)
    assert response.status_code == 404


def test_an_uploaded_image_comes_back_as_a_preview(page: Page, worker: Popen[bytes], tmp_path: Path):
    picture = tmp_path / "square.png"
    Image.new("RGB", (120, 80), "teal").save(picture)
    log_in(page)
    page.goto("/tasks/images.thumbnail")
    page.get_by_label("Image").set_input_files(str(picture))
    page.get_by_label("Sizes").fill("48")
    page.get_by_role("button", name="Run images.thumbnail").click()
    page.wait_for_url("**/jobs/*")
    preview = page.locator("img.preview")
    expect(preview).to_be_visible(timeout=20_000)
    page.wait_for_function("() => document.querySelector('img.preview').naturalWidth === 48")
    expect(page.get_by_role("link", name="Download thumbnail-48.png")).to_be_visible()
    shot(page, "job-image")


def test_history_filters_by_status_and_links_to_each_job(page: Page, api, start_worker):
    for task in ("demo.noop", "demo.noop", "demo.fail"):
        api("POST", "/api/jobs", json={"task": task})
    start_worker("--burst").wait(timeout=60)
    log_in(page, "/jobs")
    expect(page.locator(".counts")).to_contain_text("failed 1")
    page.get_by_label("Status", exact=True).select_option("failed")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#jobs tbody tr")).to_have_count(1)
    expect(page.locator("#jobs tbody tr")).to_contain_text("demo.fail")
    shot(page, "history")
    page.locator("#jobs tbody tr a").first.click()
    expect(page.locator("#status")).to_have_text("failed")


def test_forms_are_labelled_and_usable_from_the_keyboard(page: Page):
    log_in(page)
    page.goto("/tasks/webhooks.deliver")
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                 .filter((el) => el.labels.length === 0).map((el) => el.name)"""
    )
    assert unlabelled == []
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('main') !== null")
    shot(page, "task-form")


def test_every_forms_patterns_work_in_the_browser_and_all_errors_come_at_once(page: Page, api):
    log_in(page)
    for task in api("GET", "/api/tasks")["tasks"]:
        page.goto(f"/tasks/{task['name']}")
        refused = page.evaluate(
            """() => [...document.querySelectorAll('[pattern]')].filter((el) => {
                 try { new RegExp(el.pattern, 'v'); return false; } catch (error) { return true; } })
                 .map((el) => el.name)"""
        )
        assert refused == [], task["name"]  # a pattern the browser cannot compile checks nothing
    page.goto("/tasks/webhooks.deliver")
    page.get_by_label("URL").fill("http://127.0.0.1:9/hook")
    page.get_by_label("Payload").fill("{not json")
    page.get_by_label("Headers").fill("[1]")  # valid JSON, not the object the schema wants
    page.get_by_role("button", name="Run").click()
    summary = page.locator("#form-message")
    summary.wait_for()
    assert page.evaluate("document.activeElement.id") == "form-message"  # focus moves to the summary
    text = summary.inner_text()
    assert "payload" in text and "headers" in text  # both, on the first submit
    shot(page, "task-form-errors")


def test_the_job_page_fits_a_phone(browser: Browser, web_server: str, api):
    job_id = api("POST", "/api/jobs", json={"task": "demo.noop", "delay": 3600})["id"]
    context = browser.new_context(base_url=web_server, viewport={"width": 390, "height": 844})
    phone = context.new_page()
    log_in(phone, f"/jobs/{job_id}")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    assert phone.locator("#scheduled_for time").count() == 1
    shot(phone, "job-scheduled-phone")
    context.close()


MARKUP = "<img src=x onerror=alert(document.domain)>"


def test_markup_planted_through_real_paths_never_runs_on_rq_pages(
    page: Page, worker: Popen[bytes], api, redis_conn, tmp_path: Path
):
    """A job's error, result, meta and a running job's arguments, each holding markup: every
    /rq page and Offload's own job page show it as text, and no script runs (a dialog, or the
    image's request, would fail the test)."""
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    failed = api("POST", "/api/jobs", json={"task": "demo.fail", "args": {"message": MARKUP}})["id"]
    # A third party plants it without a token: the page a task fetches redirects to a URL with markup.
    with HttpPeer() as peer:
        url = peer.script("/page", Answer(302, b"", {"Location": f"http://elsewhere.example/{MARKUP}"}))
        fetched = api("POST", "/api/jobs", json={"task": "web.word_count", "args": {"url": url}})["id"]
        wait_for_status(api, fetched, ("failed",))
    result = api("POST", "/api/jobs", json={"task": "tests.fixtures.touch", "args": {"path": str(tmp_path / MARKUP)}})
    short = Path(tempfile.mkdtemp(prefix="o", dir="/tmp"))  # the call string shows 75 characters of each value
    try:
        running = api("POST", "/api/jobs", json={"task": "tests.fixtures.hold", "args": {
            "pid_file": str(short / f"{MARKUP}.pid"), "release_file": str(short / "go")}})["id"]  # fmt: skip
        for job_id in (failed, result["id"]):
            wait_for_status(api, job_id, ("failed", "finished"))
        wait_for_status(api, running, ("started",))
        redis_conn.hset(f"rq:job:{result['id']}", "meta", json.dumps({"note": MARKUP}))
        log_in(page, "/rq/")
        views = {
            "/rq/0/view/jobs/default/failed/8/asc/1": "failed list",
            f"/rq/0/view/job/{failed}": "failed job",
            f"/rq/0/view/job/{fetched}": "error from a fetched page",
            f"/rq/0/view/job/{result['id']}": "result and meta",
            "/rq/0/view/workers": "running job's arguments",
        }
        for path, what in views.items():
            page.goto(path)
            page.wait_for_load_state("networkidle")
            assert page.get_by_text(MARKUP, exact=False).count() >= 1, f"{what} ({path}) does not show the text"
        page.goto(f"/jobs/{failed}")
        expect(page.locator("#error-message")).to_have_text(MARKUP)
        shot(page, "markup-shown-as-text")
    finally:
        (short / "go").touch()
    assert dialogs == []


def wait_for_status(api, job_id: str, statuses: tuple[str, ...]) -> None:
    deadline = time.monotonic() + 20
    while api("GET", f"/api/jobs/{job_id}")["status"] not in statuses:
        assert time.monotonic() < deadline, f"job {job_id} never reached {statuses}"
        time.sleep(0.05)
