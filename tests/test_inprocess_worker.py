"""Offload's worker class: batched claims and scripted bookkeeping that RQ reads as its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient
from rq.serializers import JSONSerializer

from jobs.job import TaskJob
from jobs.vocabulary import DEFAULT_QUEUES
from tests.conftest import AUTH, process_env, wait_for
from tests.test_lifecycle import hold_job, wait_status
from tests.test_worker import enqueue

RQ = str(Path(sys.executable).parent / "rq")
QUEUES = DEFAULT_QUEUES


def _records(connection: redis.Redis, job_id: str) -> dict[str, object]:
    """The shape of everything Redis holds about a finished job: keys, fields, memberships."""
    job_fields = set(connection.hgetall(f"rq:job:{job_id}"))
    (_, result), *_ = connection.xrevrange(f"rq:results:{job_id}", count=1)
    finished = {name: connection.zscore(f"rq:finished:{name}", job_id) is not None for name in QUEUES}
    started = {name: connection.zcard(f"rq:wip:{name}") for name in QUEUES}
    leftovers = sorted(key.decode().replace(job_id, "<id>") for key in connection.keys(f"rq:execution*{job_id}*"))
    return {
        "job fields": job_fields,
        "result fields": set(result),
        "result type": result[b"type"],
        "finished in": finished,
        "started registries": started,
        "execution keys": leftovers,
        "status": connection.hget(f"rq:job:{job_id}", "status"),
        "ttl set": connection.ttl(f"rq:job:{job_id}") > 0,
        "result ttl set": connection.ttl(f"rq:results:{job_id}") > 0,
    }


def _run_burst(redis_url: str, worker_class: str) -> None:
    argv = [RQ, "worker", "--config", "jobs.worker.rq_cli_config", "--worker-class", worker_class, "--job-class",
            "jobs.job.TaskJob", "--serializer", "json", "--burst"]  # fmt: skip
    subprocess.run(argv, env=process_env(redis_url), capture_output=True, check=True, timeout=60)


def test_a_job_leaves_the_same_records_as_rqs_own_worker_writes(
    client: FlaskClient, redis_conn: redis.Redis, redis_url: str
):
    by_rq = enqueue(client, "tests.fixtures.add", a=2, b=3)
    _run_burst(redis_url, "rq.worker.SimpleWorker")
    by_offload = enqueue(client, "tests.fixtures.add", a=2, b=3)
    _run_burst(redis_url, "jobs.worker.inprocess.InProcessWorker")
    assert _records(redis_conn, by_offload) == _records(redis_conn, by_rq)
    for job_id in (by_rq, by_offload):
        job = TaskJob.fetch(job_id, connection=redis_conn, serializer=JSONSerializer)
        assert job.latest_result().return_value == 5
        assert job.get_status() == "finished" and job.ended_at is not None and job.worker_name
    assert redis_conn.scard("rq:workers") == 0  # both burst workers unregistered cleanly


def test_short_jobs_are_not_held_behind_a_long_one(client: FlaskClient, start_worker, tmp_path: Path):
    start_worker()
    start_worker()
    long_id, pid_file, release = hold_job(client, tmp_path)
    wait_for(pid_file.exists, message="the long job to start")
    short = [enqueue(client, "tests.fixtures.add", a=index, b=1) for index in range(40)]
    for index, job_id in enumerate(short):
        assert wait_status(client, job_id, "finished")["result"] == index + 1
    assert client.get(f"/api/jobs/{long_id}", headers=AUTH).get_json()["status"] == "started"
    release.touch()
    wait_status(client, long_id, "finished")


def test_a_job_longer_than_its_heartbeat_ttl_is_kept_alive(
    client: FlaskClient, start_worker, redis_conn: redis.Redis, tmp_path: Path
):
    # Heartbeats every second with a two-second grace, registries cleaned every second: a
    # worker that stopped beating would lose this six-second job to the abandoned-job cleanup.
    start_worker("--job-monitoring-interval", "1", "--maintenance-interval", "1", env={"OFFLOAD_HEARTBEAT_GRACE": "2"})
    job_id, pid_file, release = hold_job(client, tmp_path)
    wait_for(pid_file.exists, message="the job to start")
    first_ttl = redis_conn.zrange("rq:wip:default", 0, -1, withscores=True)[0][1]
    wait_for(
        lambda: redis_conn.zrange("rq:wip:default", 0, -1, withscores=True)[0][1] > first_ttl + 3,
        timeout=10,
        message="the heartbeat to push the job's deadline on",
    )
    release.touch()
    assert wait_status(client, job_id, "finished")["result"] == "released"
    assert redis_conn.zcard("rq:failed:default") == 0


def test_many_short_jobs_finish_once_each_with_one_script_call_per_job(
    client: FlaskClient, start_worker, redis_conn: redis.Redis
):
    ids = [item["job"]["id"] for item in client.post(
        "/api/jobs/batch", json=[{"task": "tests.fixtures.add", "args": {"a": i, "b": 0}} for i in range(500)],
        headers=AUTH).get_json()]  # fmt: skip
    before = redis_conn.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
    start_worker("--burst").wait(60)
    assert redis_conn.zcard("rq:finished:default") == 500
    results = [TaskJob.fetch(job_id, connection=redis_conn, serializer=JSONSerializer) for job_id in ids[::50]]
    assert [job.latest_result().return_value for job in results] == list(range(0, 500, 50))
    calls = redis_conn.info("commandstats")["cmdstat_evalsha"]["calls"] - before
    # One step per job (it records the last success and starts the next), and a few besides:
    # the end-of-burst flush, the sweeps of a maintenance pass.
    assert 500 <= calls < 520, f"{calls} script calls for 500 jobs"


def test_workers_yield_the_cpu_and_lower_their_session_group(start_worker):
    """Nice 10 by default; a worker alone in its session lowers the session's autogroup too,
    since Linux shares the CPU between sessions before it looks at priorities."""
    autogroup = Path("/proc/self/autogroup")  # kernels built without autogroup have no such file
    own_group = autogroup.read_text() if autogroup.exists() else None  # empty in the boot session's group
    nice = start_worker()
    idle = start_worker(env={"OFFLOAD_WORKER_NICE": "idle"})
    assert os.sched_getscheduler(nice.pid) == os.SCHED_OTHER and os.getpriority(os.PRIO_PROCESS, nice.pid) == 10
    assert os.sched_getscheduler(idle.pid) == os.SCHED_IDLE
    if own_group is not None:
        assert Path(f"/proc/{nice.pid}/autogroup").read_text().split()[-1] == "10"
        assert Path(f"/proc/{idle.pid}/autogroup").read_text().split()[-1] == "19"
        assert autogroup.read_text() == own_group  # the test's own session is untouched


def test_spare_workers_leave_the_first_cpu_free(start_worker):
    mine = sorted(os.sched_getaffinity(0))
    default = start_worker()
    spare = start_worker(env={"OFFLOAD_WORKER_CPUS": "spare"})
    assert sorted(os.sched_getaffinity(default.pid)) == mine
    assert sorted(os.sched_getaffinity(spare.pid)) == (mine[1:] if len(mine) > 1 else mine)


NICE_VALUES = "must be 0 to 19, or idle"


@pytest.mark.parametrize(
    "name, value, allowed",
    [
        ("OFFLOAD_WORKER_CPUS", "half", "Input should be 'all' or 'spare'"),
        ("OFFLOAD_WORKER_NICE", "low", NICE_VALUES),
        ("OFFLOAD_WORKER_NICE", "-5", NICE_VALUES),
    ],
)
def test_a_wrong_priority_or_cpu_setting_stops_the_worker_before_it_registers(
    start_worker, redis_conn: redis.Redis, tmp_path: Path, name: str, value: str, allowed: str
):
    wrong = start_worker("--burst", env={name: value})
    assert wrong.wait(30) != 0
    assert f"{name}={value!r}: {allowed}" in (tmp_path / "worker-0.log").read_text()
    assert redis_conn.scard("rq:workers") == 0


def test_the_pubsub_thread_has_ended_when_unsubscribe_returns(redis_conn: redis.Redis):
    """RQ's order (unsubscribe, then stop) let the listener go back to a 60 s wait, and every
    such stop waited out a one-second join: the thread must be gone, not abandoned, each time."""
    from jobs.worker.inprocess import InProcessWorker

    worker = InProcessWorker(["default"], connection=redis_conn, serializer=JSONSerializer, job_class=TaskJob)
    for _ in range(200):
        worker.subscribe()
        wait_for(lambda: redis_conn.pubsub_numsub(worker.pubsub_channel_name)[0][1] == 1, message="the subscription")
        worker.unsubscribe()
        assert not worker.pubsub_thread.is_alive()
