"""A job's life with real workers: progress, logs, cancel/stop, retries, scheduling,
dependencies, idempotency, uniqueness, batches and artifacts."""

from __future__ import annotations

import json
import os
import signal
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from flask.testing import FlaskClient

from jobs.records.job_events import LOG_MAX_LINES
from tests.conftest import AUTH, wait_for
from tests.test_worker import document, enqueue, pid_alive, wait_until_ended


def post(client: FlaskClient, body: object, **headers: str):
    return client.post("/api/jobs", json=body, headers={**AUTH, **headers})


def wait_status(client: FlaskClient, job_id: str, status: str, timeout: float = 20) -> dict:
    return wait_for(
        lambda: (doc := document(client, job_id))["status"] == status and doc,
        timeout=timeout,
        message=f"job {job_id} to be {status}",
    )


def hold_job(
    client: FlaskClient, tmp_path: Path, name: str = "hold", task: str = "tests.fixtures.hold"
) -> tuple[str, Path, Path]:
    pid_file, release = tmp_path / f"{name}.pid", tmp_path / f"{name}.release"
    job_id = enqueue(client, task, pid_file=str(pid_file), release_file=str(release))
    return job_id, pid_file, release


# Progress and logs


def test_progress_has_percent_message_and_an_eta_while_running(client: FlaskClient, worker):
    job_id = enqueue(client, "demo.sleep", seconds=3, steps=6)
    running = wait_for(
        lambda: (doc := document(client, job_id))["status"] == "started" and doc["progress"]["done"] and doc,
        message="progress to be reported",
    )
    progress = running["progress"]
    assert progress["total"] == 6
    assert 0 < progress["percent"] < 100
    assert progress["message"].startswith("step ")
    assert progress["eta_seconds"] > 0


def test_logs_and_prints_of_a_task_are_captured_in_order(client: FlaskClient, worker):
    job_id = enqueue(client, "tests.fixtures.chatty", lines=3)
    wait_until_ended(client, job_id)
    body = client.get(f"/api/jobs/{job_id}/logs", headers=AUTH).get_json()
    assert [line["message"] for line in body["lines"]] == ["line 0", "line 1", "line 2", "printed to stdout"]
    assert [line["level"] for line in body["lines"]] == ["INFO", "INFO", "INFO", "STDOUT"]
    assert body["lines"][0]["logger"] == "tests.fixtures"
    assert body["dropped"] == 0
    tail = client.get(f"/api/jobs/{job_id}/logs?tail=1", headers=AUTH).get_json()["lines"]
    assert [line["message"] for line in tail] == ["printed to stdout"]


def test_log_capture_survives_a_crash_of_the_task(client: FlaskClient, worker):
    job = wait_until_ended(client, enqueue(client, "tests.fixtures.chatty", lines=2, fail=True))
    assert job["status"] == "failed"
    lines = client.get(f"/api/jobs/{job['id']}/logs", headers=AUTH).get_json()["lines"]
    assert [line["message"] for line in lines] == ["line 0", "line 1", "printed to stdout"]


def test_logs_keep_the_tail_and_count_what_was_dropped(client: FlaskClient, worker):
    job_id = enqueue(client, "tests.fixtures.chatty", lines=LOG_MAX_LINES + 50)
    wait_until_ended(client, job_id)
    body = client.get(f"/api/jobs/{job_id}/logs", headers=AUTH).get_json()
    assert body["dropped"] == 51  # 50 log lines and one printed line over the cap of LOG_MAX_LINES
    assert len(body["lines"]) == LOG_MAX_LINES
    assert body["lines"][-1]["message"] == "printed to stdout"
    assert body["lines"][0]["message"] == "line 51"


# Cancel, stop, retry, delete


def test_cancel_a_queued_job_then_cancel_again_is_409(client: FlaskClient, redis_conn: redis.Redis):
    job_id = enqueue(client, "tests.fixtures.add", a=1, b=2)
    response = client.post(f"/api/jobs/{job_id}/cancel", headers=AUTH)
    assert response.status_code == 202
    assert response.get_json()["status"] == "canceled"
    assert redis_conn.llen("rq:queue:default") == 0
    again = client.post(f"/api/jobs/{job_id}/cancel", headers=AUTH)
    assert again.status_code == 409
    assert again.mimetype == "application/problem+json"


def test_cancel_a_scheduled_job_keeps_it_from_running(client: FlaskClient, redis_conn: redis.Redis):
    job_id = post(client, {"task": "demo.noop", "delay": 60}).get_json()["id"]
    assert client.post(f"/api/jobs/{job_id}/cancel", headers=AUTH).get_json()["status"] == "canceled"
    assert redis_conn.zcard("rq:scheduled:high") == 0


