"""Offload's worker running jobs from the API: in this process (``run_jobs``) for what a job does,
as the Procfile's `rq worker` process for what a process does."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import redis
from flask.testing import FlaskClient
from rq import Callback, Queue
from rq.serializers import JSONSerializer

from tests.conftest import AUTH, wait_for

ENDED = {"finished", "failed", "stopped", "canceled"}


def enqueue(client: FlaskClient, task: str, **args: object) -> str:
    response = client.post("/api/jobs", json={"task": task, "args": args}, headers=AUTH)
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()["id"]


def document(client: FlaskClient, job_id: str) -> dict:
    return client.get(f"/api/jobs/{job_id}", headers=AUTH).get_json()


def wait_until_ended(client: FlaskClient, job_id: str, timeout: float = 20) -> dict:
    return wait_for(
        lambda: (doc := document(client, job_id))["status"] in ENDED and doc,
        timeout=timeout,
        message=f"job {job_id} to end",
    )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def ran(client: FlaskClient, run_jobs: Callable[..., bool], job_id: str) -> dict:
    """The job's document once the in-process worker has run everything waiting."""
    run_jobs()
    return document(client, job_id)


def test_a_job_runs_on_offloads_worker_and_its_result_comes_back(client: FlaskClient, run_jobs):
    job = ran(client, run_jobs, enqueue(client, "tests.fixtures.add", a=2, b=3))
    assert job["status"] == "finished"
    assert job["result"] == 5
    assert job["attempts"] == 1
    assert job["worker"]
    assert job["started_at"] <= job["ended_at"]
    assert job["progress"]["percent"] == 100.0


def test_the_worker_gets_arguments_as_the_declared_types(client: FlaskClient, run_jobs):
    job_id = enqueue(client, "tests.fixtures.describe", name="n", tags=["a"], where={"x": 1, "y": 2})
    result = ran(client, run_jobs, job_id)["result"]
    assert result == {"name": "n", "color": "red", "tags": ["a"], "where": {"x": 1, "y": 2}, "where_type": "Point"}


def test_progress_reported_by_the_task_is_in_the_job_document(client: FlaskClient, run_jobs, tmp_path: Path):
    job = ran(client, run_jobs, enqueue(client, "tests.fixtures.touch", path=str(tmp_path / "touched")))
    assert job["progress"] == {"done": 1, "total": 1, "percent": 100.0, "message": "touched", "eta_seconds": None}
    assert (tmp_path / "touched").exists()


def test_a_failing_task_keeps_its_error_type_message_and_traceback(client: FlaskClient, run_jobs):
    job = ran(client, run_jobs, enqueue(client, "demo.fail", message="boom on purpose"))
    assert job["status"] == "failed"
    assert job["error"]["type"] == "RuntimeError"
    assert job["error"]["message"] == "boom on purpose"
    assert "Traceback" in job["error"]["traceback"]
    assert "raise RuntimeError(message)" in job["error"]["traceback"]
    assert job["result"] is None


def test_a_foreign_function_in_redis_is_never_imported_or_called(
    client: FlaskClient, redis_conn: redis.Redis, run_jobs, tmp_path: Path
):
    marker = tmp_path / "pwned"
    foreign = Queue("default", connection=redis_conn, serializer=JSONSerializer)
    job = foreign.enqueue_call("os.system", args=[f"touch {marker}"])
    ended = ran(client, run_jobs, job.id)
    assert ended["status"] == "failed"
    assert ended["error"]["type"] == "ForbiddenJobError"
    assert "'os.system'" in ended["error"]["message"]
    assert "not a registered task" in ended["error"]["message"]
    assert not marker.exists()


def test_a_foreign_callback_in_redis_is_never_imported(
    client: FlaskClient, redis_conn: redis.Redis, run_jobs, tmp_path: Path
):
    foreign = Queue("default", connection=redis_conn, serializer=JSONSerializer)
    job = foreign.enqueue_call("tests.fixtures.add", kwargs={"a": 1, "b": 1}, on_success=Callback("os.abort"))
    ended = ran(client, run_jobs, job.id)
    assert ended["status"] == "failed"
    assert "refusing to import callback 'os.abort'" in ended["error"]["message"]


def test_a_pickled_job_is_never_unpickled(client: FlaskClient, redis_conn: redis.Redis, run_jobs, tmp_path: Path):
    marker = tmp_path / "unpickled"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    class AttackersPickle:  # RQ's own default is JSON in Offload's processes, this one included
        dumps, loads = staticmethod(pickle.dumps), staticmethod(pickle.loads)

    queue = Queue("default", connection=redis_conn, serializer=AttackersPickle)
    job = queue.enqueue_call("tests.fixtures.add", kwargs={"a": Exploit(), "b": 1})
    assert redis_conn.hget(job.key, "data")  # a real pickle that would run a command when loaded
    run_jobs()
    assert redis_conn.zcard("rq:failed:default") == 1
    assert not marker.exists()
    assert redis_conn.zrange("rq:failed:default", 0, -1) == [job.id.encode()]


def test_arguments_are_validated_again_in_the_worker(client: FlaskClient, redis_conn: redis.Redis, run_jobs):
    forged = Queue("default", connection=redis_conn, serializer=JSONSerializer)
    job = forged.enqueue_call("tests.fixtures.add", kwargs={"a": "not a number", "b": 1})
    ended = ran(client, run_jobs, job.id)
    assert ended["status"] == "failed"
    assert ended["error"]["type"] == "ValidationError"
    assert ended["error"]["message"].startswith("1 validation error for TestsFixturesAddArgs\na\n  Input should be")


def test_workers_are_listed_with_their_queues(client: FlaskClient, worker):
    # RQ registers a worker a moment before it writes its first state ("?" until then).
    workers = wait_for(
        lambda: (
            (found := client.get("/api/workers", headers=AUTH).get_json()["workers"])
            and found[0]["state"] != "?"
            and found
        ),
        message="the worker's first state",
    )
    assert len(workers) == 1
    assert workers[0]["queues"] == ["high", "default", "low"]
    assert workers[0]["state"] in ("started", "idle", "busy")
    assert workers[0]["pid"] == worker.pid


def test_high_priority_jobs_are_taken_first(client: FlaskClient, start_worker: Callable[..., subprocess.Popen]):
    low = client.post(
        "/api/jobs", json={"task": "tests.fixtures.add", "args": {"a": 1, "b": 1}, "queue": "low"}, headers=AUTH
    )
    high = client.post(
        "/api/jobs", json={"task": "tests.fixtures.add", "args": {"a": 1, "b": 2}, "queue": "high"}, headers=AUTH
    )
    start_worker("--burst").wait(30)
    low_doc, high_doc = document(client, low.get_json()["id"]), document(client, high.get_json()["id"])
    assert low_doc["status"] == high_doc["status"] == "finished"
    assert high_doc["started_at"] < low_doc["started_at"]


def test_the_work_horse_dies_with_its_worker(client: FlaskClient, worker, tmp_path: Path):
    pid_file, release = tmp_path / "pid", tmp_path / "release"
    enqueue(client, "tests.fixtures.hold_isolated", pid_file=str(pid_file), release_file=str(release))
    horse = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), message="the horse to start"))
    assert horse != worker.pid and pid_alive(horse)
    os.kill(worker.pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(horse), timeout=10, message="the orphaned work-horse to die")
