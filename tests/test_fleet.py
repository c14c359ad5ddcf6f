"""The fleet without extra processes: pause and resume a queue (Offload's worker in this process),
empty it, the cron entries and a missed run, the status line, the API, the pages and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import redis
from flask import Flask
from flask.testing import FlaskClient

from jobs.cron import entries
from jobs.records import audit_log, job_metrics
from tests.conftest import AUTH
from tests.test_pages import csrf_of, log_in


def enqueue(client: FlaskClient, queue: str, **options: object) -> str:
    body = {"task": "tests.fixtures.add", "args": {"a": 1, "b": 2}, "queue": queue, **options}
    response = client.post("/api/jobs", json=body, headers=AUTH)
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def status(client: FlaskClient, job_id: str) -> str:
    return client.get(f"/api/jobs/{job_id}", headers=AUTH).get_json()["status"]


def queues(client: FlaskClient) -> dict[str, dict]:
    return {queue["name"]: queue for queue in client.get("/api/queues", headers=AUTH).get_json()["queues"]}


def last_audit(redis_conn: redis.Redis) -> audit_log.Entry:
    entries_found, _ = audit_log.read(redis_conn, 1)
    return entries_found[0]


def test_a_paused_queue_keeps_its_jobs_while_the_others_run_and_runs_them_after_resume(
    client: FlaskClient, run_jobs: Callable[..., bool], redis_conn: redis.Redis
):
    held = enqueue(client, "high")
    other = enqueue(client, "default")
    answer = client.post("/api/queues/high/pause", headers=AUTH)
    assert answer.get_json() == {"queue": "high", "paused": True, "changed": True}
    assert client.post("/api/queues/high/pause", headers=AUTH).get_json()["changed"] is False
    assert last_audit(redis_conn).action == "pause queue"
    run_jobs()
    assert status(client, other) == "finished"
    assert status(client, held) == "queued"
    listed = queues(client)
    assert listed["high"]["paused"] is True and listed["high"]["queued"] == 1
    assert listed["default"]["paused"] is False and listed["default"]["ended_recently"]["finished"] == 1
    ready = client.get("/readyz").get_json()
    assert "queue 'high' is paused: its 1 queued job(s) wait until it is resumed" in ready["problems"]
    metrics = client.get("/metrics", headers=AUTH).get_data(as_text=True)
    assert 'offload_queue_paused{queue="high"} 1.0' in metrics
    assert 'offload_queue_paused{queue="default"} 0.0' in metrics
    assert client.get("/api/status", headers=AUTH).get_json()["paused"] == ["high"]
    assert client.post("/api/queues/high/resume", headers=AUTH).get_json()["changed"] is True
    run_jobs()
    assert status(client, held) == "finished"
    assert queues(client)["high"]["paused"] is False


def test_a_job_popped_from_a_queue_paused_meanwhile_goes_back_to_its_front(
    client: FlaskClient, redis_conn: redis.Redis
):
    """The idle worker's BLPOP took the job just as the queue was paused: the claim script puts it
    back at the front, unstarted, and takes from the open queues instead."""
    from rq.serializers import JSONSerializer

    from jobs.job import TaskJob
    from jobs.worker.inprocess import InProcessWorker

    first, second = enqueue(client, "low"), enqueue(client, "low")
    open_job = enqueue(client, "default")
    client.post("/api/queues/low/pause", headers=AUTH)
    worker = InProcessWorker(["default", "low"], connection=redis_conn, job_class=TaskJob, serializer=JSONSerializer)
    popped = redis_conn.lpop("rq:queue:low")
    assert popped is not None and popped.decode() == first
    with job_metrics.tallied(worker._tally):
        outcome = worker._step([q.key for q in worker._ordered_queues], popped=["rq:queue:low", first])
    assert outcome == "started" and worker._running is not None and worker._running.job.id == open_job
    assert [job_id.decode() for job_id in redis_conn.lrange("rq:queue:low", 0, -1)] == [first, second]
    assert status(client, first) == "queued"


def test_pausing_a_queue_the_app_does_not_declare_is_a_404_problem(client: FlaskClient):
    answer = client.post("/api/queues/nightly/pause", headers=AUTH)
    assert answer.status_code == 404 and answer.mimetype == "application/problem+json"
    assert answer.get_json()["detail"] == "no queue named 'nightly'; the queues are high, default, low"
    assert client.post("/api/workers/nobody/stop", headers=AUTH).status_code == 404
    assert client.post("/api/cron/tests.fixtures.add/run", headers=AUTH).get_json()["detail"] == (
        "task 'tests.fixtures.add' has no cron entry (it runs on demand); GET /api/cron lists them"
    )


def test_the_queues_page_pauses_and_empties_a_queue_after_a_confirmation_naming_the_count(
    client: FlaskClient, redis_conn: redis.Redis
):
    waiting = [enqueue(client, "low") for _ in range(3)]
    assert log_in(client)[0] == 303
    page = client.get("/queues").get_data(as_text=True)
    assert 'id="queue-low" data-paused="false"' in page
    answer = client.post("/queues/low/pause", data={"csrf_token": csrf_of(client, "/queues")})
    assert answer.status_code == 303
    page = client.get(answer.location).get_data(as_text=True)
    assert "Queue low paused." in page and 'id="queue-low" data-paused="true"' in page
    assert "Paused: low" in page  # the status line
    confirm = client.get("/queues/low/empty").get_data(as_text=True)
    assert "Delete the 3 jobs waiting in queue low?" in confirm
    done = client.post("/queues/low/empty", data={"csrf_token": csrf_of(client, "/queues/low/empty")})
    assert "Deleted 3 of 3 waiting jobs." in done.get_data(as_text=True)
    assert redis_conn.llen("rq:queue:low") == 0
    assert all(client.get(f"/api/jobs/{job_id}", headers=AUTH).status_code == 404 for job_id in waiting)
    entry = last_audit(redis_conn)
    assert (entry.action, entry.via, entry.done, entry.filters) == ("empty queue", "page", 3, {"queue": "low"})
    assert client.post("/queues/low/empty").status_code == 400  # no CSRF token: refused


def test_run_now_enqueues_the_entry_and_lists_it_with_its_outcome(
    client: FlaskClient, run_jobs: Callable[..., bool], redis_conn: redis.Redis
):
    answer = client.post("/api/cron/tests.fixtures.heartbeat/run", headers=AUTH)
    assert answer.status_code == 202
    job_id = answer.get_json()["id"]
    run_jobs()
    listed = {entry["name"]: entry for entry in client.get("/api/cron", headers=AUTH).get_json()["entries"]}
    heartbeat = listed["tests.fixtures.heartbeat"]
    assert heartbeat["schedule"] == "every 1 seconds"
    assert heartbeat["runs"][0]["job_id"] == job_id and heartbeat["runs"][0]["status"] == "finished"
    assert heartbeat["runs"][0]["manual"] is True and heartbeat["runs"][0]["duration_seconds"] >= 0
    assert last_audit(redis_conn).job == job_id


def test_an_entry_is_flagged_missed_once_its_next_run_is_more_than_half_a_period_late(
    client: FlaskClient, redis_conn: redis.Redis
):
    job = entries.run_now(redis_conn, "tests.fixtures.heartbeat")

    def heartbeat_at(seconds_later: float) -> entries.Entry:
        found = entries.entries(redis_conn, now=job.created_at + timedelta(seconds=seconds_later))
        return next(entry for entry in found if entry.name == "tests.fixtures.heartbeat")

    assert heartbeat_at(1.5).missed is None  # due at +1 s, half a period (at least 1 s) of grace
    late = heartbeat_at(10).missed
    assert late is not None and "(9 s ago); no cron process is running" in late
    assert client.get("/api/cron", headers=AUTH).status_code == 200


def test_the_cli_pauses_lists_and_empties_queues(app: Flask, client: FlaskClient, redis_conn: redis.Redis):
    enqueue(client, "low")
    cli = app.test_cli_runner()
    assert cli.invoke(args=["offload", "pause", "low"]).output == "queue low paused\n"
    listed = cli.invoke(args=["offload", "queues"]).output
    assert "low PAUSED: queued 1," in listed
    emptied = cli.invoke(args=["offload", "empty", "low", "--yes"])
    assert emptied.output == "deleted 1 job(s) from low\n"
    assert cli.invoke(args=["offload", "resume", "low"]).output == "queue low resumed\n"
    unknown = cli.invoke(args=["offload", "pause", "nightly"])
    assert unknown.exit_code == 1
    assert unknown.output == "Error: no queue named 'nightly'; the queues are high, default, low\n"
    assert cli.invoke(args=["offload", "stop-worker", "nobody"]).exit_code == 1
    assert "tests.fixtures.heartbeat (every 1 seconds)" in cli.invoke(args=["offload", "cron"]).output
    assert [entry.action for entry in audit_log.read(redis_conn, 3)[0]] == [
        "resume queue",
        "empty queue",
        "pause queue",
    ]


def test_the_status_line_shows_redis_workers_paused_queues_and_recent_failures(
    client: FlaskClient, run_jobs: Callable[..., bool]
):
    client.post("/api/jobs", json={"task": "tests.fixtures.fail_with", "args": {"message": "no"}}, headers=AUTH)
    run_jobs()
    line = client.get("/api/status", headers=AUTH).get_json()
    assert line["redis_ok"] is True and line["failed_last_hour"] == 1
    assert line["workers_per_queue"] == {"high": 0, "default": 0, "low": 0}  # the burst worker has left
    assert line["unworked"] == ["high", "default", "low"]
    log_in(client)
    page = client.get("/failures").get_data(as_text=True)
    assert 'id="status-line"' in page and "1 failed in the last hour" in page
    assert "no worker for high, default, low" in page
