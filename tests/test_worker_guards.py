"""What a worker refuses before it starts, and the RQ options it honours rather than ignores:
the RQ release and job class it needs, ``--dequeue-strategy`` and RQ's ``kill-horse`` command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import redis
import rq
from flask.testing import FlaskClient
from rq.command import send_kill_horse_command

from jobs.worker.guards import RQ_BUILT_FOR, RefusedToStart, check_job_class, check_rq_version
from scripts.procfile import procfile_command
from tests.conftest import process_env, wait_for
from tests.test_lifecycle import hold_job, wait_status
from tests.test_worker import enqueue

ROOT = Path(__file__).resolve().parents[1]


def worker_argv(*drop: str) -> list[str]:
    """The Procfile's worker command, without the options named in ``drop`` (and their values)."""
    _, argv = procfile_command("worker")
    kept: list[str] = []
    skip = False
    for part in argv:
        if skip:
            skip = False
        elif part in drop:
            skip = True
        else:
            kept.append(part)
    return kept


def test_the_installed_rq_is_the_release_the_worker_was_built_for():
    """Fails when RQ is upgraded: then run RQ's suite with Offload's workers (docs/worker.md)."""
    assert tuple(int(part) for part in rq.VERSION.split(".")[:2]) == RQ_BUILT_FOR
    check_rq_version()


@pytest.mark.parametrize("version", ["3.1.0", "4.0.0", "2.6.1", "3.0.0.dev1x"])
def test_another_rq_release_is_refused(version: str):
    expected = RefusedToStart if not version.startswith("3.0.") else None
    if expected is None:
        check_rq_version(version)
        return
    with pytest.raises(RefusedToStart, match=f"built for RQ 3.0.x, found RQ {version}"):
        check_rq_version(version)


def test_a_job_class_that_is_not_offloads_is_refused():
    with pytest.raises(RefusedToStart, match="--job-class jobs.job.TaskJob"):
        check_job_class(rq.job.Job)


def run(argv: list[str], redis_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, env=process_env(redis_url), capture_output=True, text=True, timeout=60)


def test_rq_worker_without_offloads_job_class_exits_with_one_line(redis_url: str):
    """It used to pop a job and quit on it, leaving the job in no queue and no registry."""
    done = run([*worker_argv("--job-class"), "--burst"], redis_url)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("offload worker: job class Job is not Offload's"), done.stderr
    assert "Traceback" not in done.stderr


def test_rq_worker_under_another_rq_release_exits_with_one_line(redis_url: str):
    script = "import sys, rq; rq.VERSION = '3.1.0'; from rq.cli import main; sys.argv = ['rq', *sys.argv[1:]]; main()"
    done = run([sys.executable, "-c", script, *worker_argv()[1:], "--burst"], redis_url)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("offload worker: built for RQ 3.0.x, found RQ 3.1.0")


def _started_queues(connection: redis.Redis, job_ids: list[str]) -> list[str]:
    started = {job_id: connection.hget(f"rq:job:{job_id}", "started_at") for job_id in job_ids}
    origins = {job_id: connection.hget(f"rq:job:{job_id}", "origin").decode() for job_id in job_ids}
    return [origins[job_id] for job_id in sorted(job_ids, key=lambda job_id: started[job_id])]


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("default", ["default"] * 3 + ["low"] * 3),
        ("round_robin", ["default", "low"] * 3),
    ],
)
def test_dequeue_strategy_is_honoured(
    client: FlaskClient, redis_conn: redis.Redis, redis_url: str, strategy: str, expected: list[str]
):
    """It was accepted and silently ignored: every worker took its queues in priority order."""
    job_ids = [enqueue(client, "tests.fixtures.add", a=n, b=n) for n in range(3)]
    job_ids += [enqueue(client, "tests.fixtures.describe", name=f"n{n}") for n in range(3)]
    subprocess.run(
        [*worker_argv(), "--burst", "--dequeue-strategy", strategy],
        cwd=ROOT,
        env=process_env(redis_url),
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert all(wait_status(client, job_id, "finished") for job_id in job_ids)
    assert _started_queues(redis_conn, job_ids) == expected


def test_kill_horse_reaches_a_task_running_in_the_worker_process(
    client: FlaskClient, redis_conn: redis.Redis, start_worker, tmp_path: Path
):
    """RQ's handler acts only on a work-horse pid; the in-process task was left running."""
    worker = start_worker()
    job_id, pid_file, _release = hold_job(client, tmp_path)
    wait_for(pid_file.exists, message="the job to start")
    [key] = redis_conn.smembers("rq:workers")
    send_kill_horse_command(redis_conn, key.decode().removeprefix("rq:worker:"))
    failed = wait_status(client, job_id, "failed")
    assert "JobInterrupted" in (failed.get("error") or {}).get("type", "") + str(failed.get("error"))
    after = enqueue(client, "tests.fixtures.add", a=2, b=3)
    assert wait_status(client, after, "finished")["result"] == 5
    assert worker.poll() is None


def test_the_numbers_rq_keeps_as_literals_are_the_ones_the_worker_script_writes():
    """record_and_take.lua writes RQ's records itself; where RQ has no name for a number (the
    results kept per job, an execution's margin, the busy heartbeat), Offload copies it, and
    this fails when RQ changes it."""
    import inspect

    from rq.executions import ExecutionRegistry
    from rq.results import Result
    from rq.worker.base import BaseWorker

    from jobs.worker import inprocess

    assert f"maxlen={inprocess.RQ_RESULTS_MAXLEN})" in inspect.getsource(Result.save)
    registry_add = inspect.getsource(ExecutionRegistry.add)
    assert f"score + {inprocess.RQ_EXECUTION_MARGIN}" in registry_add
    assert f"ttl + {inprocess.RQ_EXECUTION_MARGIN}" in registry_add
    beats = inspect.getsource(BaseWorker.maintain_heartbeats)
    assert f"self.job_monitoring_interval + {inprocess.RQ_BUSY_BEAT_MARGIN}" in beats
