"""Operating Offload: metrics, readiness, structured logs with request ids, the CLI
tools, the Procfile check, and the TLS option for managed Redis."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from app import create_app
from jobs.connection import redis_url
from scripts.embedded_redis import EmbeddedRedis
from tests.conftest import AUTH, BIN, ROOT, TOKEN, process_env
from tests.test_worker import enqueue, wait_until_ended


def scrape(client: FlaskClient) -> dict[str, list]:
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples: dict[str, list], name: str, **labels: str) -> float:
    matching = [s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())]
    assert matching, f"no sample {name} {labels}"
    return sum(matching)


def test_metrics_need_a_token(client: FlaskClient):
    assert client.get("/metrics").status_code == 401


def test_metrics_count_jobs_by_task_with_durations_and_waits(client: FlaskClient, worker):
    for _ in range(3):
        wait_until_ended(client, enqueue(client, "tests.fixtures.add", a=1, b=1))
    wait_until_ended(client, enqueue(client, "demo.fail"))
    samples = scrape(client)
    assert value(samples, "offload_jobs_enqueued_total", task="tests.fixtures.add") == 3
    assert value(samples, "offload_jobs_ended_total", task="tests.fixtures.add", status="finished") == 3
    assert value(samples, "offload_jobs_ended_total", task="demo.fail", status="failed") == 1
    assert value(samples, "offload_job_duration_seconds_count", task="tests.fixtures.add") == 3
    assert value(samples, "offload_job_duration_seconds_bucket", task="tests.fixtures.add", le="+Inf") == 3
    assert value(samples, "offload_job_queue_wait_seconds_count", task="tests.fixtures.add") == 3
    assert value(samples, "offload_queue_jobs", queue="default", state="failed") == 1
    assert value(samples, "offload_workers", state="idle") + value(samples, "offload_workers", state="busy") == 1
    assert value(samples, "offload_redis_up") == 1


def test_http_metrics_from_several_processes_add_up(app: Flask, client: FlaskClient, redis_url: str):
    other = create_app({"REDIS_URL": redis_url, "API_TOKENS": TOKEN})
    client.get("/api/tasks", headers=AUTH)
    other.test_client().get("/api/tasks", headers=AUTH)
    other.test_client().get("/api/jobs/unknown", headers=AUTH)
    for each in (app, other):
        each.extensions["offload.http_metrics"].flush()
    samples = scrape(client)
    assert value(samples, "offload_http_requests_total", route="/api/tasks", method="GET", status="200") == 2
    assert value(samples, "offload_http_requests_total", route="/api/jobs/<job_id>", status="404") == 1
    assert value(samples, "offload_http_request_duration_seconds_count", route="/api/tasks") == 2


def test_metrics_say_when_redis_is_down(client: FlaskClient, redis_server: EmbeddedRedis):
    redis_server.stop()
    samples = scrape(client)
    assert value(samples, "offload_redis_up") == 0


def test_readyz_names_queues_without_workers_or_schedulers(client: FlaskClient, start_worker, redis_conn):
    start_worker(env={"OFFLOAD_QUEUES": "high"})
    client.post("/api/jobs", json={"task": "tests.fixtures.describe", "args": {"name": "x"}}, headers=AUTH)
    body = client.get("/readyz").get_json()
    assert "queue 'low' has 1 job(s) and no worker listens to it" in body["problems"]
    assert body["queues"]["high"]["workers"] is True
    redis_conn.delete("rq:scheduler-lock:default")
    client.post("/api/jobs", json={"task": "demo.fail", "delay": 600}, headers=AUTH)
    problems = client.get("/readyz").get_json()["problems"]
    assert "queue 'default' has 1 scheduled job(s) and no scheduler is running" in problems


def test_request_id_travels_from_http_into_the_job_and_the_worker_logs(
    client: FlaskClient, start_worker, redis_conn: redis.Redis, tmp_path: Path
):
    start_worker(env={"LOG_FORMAT": "json"})
    response = client.post(
        "/api/jobs", json={"task": "tests.fixtures.chatty", "args": {"lines": 1}},
        headers={**AUTH, "X-Request-ID": "req-1234"},
    )  # fmt: skip
    assert response.headers["X-Request-ID"] == "req-1234"
    job_id = response.get_json()["id"]
    assert json.loads(redis_conn.hget(f"rq:job:{job_id}", "meta"))["request_id"] == "req-1234"
    wait_until_ended(client, job_id)
    log = (tmp_path / "worker-0.log").read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    task_line = next(line for line in lines if line["message"] == "line 0")
    assert task_line["request_id"] == "req-1234"
    assert task_line["job_id"] == job_id
    assert task_line["level"] == "INFO" and task_line["logger"] == "tests.fixtures"
    assert any(line["logger"].startswith("rq.") for line in lines)  # RQ's own lines are JSON too
    generated = client.get("/api/tasks", headers=AUTH).headers["X-Request-ID"]
    assert len(generated) == 32


def test_rq_info_reads_offloads_queues_and_workers(redis_url: str, worker, client: FlaskClient):
    wait_until_ended(client, enqueue(client, "tests.fixtures.describe", name="x"))
    result = subprocess.run(
        [str(BIN / "rq"), "info", "--config", "jobs.worker.rq_cli_config", "--serializer", "json", "--raw"],
        cwd=ROOT, env=process_env(redis_url), capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "queue low 0, 0 executing, 1 finished, 0 failed" in result.stdout
    assert "worker " in result.stdout and "high, default, low" in result.stdout


def test_doctor_reports_problems_and_exits_non_zero(app: Flask):
    result = app.test_cli_runner().invoke(args=["offload", "doctor"])
    assert result.exit_code == 1
    assert "no worker has sent a heartbeat" in result.output
    assert "version: 9." in result.output


def test_doctor_is_happy_with_a_worker(app: Flask, worker):
    result = app.test_cli_runner().invoke(args=["offload", "doctor", "--json"])
    report = json.loads(result.output)
    assert result.exit_code == 0, report["problems"]
    assert report["workers"] == 1
    assert report["config"]["API_TOKENS"] == "1 configured"


def test_doctor_advises_small_stream_nodes_without_failing(app: Flask, worker, redis_conn):
    assert json.loads(app.test_cli_runner().invoke(args=["offload", "doctor", "--json"]).output)["advice"] == []
    redis_conn.config_set("stream-node-max-bytes", 4096)  # Redis' default
    try:
        result = app.test_cli_runner().invoke(args=["offload", "doctor", "--json"])
    finally:
        redis_conn.config_set("stream-node-max-bytes", 512)
    report = json.loads(result.output)
    assert result.exit_code == 0, report["problems"]
    assert report["advice"] == [
        "stream-node-max-bytes is 4096: set 512 and each job's event and result streams take about a quarter"
        " of the memory (docs/operations.md, Redis)"
    ]


def test_worker_refuses_unknown_queues(redis_url: str):
    from scripts.procfile import procfile_command

    settings, argv = procfile_command("worker")
    result = subprocess.run(
        [*argv, "--burst"], cwd=ROOT, env=process_env(redis_url, OFFLOAD_QUEUES="high,urgent", **settings),
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode != 0
    assert "OFFLOAD_QUEUES names unknown queues ['urgent']" in result.stderr + result.stdout


@pytest.mark.slow
def test_procfile_check_script_passes():
    result = subprocess.run(
        [sys.executable, "scripts/check_procfile.py"], cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "the Procfile's processes start and become ready" in result.stdout


def test_tls_verification_is_turned_off_only_on_request():
    assert redis_url("rediss://:pw@host:6380/0", verify_tls=False) == "rediss://:pw@host:6380/0?ssl_cert_reqs=none"
    assert redis_url("rediss://:pw@host:6380/0", verify_tls=True) == "rediss://:pw@host:6380/0"
    assert redis_url("redis://host:6379/0", verify_tls=False) == "redis://host:6379/0"
    client = redis.Redis.from_url(redis_url("rediss://host:6380/0", verify_tls=False))
    assert client.connection_pool.connection_kwargs["ssl_cert_reqs"] == "none"
