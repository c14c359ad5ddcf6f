"""The records Offload's in-process worker leaves, value by value, against RQ's own SimpleWorker.

Each scenario runs twice on an empty Redis: once under ``rq.worker.SimpleWorker`` (RQ's code
writes every record) and once under ``InProcessWorker`` (a script writes the common ones).
Everything Redis then holds about the job is compared: its hash, its executions, the result
and event streams, the registries it is in with their scores, and every TTL. Ids, worker
names and times are replaced by placeholders; scores and TTLs may differ by a few seconds.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from rq import Queue
from rq.rate_limit import RateLimit
from rq.serializers import JSONSerializer

from jobs.job import TaskJob
from tests.conftest import AUTH, process_env, wait_for
from tests.test_lifecycle import hold_job, wait_status
from tests.test_worker import enqueue

RQ = str(Path(sys.executable).parent / "rq")
# RQ's default worker: it beats while a job runs, as Offload's does (SimpleWorker cannot, so it
# keeps a running job's records for the whole timeout; scripts/rq_suite/departures.toml).
RQ_WORKER, OFFLOAD_WORKER = "rq.worker.Worker", "jobs.worker.inprocess.InProcessWorker"
TOLERANCE = 3.0  # seconds, for scores and TTLs
_UUID = re.compile(rb"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}")
_ISO = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)?")
_EPOCH = re.compile(rb"(?<![\d.])1\d{9}(\.\d+)?(?![\d])")
_STREAM_ID = re.compile(rb"\d{13}-\d+")
_LONG_NUMBER = re.compile(rb"\d{13,}")  # the job list's reversed-time sort keys


class Near:
    """A number that matches another within TOLERANCE."""

    def __init__(self, value: float) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Near) and abs(self.value - other.value) <= TOLERANCE

    def __repr__(self) -> str:
        return f"~{self.value:.1f}"


def _text(value: bytes, names: dict[bytes, bytes]) -> str:
    for real, placeholder in names.items():
        value = value.replace(real, placeholder)
    value = _ISO.sub(b"<time>", value)
    value = _STREAM_ID.sub(b"<stream-id>", value)
    value = _UUID.sub(b"<uuid>", value)
    value = _EPOCH.sub(b"<epoch>", value)
    value = _LONG_NUMBER.sub(b"<n>", value)
    return value.decode("utf-8", "backslashreplace")


def _field(name: bytes, value: bytes, names: dict[bytes, bytes]) -> str:
    """A hash or stream field: the job's compressed call as text, a traceback as its last line
    (the two workers call the task from different frames)."""
    if name == b"data" and value.startswith(b"x\x9c"):  # a job hash's call, not an event's data
        value = zlib.decompress(value)
    elif name in (b"exc_info", b"exc_string"):
        try:
            value = zlib.decompress(base64.b64decode(value))
        except (ValueError, zlib.error):
            value = zlib.decompress(value) if value.startswith(b"x\x9c") else value
        value = value.strip().splitlines()[-1] if value.strip() else value
    return _text(value, names)


def _ttl(connection: redis.Redis, key: bytes) -> object:
    ttl = connection.pttl(key)
    return ttl if ttl < 0 else Near(ttl / 1000)


def snapshot(connection: redis.Redis, job_ids: list[str]) -> dict[str, Any]:
    """What Redis holds about ``job_ids``: every key naming one, and every registry or queue holding one."""
    names: dict[bytes, bytes] = {}
    for index, job_id in enumerate(job_ids):
        names[job_id.encode()] = f"<job{index}>".encode()
        workers = [connection.hget(f"rq:job:{job_id}", "worker_name")]
        workers += [entry.get(b"worker_name") for _, entry in connection.xrange(f"rq:results:{job_id}")]
        names.update({worker: b"<worker>" for worker in workers if worker})
    ids = [job_id.encode() for job_id in job_ids]
    now = time.time()
    found: dict[str, Any] = {}
    for key in sorted(connection.scan_iter(count=1000)):
        if key.startswith((b"rq:worker:", b"rq:workers")):
            continue
        kind = connection.type(key).decode()
        named = any(job_id in key for job_id in ids)
        if kind == "hash" and named:
            value: Any = {_text(k, names): _field(k, v, names) for k, v in connection.hgetall(key).items()}
        elif kind == "stream" and named:
            value = [
                {_text(k, names): _field(k, v, names) for k, v in entry.items()} for _, entry in connection.xrange(key)
            ]
        elif kind == "string" and named:
            value = _text(connection.get(key), names)
        elif kind == "zset":
            members = connection.zrange(key, 0, -1, withscores=True)
            if not named and not any(job_id in member for member, _ in members for job_id in ids):
                continue
            value = {
                _text(member, names): "inf" if score == float("inf") else Near(score - now if score > 1e9 else score)
                for member, score in members
            }
        elif kind in ("list", "set"):
            members = connection.lrange(key, 0, -1) if kind == "list" else sorted(connection.smembers(key))
            if not named and not any(job_id in member for member in members for job_id in ids):
                continue
            value = [_text(member, names) for member in members]
        else:
            continue
        found[_text(key, names)] = {"type": kind, "value": value, "ttl": _ttl(connection, key)}
    return found


def run_worker(redis_url: str, worker_class: str, *extra: str) -> subprocess.Popen[bytes]:
    argv = [RQ, "worker", "--config", "jobs.worker.rq_cli_config", "--worker-class", worker_class, "--job-class",
            "jobs.job.TaskJob", "--serializer", "json", "--worker-ttl", "30", "--job-monitoring-interval", "5",
            *extra]  # fmt: skip
    return subprocess.Popen(
        argv, env=process_env(redis_url), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def burst(redis_url: str, worker_class: str) -> None:
    assert run_worker(redis_url, worker_class, "--burst").wait(60) == 0


Scenario = Callable[[FlaskClient, redis.Redis, str, str, Path], list[str]]


def finished(client: FlaskClient, connection: redis.Redis, redis_url: str, worker: str, tmp: Path) -> list[str]:
    job_id = enqueue(client, "tests.fixtures.add", a=2, b=3)
    burst(redis_url, worker)
    return [job_id]


def failed(client: FlaskClient, connection: redis.Redis, redis_url: str, worker: str, tmp: Path) -> list[str]:
    job_id = enqueue(client, "tests.fixtures.needs_file", path=str(tmp / "absent"))
    burst(redis_url, worker)
    return [job_id]


def retried(client: FlaskClient, connection: redis.Redis, redis_url: str, worker: str, tmp: Path) -> list[str]:
    """Failed once, scheduled for its next try (1 s later)."""
    job_id = enqueue(client, "tests.fixtures.flaky", counter=str(tmp / "count"), succeed_on=3)
    burst(redis_url, worker)
    return [job_id]


def with_dependents(client: FlaskClient, connection: redis.Redis, redis_url: str, worker: str, tmp: Path) -> list[str]:
    parent = enqueue(client, "tests.fixtures.add", a=1, b=1)
    response = client.post(
        "/api/jobs", json={"task": "tests.fixtures.add", "args": {"a": 2, "b": 2}, "depends_on": [parent]}, headers=AUTH
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    burst(redis_url, worker)
    return [parent, response.get_json()["id"]]


def rate_limited(client: FlaskClient, connection: redis.Redis, redis_url: str, worker: str, tmp: Path) -> list[str]:
    queue = Queue("default", connection=connection, job_class=TaskJob, serializer=JSONSerializer)
    job = queue.enqueue("tests.fixtures.add", kwargs={"a": 1, "b": 2}, rate_limit=RateLimit("adds", 5))
    burst(redis_url, worker)
    return [job.id]


def requeued(client: FlaskClient, connection: redis.Redis, redis_url: str, worker: str, tmp: Path) -> list[str]:
    """Failed, retried from the API, then finished."""
    path = tmp / "needed"
    job_id = enqueue(client, "tests.fixtures.needs_file", path=str(path))
    burst(redis_url, worker)
    path.write_text("here")
    assert client.post(f"/api/jobs/{job_id}/retry", headers=AUTH).status_code in (200, 202)
    burst(redis_url, worker)
    return [job_id]


def _while_running(
    client: FlaskClient, redis_url: str, worker: str, tmp: Path, then: Callable[[str, Path], None]
) -> list[str]:
    process = run_worker(redis_url, worker)
    try:
        job_id, pid_file, release = hold_job(client, tmp)
        wait_for(pid_file.exists, message="the job to start")
        then(job_id, release)
        return [job_id]
    finally:
        process.terminate()
        process.wait(30)


def started(client: FlaskClient, connection: redis.Redis, redis_url: str, worker: str, tmp: Path) -> list[str]:
    """Mid-run: compared while the job runs."""
    found: list[dict[str, Any]] = []

    def look(job_id: str, release: Path) -> None:
        time.sleep(0.2)  # past the start's own writes: both workers have finished starting it
        found.append(snapshot(connection, [job_id]))
        release.touch()
        wait_status(client, job_id, "finished")

    ids = _while_running(client, redis_url, worker, tmp, look)
    started.snapshots.append(found[0])  # type: ignore[attr-defined]
    return ids


started.snapshots = []  # type: ignore[attr-defined]


def stopped(client: FlaskClient, connection: redis.Redis, redis_url: str, worker: str, tmp: Path) -> list[str]:
    def stop(job_id: str, release: Path) -> None:
        assert client.post(f"/api/jobs/{job_id}/cancel", headers=AUTH).status_code in (200, 202)
        wait_status(client, job_id, "stopped")

    return _while_running(client, redis_url, worker, tmp, stop)


SCENARIOS: list[Scenario] = [finished, failed, retried, with_dependents, rate_limited, requeued, stopped]

# Where Offload's records differ from RQ's on purpose: (scenario, "key field") -> why. RQ's
# forking worker records a stop from the parent, which never saw the job start; RQ's
# in-process path (SimpleWorker) cannot stop a job at all. Offload's stop is raised in the task.
_STOP = "the stop is recorded by the process that ran the job, so the job keeps its worker, last beat and end"
DIFFERENCES: dict[tuple[str, str], str] = {
    ("stopped", "rq:job:<job0> ended_at"): _STOP,
    ("stopped", "rq:job:<job0> last_heartbeat"): _STOP,
    ("stopped", "rq:job:<job0> worker_name"): _STOP,
    ("stopped", "rq:results:<job0>"): "the result names JobInterrupted raised in the task, and the execution's end",
}


def _compare(by_rq: dict[str, Any], by_offload: dict[str, Any]) -> list[str]:
    problems = []
    for key in sorted(set(by_rq) | set(by_offload)):
        if key not in by_offload:
            problems.append(f"{key}: RQ writes it, Offload does not: {by_rq[key]}")
            continue
        if key not in by_rq:
            problems.append(f"{key}: Offload writes it, RQ does not: {by_offload[key]}")
            continue
        left, right = by_rq[key], by_offload[key]
        if left["type"] != right["type"] or left["ttl"] != right["ttl"]:
            problems.append(f"{key}: RQ {left['type']} ttl {left['ttl']}, Offload {right['type']} ttl {right['ttl']}")
        if isinstance(left["value"], dict) and isinstance(right["value"], dict):
            for field in sorted(set(left["value"]) | set(right["value"])):
                if left["value"].get(field) != right["value"].get(field):
                    problems.append(
                        f"{key} {field}: RQ {left['value'].get(field)!r}, Offload {right['value'].get(field)!r}"
                    )
        elif left["value"] != right["value"]:
            problems.append(f"{key}: RQ {left['value']!r}, Offload {right['value']!r}")
    return problems


def _unexplained(scenario: str, problems: list[str]) -> list[str]:
    """The problems not listed in DIFFERENCES; a listed difference that is gone is one too."""
    explained = {what for listed, what in DIFFERENCES if listed == scenario}
    seen = {problem.split(": ", 1)[0] for problem in problems}
    left = [problem for problem in problems if problem.split(": ", 1)[0] not in explained]
    return left + [f"{what}: listed in DIFFERENCES but the same now" for what in sorted(explained - seen)]


@pytest.mark.parametrize("scenario", [*SCENARIOS, started], ids=lambda scenario: scenario.__name__)
def test_offloads_worker_leaves_what_rqs_own_worker_leaves(
    scenario: Scenario, client: FlaskClient, redis_conn: redis.Redis, redis_url: str, tmp_path: Path
):
    results = []
    started.snapshots.clear()  # type: ignore[attr-defined]
    scratch = tmp_path / "scratch"  # the same paths in both runs: they are in the job's arguments
    for worker in (RQ_WORKER, OFFLOAD_WORKER):
        redis_conn.flushdb()
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
        ids = scenario(client, redis_conn, redis_url, worker, scratch)
        results.append(snapshot(redis_conn, ids))
    if scenario is started:
        results = started.snapshots  # type: ignore[attr-defined]
    by_rq, by_offload = results
    assert by_rq, "the scenario left nothing to compare"
    problems = _unexplained(scenario.__name__, _compare(by_rq, by_offload))
    assert not problems, "\n".join(problems)
