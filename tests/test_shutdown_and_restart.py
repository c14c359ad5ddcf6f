"""Nothing lost on a stop: SIGTERM hands running work back, and a Redis restart keeps
queued and scheduled jobs while workers reconnect by themselves."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient

from app import create_app
from scripts.embedded_redis import EmbeddedRedis
from tests.conftest import AUTH, TOKEN, start_procfile_process, stop_process, wait_for
from tests.test_lifecycle import hold_job, wait_status
from tests.test_worker import pid_alive

pytestmark = pytest.mark.slow


def test_sigterm_hands_a_running_job_back_instead_of_failing_it(
    client: FlaskClient, start_worker, redis_conn: redis.Redis, tmp_path: Path
):
    worker = start_worker(env={"OFFLOAD_SHUTDOWN_GRACE": "1"})
    job_id, pid_file, release = hold_job(client, tmp_path)
    horse = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), message="the job to start"))
    os.kill(worker.pid, signal.SIGTERM)
    worker.wait(20)  # well inside Heroku's 30 s
    assert not pid_alive(horse)
    handed_back = client.get(f"/api/jobs/{job_id}", headers=AUTH).get_json()
    assert handed_back["status"] == "queued"
    assert handed_back["error"] is None
    events = [fields[b"data"].decode() for _, fields in redis_conn.xrange(f"offload:job:{job_id}:events")]
    assert "handed back: its worker was shutting down" in events[-1]
    release.touch()
    start_worker()
    assert wait_status(client, job_id, "finished")["result"] == "released"


def test_a_job_that_finishes_within_the_grace_is_not_interrupted(client: FlaskClient, start_worker, tmp_path: Path):
    worker = start_worker(env={"OFFLOAD_SHUTDOWN_GRACE": "20"})
    job_id, pid_file, release = hold_job(client, tmp_path)
    wait_for(pid_file.exists, message="the job to start")
    os.kill(worker.pid, signal.SIGTERM)
    time.sleep(0.5)
    release.touch()
    worker.wait(20)
    assert client.get(f"/api/jobs/{job_id}", headers=AUTH).get_json()["status"] == "finished"


def test_a_second_sigterm_hands_the_job_back_at_once(client: FlaskClient, start_worker, tmp_path: Path):
    worker = start_worker(env={"OFFLOAD_SHUTDOWN_GRACE": "600"})
    job_id, pid_file, _release = hold_job(client, tmp_path)
    wait_for(pid_file.exists, message="the job to start")
    os.kill(worker.pid, signal.SIGTERM)
    time.sleep(1.5)  # RQ ignores a second signal within one second of the first
    os.kill(worker.pid, signal.SIGTERM)
    worker.wait(20)
    assert client.get(f"/api/jobs/{job_id}", headers=AUTH).get_json()["status"] == "queued"


def test_cron_stops_cleanly_on_sigterm(redis_url: str, tmp_path: Path):
    cron = start_procfile_process("cron", redis_url, tmp_path / "cron.log")
    connection = redis.Redis.from_url(redis_url)
    wait_for(lambda: connection.zcard("rq:cron_schedulers") > 0, message="cron to register")
    os.kill(cron.pid, signal.SIGTERM)
    assert cron.wait(10) == 0
    stop_process(cron)
    connection.close()


def test_a_redis_restart_keeps_jobs_and_workers_reconnect(tmp_path: Path):
    server = EmbeddedRedis(tmp_path / "valkey", persistent=True)
    server.start()
    client = create_app({"REDIS_URL": server.url, "API_TOKENS": TOKEN}).test_client()
    queued = client.post("/api/jobs", json={"task": "tests.fixtures.add", "args": {"a": 1, "b": 2}}, headers=AUTH)
    scheduled = client.post("/api/jobs", json={"task": "demo.noop", "delay": 3600}, headers=AUTH)
    connection = redis.Redis.from_url(server.url)
    connection.execute_command("BGREWRITEAOF")
    time.sleep(1.2)  # appendfsync everysec: the last second is on disk
    server.stop()
    server.start()
    for response in (queued, scheduled):
        document = client.get(response.headers["Location"], headers=AUTH).get_json()
        assert document["status"] in ("queued", "scheduled")

    worker = start_procfile_process("worker", server.url, tmp_path / "worker.log")
    try:
        wait_for(lambda: connection.scard("rq:workers") == 1, message="the worker to register")
        assert wait_status(client, queued.get_json()["id"], "finished")["result"] == 3
        server.stop()
        time.sleep(2)
        server.start()
        restarted = time.monotonic()
        after = client.post("/api/jobs", json={"task": "tests.fixtures.add", "args": {"a": 2, "b": 2}}, headers=AUTH)
        done = wait_status(client, after.get_json()["id"], "finished", timeout=30)
        assert done["result"] == 4
        assert worker.poll() is None  # the same worker process reconnected
        print(f"picked up {time.monotonic() - restarted:.1f}s after Redis came back")
    finally:
        stop_process(worker)
        connection.close()
        server.stop()


def test_cron_keeps_enqueuing_after_a_redis_restart(tmp_path: Path):
    server = EmbeddedRedis(tmp_path / "valkey", persistent=True)
    server.start()
    connection = redis.Redis.from_url(server.url)
    cron = start_procfile_process("cron", server.url, tmp_path / "cron.log")

    def heartbeats() -> int:
        try:
            return sum(
                1
                for key in connection.scan_iter("rq:job:*")
                if connection.hget(key, "description") == b"tests.fixtures.heartbeat"
            )
        except redis.ConnectionError:
            return 0

    try:
        wait_for(lambda: heartbeats() >= 1, timeout=20, message="cron to enqueue")
        server.stop()
        time.sleep(2)
        server.start()
        before = heartbeats()
        wait_for(
            lambda: heartbeats() > before,
            timeout=5,
            interval=0.1,
            message="cron to enqueue within 5 s of Redis's return",
        )
        assert cron.poll() is None
    finally:
        stop_process(cron)
        connection.close()
        server.stop()


def test_web_stops_cleanly_on_sigterm(redis_url: str, tmp_path: Path):
    from scripts.embedded_redis import free_port

    port = free_port()
    web = start_procfile_process("web", redis_url, tmp_path / "web.log", PORT=str(port), WEB_HOST="127.0.0.1")
    import requests

    wait_for(lambda: _answers(requests, port), timeout=20, message="gunicorn to answer")
    os.kill(web.pid, signal.SIGTERM)
    assert web.wait(30) == 0  # inside Heroku's 30 s
    stop_process(web)


def _answers(requests_module, port: int) -> bool:
    try:
        return requests_module.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok
    except requests_module.RequestException:
        return False
