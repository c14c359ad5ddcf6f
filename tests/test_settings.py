"""One settings model: generated docs, .env for the CLI, a stable embedded address, the app's queues."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient

from scripts import config_table
from scripts.run import EMBEDDED_PORT, ensure_env_file
from tests.conftest import AUTH, BIN, ROOT, TOKEN


def test_the_configuration_page_is_generated_from_the_model():
    assert config_table.main(["--check"]) == 0, "run python -m scripts.config_table"
    page = config_table.PAGE.read_text()
    for name in ("REDIS_URL", "QUEUES", "OFFLOAD_SHUTDOWN_GRACE", "SMTP_URL", "WEB_CONCURRENCY"):
        assert f"| `{name}` |" in page


def test_make_run_keeps_the_embedded_servers_address_in_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    first = ensure_env_file(tmp_path / ".env")
    again = ensure_env_file(tmp_path / ".env")
    assert first["REDIS_URL"] == again["REDIS_URL"] == f"redis://127.0.0.1:{first[EMBEDDED_PORT]}/0"
    monkeypatch.setenv("REDIS_URL", "redis://elsewhere:6379/0")
    assert EMBEDDED_PORT not in ensure_env_file(tmp_path / "exported.env")


def test_flask_commands_read_env_like_make_run(tmp_path: Path, redis_url: str):
    (tmp_path / ".env").write_text(f"REDIS_URL={redis_url}\nAPI_TOKENS={TOKEN}\nSECRET_KEY={'k' * 32}\n")
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "API_TOKENS", "SECRET_KEY")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [str(BIN / "flask"), "--app", "app", "offload", "doctor", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = json.loads(done.stdout)
    assert report["config"]["REDIS_URL"] == redis_url
    assert report["config"]["API_TOKENS"] == "1 configured"
    assert "SECRET_KEY is not set" not in report["problems"]
    assert "SECRET_KEY is not set" not in done.stderr


def test_a_queue_the_app_does_not_declare_is_refused(client: FlaskClient):
    answer = client.post(
        "/api/jobs", json={"task": "tests.fixtures.add", "args": {"a": 1, "b": 2}, "queue": "nope"}, headers=AUTH
    )
    assert answer.status_code == 422
    assert answer.get_json()["errors"][0]["loc"] == ["queue"]
    assert "high, default, low" in answer.get_json()["errors"][0]["msg"]
    assert client.get("/api/jobs?queue=nope", headers=AUTH).status_code == 422


def test_the_apps_own_queues_reach_tasks_workers_and_the_api(redis_url: str, redis_conn: redis.Redis):
    """QUEUES=urgent,bulk: a task may name them, the default goes to the first, a worker serves them."""
    script = """
import json, sys
from jobs import task
from jobs.registry import TaskDefinitionError, registry
@task(queue="urgent")
def rush() -> int:
    return 1
@task
def whenever() -> int:
    return 2
try:
    task(queue="default")(lambda: 3)
except TaskDefinitionError as error:
    refused = str(error)
found = {"rush": registry.lookup("__main__.rush").queue, "whenever": registry.lookup("__main__.whenever").queue}
print(json.dumps({**found,
                  "refused": refused}))
"""
    env = {
        **os.environ,
        "QUEUES": "urgent,bulk",
        "REDIS_URL": redis_url,
        "PYTHONPATH": str(ROOT),
        "OFFLOAD_TASK_MODULES": "",
    }
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert (found["rush"], found["whenever"]) == ("urgent", "urgent")
    assert "queue must be one of the app's QUEUES ['urgent', 'bulk'], not 'default'" in found["refused"]
    worker = subprocess.run(
        [str(BIN / "rq"), "worker", "--config", "jobs.worker.rq_cli_config", "--burst", "--serializer", "json"],
        env={**env, "OFFLOAD_QUEUES": "bulk,default"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert worker.returncode == 1
    assert "OFFLOAD_QUEUES names unknown queues ['default']; the queues are ['urgent', 'bulk']" in worker.stderr
