"""Alerts with real processes: the cron process evaluates, a worker delivers each notification
(a webhook to a local HTTP server, a mail to a local SMTP server). Each rule fires and resolves:
no worker and a job waiting too long (none started, then one), Redis near its maxmemory, a paused
queue, a task failing repeatedly, a skipped cron run."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient

from tests.conftest import AUTH, BIN, ROOT, process_env, start_procfile_process, stop_process, wait_for
from tests.http_peers import Answer, HttpPeer
from tests.mail_peer import Mailbox

pytestmark = pytest.mark.processes
RULES = [
    {"kind": "no_worker", "queue": "low", "for_seconds": 1},
    {"kind": "queue_latency", "queue": "low", "above_seconds": 1},
    {"kind": "redis_memory", "above_ratio": 0.5},
    {"kind": "queue_paused", "queue": "default", "longer_than_seconds": 1},
    {"kind": "failure_ratio", "task": "tests.fixtures.needs_file", "above": 0.5, "over_minutes": 5, "min_jobs": 2},
    {"kind": "cron_missed", "entry": "tests.fixtures.heartbeat"},
]


@pytest.fixture
def alerting(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[HttpPeer, Mailbox, dict[str, str]]]:
    with HttpPeer() as peer, Mailbox.serving() as mailbox:
        env = {
            "ALERT_RULES": json.dumps(RULES),
            "ALERT_CHECK_SECONDS": "0.5",
            "ALERT_WEBHOOK_URL": peer.script("/alerts", Answer(200)),
            "ALERT_EMAIL_TO": "ops@example.com",
            "SMTP_URL": mailbox.url,
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield peer, mailbox, env


def told(peer: HttpPeer) -> Counter[str]:
    """Each notification the receiver got, as ``STATE alert``."""
    texts = [json.loads(hook.body)["text"] for hook in peer.received]
    return Counter(text.split(": ", 1)[0].replace("[", "").replace("] ", " ") for text in texts)


def test_each_rule_fires_and_resolves_told_once_per_transition_by_webhook_and_mail(
    client: FlaskClient,
    redis_url: str,
    tmp_path: Path,
    start_worker: Callable[..., subprocess.Popen[bytes]],
    alerting: tuple[HttpPeer, Mailbox, dict[str, str]],
    redis_conn: redis.Redis,
):
    peer, mailbox, env = alerting

    def enqueue(task: str, queue: str = "default", **args: object) -> str:
        answer = client.post("/api/jobs", json={"task": task, "args": args, "queue": queue}, headers=AUTH)
        assert answer.status_code == 202, answer.get_json()
        return answer.get_json()["id"]

    def state(alert: str) -> str:
        listed = {each["alert"]: each for each in client.get("/api/alerts", headers=AUTH).get_json()["alerts"]}
        return listed[alert]["state"] if alert in listed else "unknown"

    cron = start_procfile_process("cron", redis_url, tmp_path / "cron.log", **env)
    try:
        # No worker: a job waits in low, and nobody is there to take it.
        enqueue("tests.fixtures.add", "low", a=1, b=2)
        wait_for(lambda: state("no_worker:low") == "firing", message="no_worker:low to fire")
        wait_for(lambda: state("queue_latency:low") == "firing", message="the job's wait to pass a second")
        start_worker(env=env)  # delivers the notifications waiting for it, then runs the job
        wait_for(lambda: told(peer)["RESOLVED no_worker:low"] == 1, message="no_worker:low to resolve")
        wait_for(lambda: told(peer)["RESOLVED queue_latency:low"] == 1, message="queue_latency:low to resolve")

        # Redis past half its maxmemory, then given room.
        before = redis_conn.config_get("maxmemory")["maxmemory"]
        try:
            used = int(redis_conn.info("memory")["used_memory"])
            redis_conn.config_set("maxmemory", str(int(used * 1.5)))
            wait_for(lambda: told(peer)["FIRING redis_memory"] == 1, message="the memory to be told")
            redis_conn.config_set("maxmemory", str(used * 100))
            wait_for(lambda: told(peer)["RESOLVED redis_memory"] == 1, message="the room to be told")
        finally:
            redis_conn.config_set("maxmemory", before)

        # A paused queue, for longer than a second.
        client.post("/api/queues/default/pause", headers=AUTH)
        wait_for(lambda: told(peer)["FIRING queue_paused:default"] == 1, message="the pause to be told")
        client.post("/api/queues/default/resume", headers=AUTH)
        wait_for(lambda: told(peer)["RESOLVED queue_paused:default"] == 1, message="the resume to be told")

        # A task failing repeatedly, then succeeding enough.
        needed = tmp_path / "needed.txt"
        for _ in range(3):
            enqueue("tests.fixtures.needs_file", path=str(needed))
        wait_for(lambda: told(peer)["FIRING failure_ratio:tests.fixtures.needs_file"] == 1, message="the failures")
        needed.write_text("here")
        for _ in range(4):
            enqueue("tests.fixtures.needs_file", path=str(needed))
        wait_for(lambda: told(peer)["RESOLVED failure_ratio:tests.fixtures.needs_file"] == 1, message="the successes")
    finally:
        stop_process(cron)

    # A skipped cron run: with the cron process gone, its every-second entry is overdue. Any
    # process may evaluate (the CLI does here); a new cron process runs the entry and resolves it.
    def evaluate() -> str:
        run = subprocess.run(
            [str(BIN / "flask"), "--app", "app", "offload", "evaluate-alerts"],
            cwd=ROOT,
            env=process_env(redis_url, **env),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        return run.stdout

    wait_for(lambda: "cron_missed:tests.fixtures.heartbeat firing" in evaluate(), timeout=20, message="the miss")
    cron = start_procfile_process("cron", redis_url, tmp_path / "cron-again.log", **env)
    try:
        wait_for(lambda: told(peer)["RESOLVED cron_missed:tests.fixtures.heartbeat"] == 1, message="the cron again")
    finally:
        stop_process(cron)
    expected = {
        f"{state} {alert}": 1
        for alert in ("no_worker:low", "queue_latency:low", "redis_memory", "queue_paused:default",
                      "failure_ratio:tests.fixtures.needs_file", "cron_missed:tests.fixtures.heartbeat")
        for state in ("FIRING", "RESOLVED")
    }  # fmt: skip
    assert told(peer) == expected  # never told twice for one transition
    subjects = [" ".join(message["Subject"].split()) for message in mailbox.messages]  # unfolded
    mailed = Counter(subject.split(": ", 1)[0].replace("[", "").replace("] ", " ") for subject in subjects)
    assert mailed == told(peer)