def test_cancel_a_running_job_interrupts_it_and_the_worker_goes_on(client: FlaskClient, worker, tmp_path: Path):
    job_id, pid_file, _release = hold_job(client, tmp_path)
    runner = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), message="the job to start"))
    assert runner == worker.pid  # a plain task runs in the worker process
    assert client.post(f"/api/jobs/{job_id}/cancel", headers=AUTH).status_code == 202
    stopped = wait_status(client, job_id, "stopped")
    assert stopped["ended_at"]
    assert client.post(f"/api/jobs/{job_id}/cancel", headers=AUTH).status_code == 409
    assert wait_status(client, enqueue(client, "tests.fixtures.add", a=1, b=2), "finished")["result"] == 3


def test_cancel_a_running_isolated_job_stops_its_process(client: FlaskClient, worker, tmp_path: Path):
    job_id, pid_file, _release = hold_job(client, tmp_path, task="tests.fixtures.hold_isolated")
    horse = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), message="the job to start"))
    assert horse != worker.pid
    assert client.post(f"/api/jobs/{job_id}/cancel", headers=AUTH).status_code == 202
    stopped = wait_status(client, job_id, "stopped")
    assert stopped["ended_at"]
    wait_for(lambda: not pid_alive(horse), message="the work-horse to be gone")


def test_retry_runs_a_failed_job_again(client: FlaskClient, worker, tmp_path: Path):
    needed = tmp_path / "needed.txt"
    job_id = enqueue(client, "tests.fixtures.needs_file", path=str(needed))
    assert wait_until_ended(client, job_id)["error"]["type"] == "FileNotFoundError"
    needed.write_text("here now")
    assert client.post(f"/api/jobs/{job_id}/retry", headers=AUTH).status_code == 202
    retried = wait_status(client, job_id, "finished")
    assert retried["result"] == "here now"
    assert retried["attempts"] == 2
    assert client.post(f"/api/jobs/{job_id}/retry", headers=AUTH).status_code == 409


def test_retry_a_canceled_job(client: FlaskClient, worker):
    job_id = post(client, {"task": "tests.fixtures.add", "args": {"a": 1, "b": 1}, "delay": 60}).get_json()["id"]
    client.post(f"/api/jobs/{job_id}/cancel", headers=AUTH)
    assert client.post(f"/api/jobs/{job_id}/retry", headers=AUTH).status_code == 202
    assert wait_status(client, job_id, "finished")["result"] == 2


def test_delete_forgets_an_ended_job_and_everything_beside_it(
    client: FlaskClient, redis_conn: redis.Redis, worker, tmp_path: Path
):
    job_id = enqueue(client, "tests.fixtures.chatty", lines=1)
    wait_until_ended(client, job_id)
    assert client.delete(f"/api/jobs/{job_id}", headers=AUTH).status_code == 204
    assert client.get(f"/api/jobs/{job_id}", headers=AUTH).status_code == 404
    assert redis_conn.keys(f"*{job_id}*") == []
    assert redis_conn.zcard("offload:jobs") == 0
    running, pid_file, release = hold_job(client, tmp_path)
    wait_for(pid_file.exists, message="the job to start")
    assert client.delete(f"/api/jobs/{running}", headers=AUTH).status_code == 409
    release.touch()


# Retries


def test_retries_with_backoff_until_success_are_counted(client: FlaskClient, worker, tmp_path: Path):
    counter = tmp_path / "attempts"
    job = wait_status(client, enqueue(client, "tests.fixtures.flaky", counter=str(counter)), "finished", timeout=30)
    assert job["result"] == 3
    assert job["attempts"] == 3
    assert job["retries_left"] == 1


def test_the_final_failure_keeps_its_error_after_all_retries(client: FlaskClient, worker, tmp_path: Path):
    counter = tmp_path / "attempts"
    job = wait_status(client, enqueue(client, "tests.fixtures.always_fails", counter=str(counter)), "failed", 30)
    assert counter.read_text() == "3"
    assert job["attempts"] == 3
    assert job["retries_left"] == 0
    assert job["error"]["type"] == "ValueError"
    assert job["error"]["message"] == "attempt 3 failed"


# Scheduling


def test_a_delayed_job_waits_for_its_time_then_runs(client: FlaskClient, worker):
    job = post(client, {"task": "tests.fixtures.add", "args": {"a": 1, "b": 1}, "delay": 2}).get_json()
    assert job["status"] == "scheduled"
    done = wait_status(client, job["id"], "finished")
    waited = datetime.fromisoformat(done["started_at"]) - datetime.fromisoformat(job["created_at"])
    assert waited.total_seconds() >= 2


