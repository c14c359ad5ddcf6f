"""What the worker promises, checked with real worker processes against the fixture's Redis:
a waiting job is never held, a stop never harms the worker, a dead worker's job runs again,
workers stay visible while they live, suspension is honoured, RQ's features keep working,
and bad data fails one job, never the process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient
from rq import Queue
from rq.command import send_command, send_kill_horse_command
from rq.rate_limit import RateLimit
from rq.serializers import JSONSerializer
from rq.suspension import resume, suspend

from jobs import settings
from jobs.job import TaskJob
from tests.conftest import AUTH, ROOT, process_env, wait_for
from tests.test_lifecycle import hold_job, wait_status
from tests.test_worker import enqueue

pytestmark = pytest.mark.slow

# Heartbeats every second and a short grace: a dead worker is noticed in seconds, not a minute.
QUICK = ("--worker-ttl", "20", "--job-monitoring-interval", "1", "--maintenance-interval", "1")
QUICK_ENV = {"OFFLOAD_HEARTBEAT_GRACE": "2"}


def worker_hash(connection: redis.Redis) -> dict[bytes, bytes]:
    [key] = connection.smembers("rq:workers")
    return connection.hgetall(key)


def count(path: Path) -> int:
    return int(path.read_text()) if path.exists() else 0


# A job waiting behind a running one is queued, not held.


def test_a_job_waiting_behind_a_running_one_is_queued_and_a_cancel_keeps_it_from_running(
    client: FlaskClient, worker, tmp_path: Path, redis_conn: redis.Redis
):
    running, pid_file, release = hold_job(client, tmp_path)
    wait_for(pid_file.exists, message="the first job to start")
    marker = tmp_path / "ran"
    waiting = enqueue(client, "tests.fixtures.touch", path=str(marker))
    deleted = enqueue(client, "tests.fixtures.touch", path=str(tmp_path / "deleted-ran"))
    assert client.get(f"/api/jobs/{waiting}", headers=AUTH).get_json()["status"] == "queued"
    assert client.post(f"/api/jobs/{waiting}/cancel", headers=AUTH).get_json()["status"] == "canceled"
    TaskJob.fetch(deleted, connection=redis_conn, serializer=JSONSerializer).delete()  # as /rq's delete does
    after = enqueue(client, "tests.fixtures.add", a=1, b=1)
    release.touch()
    assert wait_status(client, after, "finished")["result"] == 2  # the worker went past both
    assert not marker.exists() and not (tmp_path / "deleted-ran").exists()
    assert client.get(f"/api/jobs/{waiting}", headers=AUTH).get_json()["status"] == "canceled"
    assert not redis_conn.exists(f"rq:job:{deleted}")  # a deleted job never reappears
    assert redis_conn.zscore("rq:failed:default", deleted) is None
    assert wait_status(client, running, "finished")["result"] == "released"


# A stop never harms the worker.


def test_stops_aimed_at_no_running_job_are_answered_and_the_worker_lives_on(
    client: FlaskClient, worker, redis_conn: redis.Redis
):
    done = enqueue(client, "tests.fixtures.add", a=1, b=2)
    wait_status(client, done, "finished")
    [key] = redis_conn.smembers("rq:workers")
    name = key.decode().removeprefix("rq:worker:")
    send_kill_horse_command(redis_conn, name)
    send_command(redis_conn, name, "stop-job", job_id=done)  # a job that just finished
    send_command(redis_conn, name, "stop-job", job_id="no-such-job")
    after = enqueue(client, "tests.fixtures.add", a=2, b=2)
    assert wait_status(client, after, "finished")["result"] == 4
    assert worker.poll() is None


def test_a_stop_for_the_job_between_its_end_and_its_record_leaves_the_process_alone(redis_url: str):
    """The window RQ's kill_horse fell through to ``os.killpg(0)``: the execution still set, no
    task running, no work-horse. Run in a process of its own: the bug would kill it."""
    script = """
