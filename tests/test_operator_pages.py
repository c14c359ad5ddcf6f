"""The operator's pages in the browser: search, a failure group's bulk retry and its audit entry;
the fleet's pages; the charts and a firing alert."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from subprocess import Popen

import pytest
import redis
from playwright.sync_api import Page, expect

from jobs import settings
from jobs.alerts import evaluation
from tests.browsing import log_in, shot
from tests.conftest import wait_for


def test_search_then_retry_a_failure_group_and_find_it_in_the_audit_log(
    page: Page,
    api: Callable[..., dict],
    worker: Popen[bytes],
):
    ids = [api("POST", "/api/jobs", json={"task": "demo.fail", "args": {"message": f"gateway {n} timed out"}})["id"]
           for n in (3, 7, 12)]  # fmt: skip
    api("POST", "/api/jobs", json={"task": "demo.fail", "args": {"message": "card refused"}})
    wait_for(lambda: all(api("GET", f"/api/jobs/{job_id}")["status"] == "failed" for job_id in ids))
    log_in(page)
    page.goto("/jobs")
    page.get_by_label("Search").fill("gateway")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#matches")).to_have_text("3 matching jobs")
    expect(page.locator("#jobs tbody tr")).to_have_count(3)
    expect(page.get_by_role("link", name="Retry 3 matching")).to_be_visible()
    page.goto("/failures")
    page.get_by_role("link", name="Retry 3").click()
    expect(page.locator("#confirm-question")).to_contain_text("Retry 3 matching jobs?")
    page.get_by_role("button", name="Retry 3 jobs").click()
    expect(page.locator("#outcome")).to_have_text("Retry: 3 matched, 3 done, 0 skipped.")
    page.get_by_role("link", name="See it in the audit log").click()
    row = page.locator("#audit tbody tr").first
    expect(row).to_contain_text("retry")
    expect(row).to_contain_text("page")
    expect(row).to_contain_text("group=")
    shot(page, "audit")


def test_pause_a_queue_see_its_worker_and_run_a_cron_entry_now(
    page: Page,
    api: Callable[..., dict],
    worker: Popen[bytes],
):
    api("POST", "/api/queues/low/pause")
    for _ in range(4):
        api("POST", "/api/jobs", json={"task": "demo.noop", "queue": "low", "args": {}})
    done = api("POST", "/api/jobs", json={"task": "demo.sleep", "args": {"seconds": 0.1, "steps": 1}})["id"]
    wait_for(lambda: api("GET", f"/api/jobs/{done}")["status"] == "finished")
    log_in(page, "/queues")
    low = page.locator("#queue-low")
    expect(low).to_have_attribute("data-paused", "true")
    expect(low).to_contain_text("paused")
    expect(page.locator("#status-line")).to_contain_text("Paused: low")
    shot(page, "queues")
    page.get_by_role("button", name="Resume low").click()
    expect(page.locator("#outcome")).to_have_text("Queue low resumed.")
    expect(page.locator("#queue-low")).to_have_attribute("data-paused", "false")
    wait_for(lambda: api("GET", "/api/queues")["queues"][2]["queued"] == 0, message="the resumed jobs to run")
    page.goto("/workers")
    [listed] = api("GET", "/api/workers")["workers"]
    row = page.locator(f"#worker-{listed['name']}")
    expect(row.locator(".pid")).to_have_text(str(worker.pid))
    expect(row.locator(".rss")).to_contain_text("MiB")
    shot(page, "workers")
    page.goto("/cron")
    page.get_by_role("button", name="Run now (tests.fixtures.heartbeat)").click()
    page.wait_for_url("**/jobs/*")
    expect(page.locator("#status")).to_have_text("finished", timeout=15_000)
    page.goto("/cron")
    expect(page.locator('[id="cron-tests.fixtures.heartbeat"]')).to_contain_text("(run now)")
    shot(page, "cron")
    page.goto("/rq/")
    expect(page.locator("header.top .brand")).to_have_text("Offload")
    expect(page.locator("#status-line")).to_be_visible()
    shot(page, "rq-dashboard")


def test_the_charts_and_a_firing_alert_on_the_pages(
    page: Page,
    api: Callable[..., dict],
    worker: Popen[bytes],
    redis_conn: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
):
    ids = [api("POST", "/api/jobs", json={"task": "demo.sleep", "args": {"seconds": 0.05 * n, "steps": 1}})["id"]
           for n in range(1, 6)]  # fmt: skip
    ids.append(api("POST", "/api/jobs", json={"task": "demo.fail", "args": {"message": "card refused"}})["id"])
    wait_for(lambda: all(api("GET", f"/api/jobs/{job_id}")["status"] in ("finished", "failed") for job_id in ids))
    api("POST", "/api/queues/low/pause")
    monkeypatch.setenv("ALERT_RULES", json.dumps([{"kind": "queue_paused", "queue": "low", "longer_than_seconds": 0}]))
    settings.reload()
    evaluation.evaluate(redis_conn, time.time() + 5)  # the cron process's evaluation, five seconds on
    log_in(page, "/")
    chart = page.locator("#home-throughput")
    expect(chart.locator("figcaption")).to_contain_text("finished: 5 in all; failed: 1 in all")
    expect(chart.locator("polyline").first).to_be_visible()
    expect(page.locator("#alerts-firing")).to_contain_text("1 alert firing: queue_paused:low")
    shot(page, "home")
    page.goto("/trends?task=demo.sleep")
    expect(page.get_by_role("img", name="Duration")).to_be_visible()
    shot(page, "trends")
    page.locator("#alerts-firing a").click()
    expect(page.locator('[id="alert-queue_paused:low"]')).to_have_attribute("data-state", "firing")
    page.get_by_role("button", name="Send a test notification").click()
    expect(page.locator("#outcome")).to_contain_text("No channel is configured")
    shot(page, "alerts")
