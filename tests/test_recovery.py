"""Crash recovery on one machine: a killed work-horse, and the job a worker took from its
queue just before it died (a killed worker's running job: tests/test_worker_promises.py)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient

from jobs.worker.sweeper import SUSPECTS_KEY, sweep
from tests.conftest import wait_for
from tests.test_lifecycle import hold_job, wait_status
from tests.test_worker import enqueue

pytestmark = pytest.mark.slow


def test_a_killed_work_horse_fails_its_job_with_the_reason(client: FlaskClient, worker, tmp_path: Path):
    job_id, pid_file, _release = hold_job(client, tmp_path, task="tests.fixtures.hold_isolated")
    horse = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), message="the job to start"))
    os.kill(horse, signal.SIGKILL)  # the OOM killer's way
    failed = wait_status(client, job_id, "failed")
    assert "Work-horse terminated unexpectedly" in failed["error"]["message"]
    assert "signal 9" in failed["error"]["message"]


def test_a_job_lost_between_pop_and_start_is_pushed_back_and_runs(
    client: FlaskClient, redis_conn: redis.Redis, start_worker
):
    job_id = enqueue(client, "tests.fixtures.add", a=20, b=22)
    # What a worker killed right after BLPOP leaves behind: the id is out of the queue,
    # no registry holds it, and its status still says queued.
    assert redis_conn.lpop("rq:queue:default") == job_id.encode()
    start_worker(env={"OFFLOAD_SWEEP_CONFIRM_AFTER": "2"})
    assert wait_status(client, job_id, "finished", timeout=90)["result"] == 42
    assert redis_conn.zcard(SUSPECTS_KEY) == 0


def test_the_sweeper_leaves_waiting_and_starting_jobs_alone(client: FlaskClient, redis_conn: redis.Redis):
    waiting = enqueue(client, "tests.fixtures.add", a=1, b=1)
    taken = enqueue(client, "tests.fixtures.add", a=2, b=2)
    redis_conn.lrem("rq:queue:default", 0, taken)
    assert sweep(redis_conn, confirm_after=0.5) == []  # first sighting: only a suspect
    redis_conn.hset(f"rq:job:{taken}", "status", "started")  # a live worker got to it meanwhile
    time.sleep(0.6)
    assert sweep(redis_conn, confirm_after=0.5) == []
    assert redis_conn.lrange("rq:queue:default", 0, -1) == [waiting.encode()]
    assert redis_conn.zcard(SUSPECTS_KEY) == 0
