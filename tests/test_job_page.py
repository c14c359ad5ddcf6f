"""The job page tells the truth: when a scheduled job runs, a stop on request, log times, a still bar."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from flask.testing import FlaskClient

from tests.conftest import AUTH, wait_for
from tests.test_lifecycle import hold_job, wait_status
from tests.test_pages import log_in


def enqueue(client: FlaskClient, body: dict) -> str:
    answer = client.post("/api/jobs", json=body, headers=AUTH)
    assert answer.status_code == 202, answer.get_data(as_text=True)
    return answer.get_json()["id"]


def test_a_scheduled_job_says_when_it_will_run(client: FlaskClient):
    job_id = enqueue(client, {"task": "demo.noop", "delay": 3600})
    document = client.get(f"/api/jobs/{job_id}", headers=AUTH).get_json()
    assert document["status"] == "scheduled"
    due = datetime.fromisoformat(document["scheduled_for"].replace("Z", "+00:00"))
    assert 3595 <= (due - datetime.now(UTC)).total_seconds() <= 3601
    assert log_in(client) == (303, "/")
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert f'<dd id="scheduled_for"><time datetime="{document["scheduled_for"]}">' in page
    assert 'value="0"' in page  # a waiting job's bar stands still
    queued = enqueue(client, {"task": "demo.noop"})
    assert client.get(f"/api/jobs/{queued}", headers=AUTH).get_json()["scheduled_for"] is None


def test_log_lines_carry_their_time(client: FlaskClient, run_jobs: Callable[..., bool]):
    job_id = enqueue(client, {"task": "tests.fixtures.chatty", "args": {"lines": 2}})
    run_jobs()
    assert log_in(client) == (303, "/")
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert page.count('<time class="at" datetime="') >= 2
    assert 'value="100' in page  # finished: a full bar


def test_a_stop_on_request_reads_as_one_not_as_an_error(client: FlaskClient, worker, tmp_path: Path):
    job_id, pid_file, _ = hold_job(client, tmp_path)
    wait_for(pid_file.exists, message="the job to start")
    assert client.post(f"/api/jobs/{job_id}/cancel", headers=AUTH).status_code == 202
    wait_status(client, job_id, "stopped")
    assert log_in(client) == (303, "/")
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert '<p id="stopped" >Stopped on request' in page or '<p id="stopped">Stopped on request' in page
    assert '<div id="error-block" hidden>' in page


def test_each_attempt_has_its_own_outcome_and_its_own_lines(client: FlaskClient, run_jobs: Callable[..., bool]):
    job_id = enqueue(client, {"task": "tests.fixtures.chatty", "args": {"lines": 2, "fail": True}})
    run_jobs()
    assert client.post(f"/api/jobs/{job_id}/retry", headers=AUTH).status_code == 202
    run_jobs()
    lines = client.get(f"/api/jobs/{job_id}/logs", headers=AUTH).get_json()["lines"]
    assert [line["attempt"] for line in lines] == [1, 1, 1, 2, 2, 2]
    assert log_in(client) == (303, "/")
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    history = page[page.index('id="attempt-history"') : page.index("</ol>", page.index('id="attempt-history"'))]
    assert history.count("<li") == 2 and history.count("crashed after logging") == 2
    assert '<li value="1">failed' in history and '<li value="2">failed' in history
    log = page[page.index('id="log"') :]
    assert log.count('class="attempt"') == 1 and "— attempt 2 —" in log