def test_a_job_due_within_a_second_is_never_moved_before_its_time(client: FlaskClient, redis_conn: redis.Redis):
    """RQ's scheduler keys jobs by whole seconds and moves a job once its second begins."""
    due = (datetime.now(UTC) + timedelta(seconds=30)).replace(microsecond=250_000)
    for body in ({"delay": 1.5}, {"at": due.isoformat()}):
        job = post(client, {"task": "tests.fixtures.add", "args": {"a": 1, "b": 1}, **body}).get_json()
        wanted = datetime.fromisoformat(job["created_at"]) + timedelta(seconds=1.5) if "delay" in body else due
        score = redis_conn.zscore("rq:scheduled:default", job["id"])
        assert score >= wanted.timestamp()
        assert score < wanted.timestamp() + 1


def test_a_dependent_job_waits_for_its_parent(client: FlaskClient, worker, tmp_path: Path):
    parent, pid_file, release = hold_job(client, tmp_path)
    child = post(client, {"task": "tests.fixtures.add", "args": {"a": 1, "b": 1}, "depends_on": [parent]})
    child_id = child.get_json()["id"]
    assert child.get_json()["status"] == "deferred"
    assert child.get_json()["depends_on"] == [parent]
    wait_for(pid_file.exists, message="the parent to start")
    assert document(client, child_id)["status"] == "deferred"
    release.touch()
    assert wait_status(client, child_id, "finished")["result"] == 2


def test_dependents_of_a_failed_job_are_canceled_with_the_reason(client: FlaskClient, worker):
    parent = enqueue(client, "demo.fail")
    child = post(client, {"task": "demo.noop", "depends_on": [parent]}).get_json()["id"]
    grandchild = post(client, {"task": "demo.noop", "depends_on": [child]}).get_json()["id"]
    wait_status(client, parent, "failed")
    assert wait_status(client, child, "canceled")
    assert wait_status(client, grandchild, "canceled")


# Idempotency and uniqueness


def test_an_idempotency_key_returns_the_same_job(client: FlaskClient, redis_conn: redis.Redis):
    body = {"task": "tests.fixtures.add", "args": {"a": 1, "b": 2}}
    first = post(client, body, **{"Idempotency-Key": "order-42"})
    second = post(client, body, **{"Idempotency-Key": "order-42"})
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.get_json()["id"] == second.get_json()["id"]
    assert second.headers["Location"] == first.headers["Location"]
    other = post(client, {**body, "args": {"a": 9, "b": 9}}, **{"Idempotency-Key": "order-42"})
    assert other.status_code == 422
    assert "different request body" in other.get_json()["detail"]
    assert redis_conn.llen("rq:queue:default") == 1
    [key] = redis_conn.keys("offload:idempotency:*")
    assert redis_conn.ttl(key) > 23 * 3600  # kept for the day once its job is written


def test_an_idempotency_claim_left_by_a_dead_request_clears_itself(app, client: FlaskClient, redis_conn: redis.Redis):
    """A web process killed between claiming a key and writing its job left a claim that
    answered 409 for a day; it now lives IN_PROGRESS_TTL seconds."""
    from app import idempotency
    from tests.conftest import TOKEN

    body = {"task": "tests.fixtures.add", "args": {"a": 1, "b": 2}}
    key = idempotency.redis_key(f"token:{TOKEN}", "order-43")
    assert idempotency.claim(redis_conn, key, body, "a-job-never-written") is None  # the request that died
    assert 0 < redis_conn.ttl(key) <= idempotency.IN_PROGRESS_TTL
    retry = post(client, body, **{"Idempotency-Key": "order-43"})
    assert retry.status_code == 409 and retry.headers["Retry-After"] == "1"
    redis_conn.delete(key)  # what the claim's TTL does by itself
    assert post(client, body, **{"Idempotency-Key": "order-43"}).status_code == 202


def test_concurrent_duplicate_idempotency_keys_create_exactly_one_job(web_server: str, redis_conn: redis.Redis):
    import concurrent.futures

    import requests

    body = {"task": "tests.fixtures.add", "args": {"a": 1, "b": 2}}
    headers = {**AUTH, "Idempotency-Key": "concurrent-1"}

    def submit(_: int) -> tuple[int, str]:
        response = requests.post(f"{web_server}/api/jobs", json=body, headers=headers, timeout=10)
        return response.status_code, response.json()["id"]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(submit, range(32)))
    assert len({job_id for _, job_id in answers}) == 1
    assert sorted(status for status, _ in answers).count(202) == 1
    assert redis_conn.llen("rq:queue:default") == 1
    assert redis_conn.zcard("offload:jobs") == 1


