"""Live events over a real gunicorn, RQ's cron process, and the `flask jobs` CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import AUTH, ROOT, process_env, start_procfile_process, stop_process, wait_for
from tests.test_worker import enqueue, wait_until_ended


def sse_events(response: requests.Response) -> Iterator[dict]:
    """Parse a text/event-stream into dicts with id, event and data."""
    event: dict = {}
    for raw in response.iter_lines(decode_unicode=True):
        if raw == "":
            if "event" in event:
                yield event
            event = {}
        elif raw.startswith(":"):
            continue
        else:
            field, _, value = raw.partition(": ")
            event[field] = json.loads(value) if field == "data" else value


def open_stream(base: str, job_id: str, last_event_id: str | None = None) -> requests.Response:
    headers = {**AUTH, **({"Last-Event-ID": last_event_id} if last_event_id else {})}
    response = requests.get(f"{base}/api/jobs/{job_id}/events", headers=headers, stream=True, timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    return response


@pytest.mark.slow
def test_events_stream_status_progress_and_logs_until_the_job_ends(web_server: str, worker):
    job = requests.post(
        f"{web_server}/api/jobs", json={"task": "demo.sleep", "args": {"seconds": 1, "steps": 4}}, headers=AUTH
    ).json()
    with open_stream(web_server, job["id"]) as response:
        received = list(sse_events(response))
    kinds = [event["event"] for event in received]
    statuses = [event["data"]["status"] for event in received if event["event"] == "status"]
    assert statuses == ["queued", "started", "finished"]
    assert kinds.count("progress") == 4
    assert [e["data"]["done"] for e in received if e["event"] == "progress"] == [1, 2, 3, 4]
    assert kinds[-1] == "end"
    assert received[-1]["data"]["job"]["status"] == "finished"
    assert all("id" in event for event in received[:-1])


@pytest.mark.slow
def test_events_resume_after_last_event_id_without_loss_or_repeats(
    web_server: str, worker, redis_conn: redis.Redis, tmp_path: Path
):
    body = {"task": "tests.fixtures.chatty", "args": {"lines": 5}}
    job_id = requests.post(f"{web_server}/api/jobs", json=body, headers=AUTH).json()["id"]
    with open_stream(web_server, job_id) as response:
        first = []
        for event in sse_events(response):
            first.append(event)
            if len(first) == 3:
                break
    with open_stream(web_server, job_id, last_event_id=first[-1]["id"]) as response:
        rest = list(sse_events(response))
    stored = [entry_id.decode() for entry_id, _ in redis_conn.xrange(f"offload:job:{job_id}:events")]
    assert [e["id"] for e in first] + [e["id"] for e in rest if "id" in e] == stored
    messages = [e["data"]["message"] for e in first + rest if e["event"] == "log"]
    assert messages == ["line 0", "line 1", "line 2", "line 3", "line 4", "printed to stdout"]


def test_events_of_an_ended_job_replay_and_close(client: FlaskClient, worker):
    job = wait_until_ended(client, enqueue(client, "tests.fixtures.add", a=1, b=1))
    response = client.get(f"/api/jobs/{job['id']}/events", headers=AUTH)
    text = response.get_data(as_text=True)
    assert "event: status" in text and '"status":"finished"' in text
    assert text.rstrip().split("\n\n")[-1].startswith("event: end")
    bad = client.get(f"/api/jobs/{job['id']}/events", headers={**AUTH, "Last-Event-ID": "not-an-id"})
    assert bad.status_code == 422
    assert client.get("/api/jobs/0000/events", headers=AUTH).status_code == 404


# Cron


def test_cron_process_enqueues_scheduled_tasks_as_json(
    client: FlaskClient, redis_url: str, redis_conn: redis.Redis, tmp_path: Path
):
    cron = start_procfile_process("cron", redis_url, tmp_path / "cron.log")
    try:
        wait_for(
            lambda: len(client.get("/api/jobs?task=tests.fixtures.heartbeat", headers=AUTH).get_json()["jobs"]) >= 2,
            timeout=20,
            message="cron to enqueue the every-second task twice",
        )
    finally:
        stop_process(cron)
    jobs = client.get("/api/jobs?task=tests.fixtures.heartbeat", headers=AUTH).get_json()["jobs"]
    assert all(job["status"] == "queued" for job in jobs)
    raw = redis_conn.hgetall(f"rq:job:{jobs[0]['id']}")
    assert json.loads(zlib.decompress(raw[b"data"])) == ["tests.fixtures.heartbeat", None, [], {}]
    assert json.loads(raw[b"meta"])["cron"] == "tests.fixtures.heartbeat"


def test_tasks_show_their_schedule_and_next_run(client: FlaskClient):
    heartbeat = client.get("/api/tasks/tests.fixtures.heartbeat", headers=AUTH).get_json()
    assert heartbeat["schedule"] == "every 1 seconds"
    assert heartbeat["next_run"].endswith("Z")
    assert client.get("/api/tasks/demo.noop", headers=AUTH).get_json()["next_run"] is None


def test_a_bad_cron_expression_stops_the_cron_process_naming_the_task(redis_url: str):
    env = process_env(redis_url, OFFLOAD_TASK_MODULES="tests.broken.bad_cron", TZ="UTC")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "rq"), "cron", "--config", "jobs.worker.rq_cli_config", "jobs.cron.table"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "task tests.broken.bad_cron.weekly: 'every tuesday' is not a valid cron expression" in (
        result.stdout + result.stderr
    )


# CLI


def test_cli_lists_tasks_and_enqueues_with_key_value_arguments(app: Flask):
    runner = app.test_cli_runner()
    tasks = runner.invoke(args=["tasks"])
    assert tasks.exit_code == 0
    assert "demo.sleep" in tasks.output
    listed = json.loads(runner.invoke(args=["tasks", "--json"]).output)
    assert {"demo.sleep", "tests.fixtures.add"} <= {task["name"] for task in listed}

    result = runner.invoke(args=["jobs", "enqueue", "tests.fixtures.describe", "name=cli", 'tags=["a"]', "--json"])
    assert result.exit_code == 0, result.output
    job = json.loads(result.output)
    assert job["args"]["tags"] == ["a"]
    shown = runner.invoke(args=["jobs", "show", job["id"]])
    assert shown.exit_code == 0
    assert job["id"] in shown.output and "queued" in shown.output
    listed_jobs = json.loads(runner.invoke(args=["jobs", "list", "--json"]).output)
    assert [entry["id"] for entry in listed_jobs] == [job["id"]]
    assert runner.invoke(args=["jobs", "cancel", job["id"]]).output.strip() == f"{job['id']}: canceled"
    assert runner.invoke(args=["jobs", "retry", job["id"]]).output.strip() == f"{job['id']}: queued again"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["jobs", "enqueue", "nope"], "no task named 'nope'"),
        (["jobs", "enqueue", "tests.fixtures.add", "a=x"], "a: Input should be a valid integer"),
        (["jobs", "enqueue", "tests.fixtures.add", "oops"], "arguments are key=value pairs"),
        (["jobs", "show", "missing"], "no job with id 'missing'"),
        (["jobs", "retry", "missing"], "no job with id 'missing'"),
    ],
)
def test_cli_bad_input_prints_why_and_exits_non_zero(app: Flask, args: list[str], message: str):
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code != 0
    assert message in result.output


def test_cli_refuses_to_cancel_an_ended_job(app: Flask, client: FlaskClient, worker):
    job = wait_until_ended(client, enqueue(client, "tests.fixtures.add", a=1, b=1))
    result = app.test_cli_runner().invoke(args=["jobs", "cancel", job["id"]])
    assert result.exit_code == 1
    assert "already ended (finished)" in result.output


def test_streams_beyond_the_per_process_cap_get_a_503_problem(redis_url: str):
    from app import create_app
    from tests.conftest import TOKEN

    app = create_app({"REDIS_URL": redis_url, "API_TOKENS": TOKEN, "SSE_MAX_STREAMS": 0})
    client = app.test_client()
    job_id = client.post("/api/jobs", json={"task": "demo.noop"}, headers=AUTH).get_json()["id"]
    response = client.get(f"/api/jobs/{job_id}/events", headers=AUTH)
    assert response.status_code == 503
    assert response.get_json()["type"] == "urn:offload:problem:streams-exhausted"
    assert response.headers["Retry-After"] == "5"
