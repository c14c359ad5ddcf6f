"""Alert rules firing and resolving, told once per transition through Offload's own webhook and
mail jobs (run by Offload's worker in this process, received by local peers); the series behind
the charts; the Prometheus rules file; the alerts on the pages and at /metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import yaml
from flask import Flask
from flask.testing import FlaskClient
from rq.exceptions import StopRequested

from jobs import settings
from jobs.alerts import evaluation
from jobs.cron import entries
from tests.conftest import AUTH, wait_for
from tests.http_peers import Answer, HttpPeer
from tests.mail_peer import Mailbox
from tests.test_pages import csrf_of, log_in


@pytest.fixture
def told(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[HttpPeer, Mailbox]]:
    """A webhook receiver and a mailbox, configured as the alert channels."""
    with HttpPeer() as peer, Mailbox.serving() as mailbox:
        monkeypatch.setenv("ALERT_WEBHOOK_URL", peer.script("/hooks/alerts", Answer(200)))
        monkeypatch.setenv("ALERT_WEBHOOK_SECRET", "alert-signing-secret")
        monkeypatch.setenv("ALERT_EMAIL_TO", "ops@example.com")
        monkeypatch.setenv("SMTP_URL", mailbox.url)
        settings.reload()
        yield peer, mailbox


def rules(monkeypatch: pytest.MonkeyPatch, *declared: dict) -> None:
    monkeypatch.setenv("ALERT_RULES", json.dumps(list(declared)))
    settings.reload()


def state(redis_conn: redis.Redis, alert: str) -> str:
    return evaluation.read_state(redis_conn)[alert].state


def enqueue(client: FlaskClient, task: str, queue: str = "default", **args: object) -> str:
    response = client.post("/api/jobs", json={"task": task, "args": args, "queue": queue}, headers=AUTH)
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def test_a_firing_alert_is_told_once_by_webhook_and_mail_then_again_when_it_resolves(
    client: FlaskClient,
    redis_conn: redis.Redis,
    run_jobs: Callable[..., bool],
    told: tuple[HttpPeer, Mailbox],
    monkeypatch: pytest.MonkeyPatch,
):
    peer, mailbox = told
    rules(monkeypatch, {"kind": "queue_paused", "queue": "low", "longer_than_seconds": 0})
    client.post("/api/queues/low/pause", headers=AUTH)
    now = time.time() + 1
    [fired] = evaluation.evaluate(redis_conn, now)
    assert fired.alert == "queue_paused:low" and fired.state == "firing" and len(fired.notifications) == 2
    assert evaluation.evaluate(redis_conn, now + 10) == []  # still firing: not told again
    run_jobs()
    [hook] = peer.received
    body = json.loads(hook.body)
    assert body["text"].startswith("[FIRING] queue_paused:low: queue low has been paused for")
    assert body["alert"]["state"] == "firing" and hook.headers["Offload-Signature"].startswith("t=")
    [mail] = mailbox.messages
    assert mail["Subject"].startswith("[FIRING] queue_paused:low") and mail["To"] == "ops@example.com"
    client.post("/api/queues/low/resume", headers=AUTH)
    [resolved] = evaluation.evaluate(redis_conn, now + 20)
    assert resolved.state == "ok"
    run_jobs()
    assert json.loads(peer.received[-1].body)["text"].startswith("[RESOLVED] queue_paused:low")
    assert len(peer.received) == 2 and len(mailbox.messages) == 2


def test_a_firing_alert_is_told_again_after_the_repeat_interval(
    client: FlaskClient, redis_conn: redis.Redis, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("ALERT_REPEAT_SECONDS", "60")
    rules(monkeypatch, {"kind": "queue_paused", "queue": "high", "longer_than_seconds": 0})
    client.post("/api/queues/high/pause", headers=AUTH)
    now = time.time() + 1
    assert len(evaluation.evaluate(redis_conn, now)) == 1
    assert evaluation.evaluate(redis_conn, now + 30) == []
    assert [alert.state for alert in evaluation.evaluate(redis_conn, now + 61)] == ["firing"]


def test_no_worker_fires_after_its_for_seconds_and_resolves_once_the_work_is_done(
    client: FlaskClient, redis_conn: redis.Redis, run_jobs: Callable[..., bool], monkeypatch: pytest.MonkeyPatch
):
    rules(monkeypatch, {"kind": "no_worker", "queue": "*", "for_seconds": 30})
    enqueue(client, "tests.fixtures.add", a=1, b=2)
    now = time.time()
    evaluation.evaluate(redis_conn, now)
    assert state(redis_conn, "no_worker:default") == "pending"
    assert state(redis_conn, "no_worker:high") == "ok"  # no work there
    [fired] = evaluation.evaluate(redis_conn, now + 31)
    assert fired.alert == "no_worker:default" and fired.state == "firing"
    run_jobs()
    evaluation.evaluate(redis_conn, now + 32)
    assert state(redis_conn, "no_worker:default") == "ok"


def test_queue_latency_fires_while_the_oldest_job_waits_too_long(
    client: FlaskClient, redis_conn: redis.Redis, run_jobs: Callable[..., bool], monkeypatch: pytest.MonkeyPatch
):
    rules(monkeypatch, {"kind": "queue_latency", "queue": "low", "above_seconds": 0.2})
    enqueue(client, "tests.fixtures.add", queue="low", a=1, b=2)
    wait_for(lambda: evaluation.evaluate(redis_conn), message="the waiting job to pass 0.2 s")
    assert state(redis_conn, "queue_latency:low") == "firing"
    run_jobs()
    evaluation.evaluate(redis_conn)
    assert state(redis_conn, "queue_latency:low") == "ok"


def test_a_tasks_failure_ratio_fires_above_its_threshold_and_resolves_below_it(
    client: FlaskClient,
    redis_conn: redis.Redis,
    run_jobs: Callable[..., bool],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
):
    task = "tests.fixtures.needs_file"  # fails until its file exists
    rules(monkeypatch, {"kind": "failure_ratio", "task": task, "above": 0.5, "over_minutes": 5, "min_jobs": 2})
    needed = tmp_path / "needed.txt"
    enqueue(client, task, path=str(needed))
    run_jobs()
    evaluation.evaluate(redis_conn)
    assert state(redis_conn, f"failure_ratio:{task}") == "ok"  # one job: fewer than min_jobs
    for _ in range(2):
        enqueue(client, task, path=str(needed))
    run_jobs()
    [fired] = evaluation.evaluate(redis_conn)
    assert fired.state == "firing" and fired.summary.endswith("3 of 3 job(s) failed over 5 min")
    needed.write_text("here")
    for _ in range(4):
        enqueue(client, task, path=str(needed))
    run_jobs()
    [resolved] = evaluation.evaluate(redis_conn)
    assert resolved.state == "ok" and resolved.summary.endswith("3 of 7 job(s) failed over 5 min")


def test_a_cron_entry_that_missed_its_run_or_failed_fires_and_resolves_when_it_runs_well(
    redis_conn: redis.Redis, run_jobs: Callable[..., bool], monkeypatch: pytest.MonkeyPatch
):
    rules(monkeypatch, {"kind": "cron_missed", "entry": "tests.fixtures.heartbeat"})
    job = entries.run_now(redis_conn, "tests.fixtures.heartbeat")
    run_jobs()
    late = job.created_at.timestamp() + 10
    [fired] = evaluation.evaluate(redis_conn, late)
    assert fired.state == "firing" and "should have run at" in fired.summary
    entries.run_now(redis_conn, "tests.fixtures.heartbeat")
    run_jobs()
    [resolved] = evaluation.evaluate(redis_conn)
    assert resolved.state == "ok"


def test_redis_memory_fires_above_its_ratio_of_maxmemory(redis_conn: redis.Redis, monkeypatch: pytest.MonkeyPatch):
    rules(monkeypatch, {"kind": "redis_memory", "above_ratio": 0.5})
    before = redis_conn.config_get("maxmemory")["maxmemory"]
    try:
        used = int(redis_conn.info("memory")["used_memory"])
        redis_conn.config_set("maxmemory", str(int(used * 1.5)))
        evaluation.evaluate(redis_conn)
        assert state(redis_conn, "redis_memory") == "firing"
        redis_conn.config_set("maxmemory", str(used * 100))
        evaluation.evaluate(redis_conn)
        assert state(redis_conn, "redis_memory") == "ok"
    finally:
        redis_conn.config_set("maxmemory", before)


def test_only_one_evaluation_runs_a_period_however_many_cron_processes_tick(
    client: FlaskClient, redis_conn: redis.Redis, monkeypatch: pytest.MonkeyPatch
):
    assert client.get("/api/status", headers=AUTH).get_json()["alerts_evaluated"] is False  # no cron yet
    monkeypatch.setenv("ALERT_CHECK_SECONDS", "30")
    settings.reload()
    assert evaluation.tick(redis_conn) is True
    assert evaluation.tick(redis_conn) is False
    assert client.get("/api/status", headers=AUTH).get_json()["alerts_evaluated"] is True
    assert evaluation.evaluation_is_stale(redis_conn, time.time() + 5 * 30 + 1)


def test_firing_alerts_show_on_every_page_in_the_api_and_in_metrics(
    app: Flask, client: FlaskClient, redis_conn: redis.Redis, monkeypatch: pytest.MonkeyPatch
):
    rules(monkeypatch, {"kind": "queue_paused", "queue": "low", "longer_than_seconds": 0})
    client.post("/api/queues/low/pause", headers=AUTH)
    evaluation.evaluate(redis_conn, time.time() + 1)
    assert client.get("/api/status", headers=AUTH).get_json()["firing"] == ["queue_paused:low"]
    listed = client.get("/api/alerts", headers=AUTH).get_json()
    assert [alert["state"] for alert in listed["alerts"]] == ["firing"] and listed["channels"] == []
    metrics = client.get("/metrics", headers=AUTH).get_data(as_text=True)
    assert 'offload_alert_firing{rule="queue_paused:low"} 1.0' in metrics
    assert 'offload_queue_paused_seconds{queue="low"}' in metrics
    log_in(client)
    page = client.get("/jobs").get_data(as_text=True)
    assert "1 alert firing</strong>: queue_paused:low" in page
    alerts_page = client.get("/alerts").get_data(as_text=True)
    assert 'id="alert-queue_paused:low" data-state="firing"' in alerts_page
    answer = client.post("/alerts/test", data={"csrf_token": csrf_of(client, "/alerts")})
    assert "No channel is configured" in client.get(answer.location).get_data(as_text=True)
    cli = app.test_cli_runner()
    assert "queue_paused:low: FIRING" in cli.invoke(args=["offload", "alerts"]).output
    assert cli.invoke(args=["offload", "test-alert"]).exit_code == 1


def test_a_test_notification_is_a_job_per_channel(
    client: FlaskClient, run_jobs: Callable[..., bool], told: tuple[HttpPeer, Mailbox]
):
    peer, mailbox = told
    answer = client.post("/api/alerts/test", headers=AUTH)
    assert answer.status_code == 202 and len(answer.get_json()["jobs"]) == 2
    run_jobs()
    assert json.loads(peer.received[0].body)["text"] == "[TEST] test: a test notification from Offload"
    assert mailbox.messages[0]["Subject"] == "[TEST] test: a test notification from Offload"


def test_the_prometheus_rules_file_has_one_rule_per_declared_rule(app: Flask):
    printed = app.test_cli_runner().invoke(args=["offload", "alert-rules"]).output
    rules_file = yaml.safe_load(printed)
    [group] = rules_file["groups"]
    assert [rule["alert"] for rule in group["rules"]] == [
        "OffloadAlertsNotEvaluated",
        "OffloadNoWorker",
        "OffloadQueueLatency",
        "OffloadFailureRatio",
        "OffloadCronMissed",
        "OffloadRedisMemory",
        "OffloadQueuePaused",
    ]
    assert group["rules"][0]["expr"] == "time() - offload_alerts_evaluated_timestamp_seconds > 75"
    assert group["rules"][2]["expr"] == "offload_queue_oldest_job_age_seconds > 300"
    assert group["rules"][1]["for"] == "60s"


def test_the_series_count_durations_and_waits_per_task_and_queue(
    client: FlaskClient, run_jobs: Callable[..., bool], redis_conn: redis.Redis
):
    for n in range(3):
        enqueue(client, "tests.fixtures.add", queue="low", a=n, b=1)
    enqueue(client, "tests.fixtures.fail_with", message="no")
    run_jobs()
    found = client.get("/api/stats?range=hour&task=tests.fixtures.add", headers=AUTH).get_json()
    assert found["step_seconds"] == 60 and len(found["points"]) == 60
    last = found["points"][-1]
    assert (last["enqueued"], last["finished"], last["failed"]) == (3, 3, 0)
    assert last["duration_p95"] is not None and last["duration_max"] is not None and last["wait_p50"] is not None
    every = client.get("/api/stats", headers=AUTH).get_json()["points"][-1]
    assert (every["finished"], every["failed"], every["failure_ratio"]) == (3, 1, 0.25)
    low = client.get("/api/stats?range=day&queue=low", headers=AUTH).get_json()
    assert low["step_seconds"] == 600 and sum(point["finished"] for point in low["points"]) == 3
    month = client.get("/api/stats?range=month", headers=AUTH).get_json()
    assert month["step_seconds"] == 6 * 3600 and sum(point["finished"] for point in month["points"]) == 3
    assert client.get("/api/stats?range=year", headers=AUTH).status_code == 422
    assert client.get("/api/stats?task=nope", headers=AUTH).status_code == 404
    assert client.get("/api/stats?queue=nope", headers=AUTH).status_code == 422
    log_in(client)
    home = client.get("/").get_data(as_text=True)
    assert 'id="home-throughput"' in home and "finished: 3 in all" in home
    trends = client.get("/trends?task=tests.fixtures.add&range=day").get_data(as_text=True)
    assert "Trends: task tests.fixtures.add" in trends and "Duration" in trends and "<polyline" in trends


def test_a_stop_request_during_an_evaluation_reaches_the_cron_process(
    redis_conn: redis.Redis, monkeypatch: pytest.MonkeyPatch
):
    """SIGTERM's handler raises StopRequested wherever the cron process is, an evaluation included:
    the tick must let it through, or the process would not stop."""

    def stopped(*args: object) -> None:
        raise StopRequested

    monkeypatch.setattr(evaluation, "evaluate", stopped)
    with pytest.raises(StopRequested):
        evaluation.tick(redis_conn)