def test_a_unique_task_returns_the_active_job_for_the_same_arguments(client: FlaskClient):
    first = post(client, {"task": "tests.fixtures.account_report", "args": {"account": 7, "note": "a"}})
    again = post(client, {"task": "tests.fixtures.account_report", "args": {"account": 7, "note": "b"}})
    other = post(client, {"task": "tests.fixtures.account_report", "args": {"account": 8}})
    assert (first.status_code, again.status_code, other.status_code) == (202, 200, 202)
    assert first.get_json()["id"] == again.get_json()["id"] != other.get_json()["id"]
    client.post(f"/api/jobs/{first.get_json()['id']}/cancel", headers=AUTH)
    after_cancel = post(client, {"task": "tests.fixtures.account_report", "args": {"account": 7}})
    assert after_cancel.status_code == 202
    assert after_cancel.get_json()["id"] != first.get_json()["id"]


# Batches


def test_a_batch_enqueues_valid_items_and_reports_each_bad_one(client: FlaskClient, redis_conn: redis.Redis):
    items = [
        {"task": "tests.fixtures.add", "args": {"a": 1, "b": 1}},
        {"task": "tests.fixtures.add", "args": {"a": "x"}},
        {"task": "nope"},
        {"task": "demo.noop", "delay": 30},
    ]
    response = client.post("/api/jobs/batch", json=items, headers=AUTH)
    assert response.status_code == 202
    results = response.get_json()
    assert [item["status"] for item in results] == [202, 422, 404, 202]
    assert [item["index"] for item in results] == [0, 1, 2, 3]
    assert {tuple(e["loc"]) for e in results[1]["problem"]["errors"]} == {("args", "a"), ("args", "b")}
    assert results[0]["job"]["status"] == "queued"
    assert results[3]["job"]["status"] == "scheduled"
    assert redis_conn.llen("rq:queue:default") == 1
    raw = redis_conn.hget(f"rq:job:{results[0]['job']['id']}", "data")
    assert json.loads(zlib.decompress(raw))[3] == {"a": 1, "b": 1}


def test_a_batch_with_no_valid_item_is_422_and_a_huge_one_413(app, client: FlaskClient):
    response = client.post("/api/jobs/batch", json=[{"task": "nope"}, {"x": 1}], headers=AUTH)
    assert response.status_code == 422
    assert {error["loc"][0] for error in response.get_json()["errors"]} == {0, 1}
    assert client.post("/api/jobs/batch", json={"task": "demo.noop"}, headers=AUTH).status_code == 422
    app.config["BATCH_MAX_ITEMS"] = 3
    assert client.post("/api/jobs/batch", json=[{"task": "demo.noop"}] * 4, headers=AUTH).status_code == 413


# Artifacts


def test_a_task_can_return_a_file_that_the_api_serves(client: FlaskClient, worker):
    job = wait_until_ended(client, enqueue(client, "tests.fixtures.make_file", text="hello"))
    assert job["result"] == {"artifact": {"filename": "hello.txt", "content_type": "text/plain", "size": 5}}
    response = client.get(job["links"]["artifact"], headers=AUTH)
    assert response.status_code == 200
    assert response.data == b"hello"
    assert response.mimetype == "text/plain"
    assert response.headers["Content-Disposition"] == "attachment; filename=\"hello.txt\"; filename*=UTF-8''hello.txt"
    plain = wait_until_ended(client, enqueue(client, "tests.fixtures.add", a=1, b=1))
    assert "artifact" not in plain["links"]
    assert client.get(f"/api/jobs/{plain['id']}/artifact", headers=AUTH).status_code == 404


def test_an_artifact_over_the_cap_fails_the_job(client: FlaskClient, worker):
    job = wait_until_ended(client, enqueue(client, "tests.fixtures.make_file", text="x", size=16 * 1024 * 1024))
    assert job["status"] == "failed"
    assert job["error"]["type"] == "ArtifactTooLargeError"


def test_a_killed_worker_leaves_its_captured_logs(client: FlaskClient, worker, tmp_path: Path):
    job_id, pid_file, _release = hold_job(client, tmp_path)
    wait_for(pid_file.exists, message="the job to start")
    os.kill(worker.pid, signal.SIGKILL)
    assert client.get(f"/api/jobs/{job_id}/logs", headers=AUTH).status_code == 200
