"""The fleet with real processes: a paused queue under each worker class, a worker's page fields
against its process, "stop after the current job", a ghost, and a cron entry that missed its run."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import redis
from flask.testing import FlaskClient

from jobs import settings
from tests.conftest import AUTH, start_procfile_process, stop_process, wait_for

pytestmark = pytest.mark.processes
WORKER_CLASSES = ["jobs.worker.inprocess.InProcessWorker", "jobs.worker.forking.ForkingWorker"]


def enqueue(client: FlaskClient, task: str, args: dict, queue: str) -> str:
    response = client.post("/api/jobs", json={"task": task, "args": args, "queue": queue}, headers=AUTH)
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def status(client: FlaskClient, job_id: str) -> str:
    return client.get(f"/api/jobs/{job_id}", headers=AUTH).get_json()["status"]


def workers(client: FlaskClient) -> list[dict]:
    return client.get("/api/workers", headers=AUTH).get_json()["workers"]


@pytest.mark.parametrize("worker_class", WORKER_CLASSES, ids=["inprocess", "forking"])
def test_a_paused_queues_jobs_do_not_start_while_another_queues_do_and_start_after_resume(
    client: FlaskClient, start_worker: Callable[..., subprocess.Popen[bytes]], worker_class: str
):
    client.post("/api/queues/high/pause", headers=AUTH)
    held = enqueue(client, "tests.fixtures.add", {"a": 1, "b": 1}, "high")  # the highest queue: taken first if open
    start_worker("--worker-class", worker_class)
    others = [enqueue(client, "tests.fixtures.add", {"a": n, "b": 1}, "default") for n in range(3)]
    wait_for(lambda: all(status(client, job_id) == "finished" for job_id in others), message="the open queue's jobs")
    # Each of those claims passed over the paused queue; the last one's claim found nothing it may take.
    wait_for(lambda: workers(client)[0]["state"] == "idle", message="the worker to go idle")
    assert status(client, held) == "queued"
    client.post("/api/queues/high/resume", headers=AUTH)
    wait_for(lambda: status(client, held) == "finished", message="the resumed queue's job to run")


def test_a_workers_fields_match_its_process_and_stop_after_job_lets_the_job_finish(
    client: FlaskClient, start_worker: Callable[..., subprocess.Popen[bytes]], tmp_path: Path, redis_conn: redis.Redis
):
    process = start_worker()
    [listed] = wait_for(lambda: [w for w in workers(client) if w["rss_bytes"]], message="a heartbeat with memory")
    assert listed["pid"] == process.pid and listed["hostname"] == os.uname().nodename
    assert listed["queues"] == ["high", "default", "low"] and listed["alive"] and not listed["ghost"]
    actual = psutil.Process(process.pid).memory_info().rss
    assert abs(listed["rss_bytes"] - actual) < 0.25 * actual, (listed["rss_bytes"], actual)
    release = tmp_path / "release"
    job_id = enqueue(
        client, "tests.fixtures.hold", {"pid_file": str(tmp_path / "pid"), "release_file": str(release)}, "default"
    )
    wait_for(lambda: workers(client)[0]["current_job"] == job_id, message="the worker to run the job")
    busy = workers(client)[0]
    assert busy["state"] == "busy" and busy["current_job_seconds"] is not None
    answer = client.post(f"/api/workers/{listed['name']}/stop", headers=AUTH)
    assert answer.status_code == 202
    wait_for(lambda: workers(client)[0]["stopping"], message="the worker to take the stop")
    release.write_text("go")  # the job finishes in its own time: it is not handed back
    wait_for(lambda: process.poll() is not None, timeout=20, message="the worker to exit after its job")
    assert process.returncode == 0
    assert status(client, job_id) == "finished"
    assert client.get("/api/audit", headers=AUTH).get_json()["entries"][0]["action"] == "stop worker"


def test_a_worker_that_stops_beating_is_flagged_a_ghost(
    client: FlaskClient, start_worker: Callable[..., subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch
):
    process = start_worker()
    monkeypatch.setenv("OFFLOAD_WORKER_HEARTBEAT_MAX_AGE", "1")
    settings.reload()
    os.kill(process.pid, signal.SIGSTOP)
    try:
        wait_for(lambda: workers(client)[0]["ghost"], message="the frozen worker to be flagged")
        assert client.get("/api/status", headers=AUTH).get_json()["unworked"] == ["high", "default", "low"]
    finally:
        os.kill(process.pid, signal.SIGCONT)


def test_a_cron_entry_that_should_have_run_is_flagged(client: FlaskClient, redis_url: str, tmp_path: Path):
    def heartbeat() -> dict:
        listed = client.get("/api/cron", headers=AUTH).get_json()["entries"]
        return next(entry for entry in listed if entry["name"] == "tests.fixtures.heartbeat")

    cron = start_procfile_process("cron", redis_url, tmp_path / "cron.log")
    try:
        wait_for(lambda: len(heartbeat()["runs"]) >= 2, message="the cron process to run the entry")
        assert heartbeat()["missed"] is None
    finally:
        stop_process(cron)
    flagged = wait_for(lambda: heartbeat()["missed"], message="the stopped entry to be flagged missed")
    assert flagged.startswith("should have run at ")
