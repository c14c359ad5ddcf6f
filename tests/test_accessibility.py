"""Every Offload page passes axe-core's checks in the browser (WCAG 2.x A and AA rules).

axe-core is pinned in tests/axe/package.json (npm's registry; `make test` installs it) and is
loaded into the test browser only, through the DevTools protocol: the app never serves it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from subprocess import Popen

import pytest
from playwright.sync_api import Page

from tests.browsing import log_in, shot
from tests.conftest import ROOT, wait_for

AXE = ROOT / "tests" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


def violations(opened: Page) -> list[str]:
    if not AXE.exists():
        pytest.fail(f"no axe-core at {AXE}: `make test` installs it (npm ci --prefix tests/axe)")
    opened.evaluate(AXE.read_text())
    found = opened.evaluate(
        "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}})).violations", TAGS
    )
    return [
        f"{item['id']} ({item['impact']}): {item['help']} at {[node['target'] for node in item['nodes'][:3]]}"
        for item in found
    ]


def test_every_page_has_no_accessibility_violations(page: Page, api: Callable[..., dict], worker: Popen[bytes]):
    page.goto("/login")
    problems = {"/login": violations(page)}
    page.goto("/static/offload.css")  # a page the checks must fault, so that they are known to run
    page.set_content("<html><body><img src='/static/favicon.svg'><button></button></body></html>")
    assert {found.split(" ", 1)[0] for found in violations(page)} >= {"image-alt", "button-name"}
    finished = api("POST", "/api/jobs", json={"task": "demo.sleep", "args": {"seconds": 0.2, "steps": 2}})["id"]
    failed = api("POST", "/api/jobs", json={"task": "demo.fail", "args": {"message": "gateway 7 timed out"}})["id"]
    scheduled = api("POST", "/api/jobs", json={"task": "demo.noop", "delay": 3600})["id"]
    for job_id in (finished, failed):
        wait_for(lambda job_id=job_id: api("GET", f"/api/jobs/{job_id}")["status"] in ("finished", "failed"))
    api("POST", f"/api/jobs/{failed}/retry")
    wait_for(lambda: api("GET", f"/api/jobs/{failed}")["status"] == "failed")
    log_in(page)
    paths = [
        "/",
        "/tasks/demo.sleep",
        "/tasks/images.thumbnail",
        f"/jobs/{finished}",
        f"/jobs/{failed}",
        f"/jobs/{scheduled}",
        "/jobs?q=gateway",
        "/failures",
        "/bulk/retry?status=failed",
        "/audit",
        "/queues",
        "/workers",
        "/cron",
        "/queues/high/empty",
        "/trends",
        "/trends?task=demo.sleep&range=day",
        "/trends?queue=default&range=month",
        "/alerts",
    ]
    shots = {"/failures": "failures", "/jobs?q=gateway": "history-search", "/bulk/retry?status=failed": "bulk-confirm"}
    for path in paths:
        page.goto(path)
        page.wait_for_load_state("networkidle")
        problems[path] = violations(page)
        if path in shots:
            shot(page, shots[path])
    shot(page, "audit")
    assert {path: found for path, found in problems.items() if found} == {}, json.dumps(problems, indent=1)
