"""The operator's pages in the browser: search, a failure group's bulk retry, and its audit entry."""

from __future__ import annotations

from collections.abc import Callable
from subprocess import Popen

from playwright.sync_api import Page, expect

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