import redis, sys
from rq.command import handle_stop_job_command
from rq.executions import Execution
from rq.serializers import JSONSerializer
import jobs.worker.rq_cli_config
from jobs.worker.inprocess import InProcessWorker
from jobs.job import TaskJob
connection = redis.Redis.from_url(sys.argv[1])
worker = InProcessWorker(["default"], connection=connection, serializer=JSONSerializer, job_class=TaskJob)
worker.execution = Execution("exec", "job-1", connection, worker.name)
handle_stop_job_command(worker, {"command": "stop-job", "job_id": "job-1"})
worker.kill_horse()
print("alive")
"""
    done = subprocess.run(
        [sys.executable, "-c", script, redis_url], cwd=ROOT, env=process_env(redis_url),
        capture_output=True, text=True, timeout=30, start_new_session=True,
    )  # fmt: skip
    assert (done.returncode, done.stdout.strip()) == (0, "alive"), done.stderr


# A dead worker's job runs again, up to a bound.


def test_a_job_whose_worker_is_killed_runs_again_and_the_recovery_is_counted(
    client: FlaskClient, start_worker, tmp_path: Path
):
    first = start_worker(*QUICK, env=QUICK_ENV)
    counter, release = tmp_path / "attempts", tmp_path / "release"
    job_id = enqueue(client, "tests.fixtures.hold_and_count", counter=str(counter), release_file=str(release))
    wait_for(lambda: count(counter) == 1, message="the job to start")
    first.send_signal(signal.SIGKILL)
    first.wait()
    release.touch()
    start_worker(*QUICK, env=QUICK_ENV)
    finished = wait_status(client, job_id, "finished", timeout=60)
    assert (finished["result"], finished["recoveries"], count(counter)) == (2, 1, 2)


def test_a_live_workers_long_job_is_never_recovered_or_run_twice(client: FlaskClient, start_worker, tmp_path: Path):
    start_worker(*QUICK, env=QUICK_ENV)
    counter, release = tmp_path / "attempts", tmp_path / "release"
    job_id = enqueue(client, "tests.fixtures.hold_and_count", counter=str(counter), release_file=str(release))
    wait_for(lambda: count(counter) == 1, message="the job to start")
    start_worker(*QUICK, env=QUICK_ENV)  # a second worker whose maintenance looks for dead jobs each second
    # Watched past every staleness bound (job 3 s, worker 7 s): a wrong recovery would show.
    holds_throughout(10, lambda: client.get(f"/api/jobs/{job_id}", headers=AUTH).get_json()["status"] == "started")
    assert count(counter) == 1
    release.touch()
    finished = wait_status(client, job_id, "finished")
    assert (finished["recoveries"], count(counter)) == (0, 1)


def holds_throughout(seconds: float, condition: object) -> None:
    """Check ``condition`` all along a window: for promises about what must *not* happen."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert condition(), "the condition stopped holding"  # type: ignore[operator]
        time.sleep(0.2)


def test_a_job_that_keeps_killing_its_worker_fails_with_worker_lost_error(
    client: FlaskClient, start_worker, tmp_path: Path
):
    env = {**QUICK_ENV, "OFFLOAD_MAX_RECOVERIES": "1"}
    counter, release = tmp_path / "attempts", tmp_path / "release"
    job_id = enqueue(client, "tests.fixtures.hold_and_count", counter=str(counter), release_file=str(release))
    for attempt in (1, 2):
        worker = start_worker(*QUICK, env=env)
        wait_for(lambda attempt=attempt: count(counter) == attempt, timeout=60, message=f"run {attempt}")
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    start_worker(*QUICK, env=env)
    failed = wait_status(client, job_id, "failed", timeout=60)
    assert failed["error"]["type"] == "WorkerLostError"
    assert "died 2 times" in failed["error"]["message"]
    assert failed["recoveries"] == 1 and count(counter) == 2


# Workers are visible while they live.


def test_a_worker_whose_registration_expired_registers_again(
    client: FlaskClient, start_worker, redis_conn: redis.Redis
):
    start_worker(*QUICK, env=QUICK_ENV)
    [key] = redis_conn.smembers("rq:workers")
    redis_conn.delete(key)  # what an expired key (frozen worker, Redis restarted empty) leaves
    redis_conn.srem("rq:workers", key)
    wait_for(lambda: redis_conn.sismember("rq:workers", key) and redis_conn.hexists(key, "birth"), timeout=20,
             message="the worker to register again")  # fmt: skip
    assert [worker["name"] for worker in client.get("/api/workers", headers=AUTH).get_json()["workers"]]
    assert wait_status(client, enqueue(client, "tests.fixtures.add", a=3, b=3), "finished")["result"] == 6


def test_readyz_judges_workers_by_heartbeat_age(client: FlaskClient, start_worker, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OFFLOAD_WORKER_HEARTBEAT_MAX_AGE", "4")
    settings.reload()
    worker = start_worker("--worker-ttl", "17", env=QUICK_ENV)  # idle heartbeats every 2 s
    wait_for(lambda: client.get("/readyz").status_code == 200, message="ready")
    os.kill(worker.pid, signal.SIGSTOP)
    try:
        stale = wait_for(lambda: client.get("/readyz").status_code == 503 and client.get("/readyz").get_json(),
                         timeout=20, message="readyz to notice the frozen worker")  # fmt: skip
        assert any("has sent no heartbeat for" in problem for problem in stale["problems"])
        [listed] = client.get("/api/workers", headers=AUTH).get_json()["workers"]
        assert listed["alive"] is False and listed["heartbeat_age_seconds"] >= 4
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    wait_for(lambda: client.get("/readyz").status_code == 200, timeout=20, message="ready again")


# Suspension.


def test_rq_suspend_stops_new_jobs_at_once_and_resume_runs_them(
    client: FlaskClient, start_worker, redis_conn: redis.Redis
):
    for _ in range(6):
        response = client.post("/api/jobs/batch", json=[{"task": "demo.noop"} for _ in range(500)], headers=AUTH)
        assert response.status_code == 202
    start_worker()
    finished = lambda: sum(redis_conn.zcard(f"rq:finished:{name}") for name in ("high", "default", "low"))  # noqa: E731
    wait_for(lambda: finished() > 100, message="jobs to run")
    suspend(redis_conn)
    at_suspension = finished()
    wait_for(lambda: worker_hash(redis_conn).get(b"state") == b"suspended", message="the worker to show it")
    assert finished() <= at_suspension + 1  # at most the job that was running
    assert redis_conn.zcard("rq:wip:low") + redis_conn.zcard("rq:wip:default") == 0  # nothing held as started
    ready = client.get("/readyz")
    assert ready.status_code == 503 and any("suspended" in problem for problem in ready.get_json()["problems"])
    resume(redis_conn)
    wait_for(lambda: finished() == 3000, timeout=60, message="every job after rq resume")


def test_a_worker_started_while_suspended_waits_visibly(client: FlaskClient, start_worker, redis_conn: redis.Redis):
    suspend(redis_conn)
    job_id = enqueue(client, "tests.fixtures.add", a=4, b=4)
    worker = start_worker()
    wait_for(lambda: worker_hash(redis_conn).get(b"state") == b"suspended", message="a suspended worker")
    assert worker.poll() is None
    assert client.get(f"/api/jobs/{job_id}", headers=AUTH).get_json()["status"] == "queued"
    resume(redis_conn)
    assert wait_status(client, job_id, "finished")["result"] == 8


# RQ's features keep working.


def test_rq_rate_limits_release_their_slot_after_each_success(start_worker, redis_conn: redis.Redis):
    queue = Queue("default", connection=redis_conn, job_class=TaskJob, serializer=JSONSerializer)
    jobs = [
        queue.enqueue("tests.fixtures.add", kwargs={"a": n, "b": 1}, rate_limit=RateLimit("adds", 1)) for n in range(5)
    ]
    start_worker()
    wait_for(lambda: all(job.get_status(refresh=True) == "finished" for job in jobs), timeout=30,
             message="every rate-limited job")  # fmt: skip
    assert [job.return_value() for job in jobs] == [1, 2, 3, 4, 5]


def test_max_jobs_stops_the_worker_after_that_many(client: FlaskClient, start_worker, redis_conn: redis.Redis):
    ids = [enqueue(client, "tests.fixtures.add", a=n, b=0) for n in range(5)]
    worker = start_worker("--max-jobs", "3")
    assert worker.wait(30) == 0
    statuses = [client.get(f"/api/jobs/{job_id}", headers=AUTH).get_json()["status"] for job_id in ids]
    assert statuses == ["finished"] * 3 + ["queued"] * 2
    assert redis_conn.llen("rq:queue:default") == 2


def test_a_second_sigterm_within_a_second_is_ignored_as_rq_does(client: FlaskClient, start_worker, tmp_path: Path):
    worker = start_worker(env={"OFFLOAD_SHUTDOWN_GRACE": "600"})
    job_id, pid_file, release = hold_job(client, tmp_path)
    wait_for(pid_file.exists, message="the job to start")
    worker.send_signal(signal.SIGTERM)
    worker.send_signal(signal.SIGTERM)  # a supervisor and the terminal both sent one
    release.touch()
    assert worker.wait(20) == 0
    assert client.get(f"/api/jobs/{job_id}", headers=AUTH).get_json()["status"] == "finished"


# Bad data fails one job.


def test_a_lone_surrogate_is_refused_at_the_door(client: FlaskClient):
    response = client.post(
        "/api/jobs", data=b'{"task": "tests.fixtures.fail_with", "args": {"message": "\\ud800"}}',
        headers={**AUTH, "Content-Type": "application/json"},
    )  # fmt: skip
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"
    assert "lone surrogate" in response.get_json()["detail"]


def test_text_redis_cannot_store_fails_only_that_job(client: FlaskClient, worker, redis_conn: redis.Redis):
    queue = Queue("default", connection=redis_conn, job_class=TaskJob, serializer=JSONSerializer)
    bad = queue.enqueue("tests.fixtures.fail_with", kwargs={"message": "broken \ud800 text"})  # written past the API
    failed = wait_status(client, bad.id, "failed")
    assert "broken \\ud800 text" in failed["error"]["message"]
    assert wait_status(client, enqueue(client, "tests.fixtures.add", a=5, b=5), "finished")["result"] == 10
    assert worker.poll() is None
