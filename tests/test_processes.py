"""The Procfile's processes for real: gunicorn serving the API, the dashboard, `make run`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from scripts.embedded_redis import free_port
from tests.conftest import AUTH, ROOT, TOKEN, wait_for

pytestmark = pytest.mark.slow


def test_round_trip_over_http_through_gunicorn_and_a_real_worker(web_server: str, worker):
    response = requests.post(
        f"{web_server}/api/jobs",
        json={"task": "tests.fixtures.add", "args": {"a": 20, "b": 22}},
        headers=AUTH,
        timeout=5,
    )
    assert response.status_code == 202
    location = response.headers["Location"]

    def finished() -> dict | None:
        job = requests.get(f"{web_server}{location}", headers=AUTH, timeout=5).json()
        return job if job["status"] == "finished" else None

    assert wait_for(finished, message="the job to finish")["result"] == 42
    bad = requests.post(f"{web_server}/api/jobs", data="{", headers={**AUTH, "Content-Type": "application/json"})
    assert bad.status_code == 400
    assert bad.headers["Content-Type"] == "application/problem+json"
    assert requests.get(f"{web_server}/api/tasks", timeout=5).status_code == 401


def test_dashboard_pages_render_real_queues_jobs_and_a_busy_worker(web_server: str, worker, tmp_path: Path):
    auth = ("any", TOKEN)
    pid_file, release = tmp_path / "pid", tmp_path / "release"
    body = {"task": "tests.fixtures.hold", "args": {"pid_file": str(pid_file), "release_file": str(release)}}
    job_id = requests.post(f"{web_server}/api/jobs", json=body, headers=AUTH, timeout=5).json()["id"]
    wait_for(pid_file.exists, message="the job to start")

    workers = requests.get(f"{web_server}/rq/0/data/workers.json", auth=auth, timeout=5)
    assert workers.status_code == 200, workers.text
    [busy] = workers.json()["workers"]
    assert busy["state"] == "busy"
    assert busy["current_job"]["job_id"] == job_id

    for page in ("/rq/", "/rq/0/view/workers", "/rq/0/view/jobs", f"/rq/0/view/job/{job_id}"):
        response = requests.get(f"{web_server}{page}", auth=auth, timeout=5)
        assert response.status_code == 200, page
        assert "RQ dashboard" in response.text
    queues = requests.get(f"{web_server}/rq/0/data/queues.json", auth=auth, timeout=5).json()["queues"]
    assert {queue["name"] for queue in queues} >= {"default"}
    job = requests.get(f"{web_server}/rq/0/data/job/{job_id}.json", auth=auth, timeout=5).json()
    assert job["id"] == job_id and job["status"] == "started"
    refused = requests.get(f"{web_server}/rq/", timeout=5, allow_redirects=False)
    assert (refused.status_code, refused.headers["Location"]) == (302, "/login?next=/rq/")
    release.touch()


def descendants_marked(marker: str) -> list[int]:
    """Processes whose environment carries ``marker`` (everything `make run` started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_run_command_starts_everything_and_ctrl_c_leaves_no_process_behind(tmp_path: Path):
    port = free_port()
    marker = f"OFFLOAD_TEST_RUN={os.getpid()}-{port}"
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env.update({"OFFLOAD_TEST_RUN": marker.split("=", 1)[1], "API_TOKENS": "", "SECRET_KEY": ""})
    env_file = tmp_path / ".env"
    with (tmp_path / "run.log").open("wb") as log:
        runner = subprocess.Popen(
            [
                sys.executable,
                "scripts/run.py",
                "--port",
                str(port),
                "--env-file",
                str(env_file),
                "--data-dir",
                str(tmp_path / "data"),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return requests.get(f"{base}/readyz", timeout=5).status_code == 200
            except requests.RequestException:
                return False

        wait_for(ready, timeout=30, message="make run to become ready")
        token = env_file.read_text().split("API_TOKENS=", 1)[1].split()[0]
        assert f"API token (from .env): {token}" in (tmp_path / "run.log").read_text()
        headers = {"Authorization": f"Bearer {token}"}
        job = requests.post(f"{base}/api/jobs", json={"task": "demo.sleep", "args": {"seconds": 60}}, headers=headers)
        assert job.status_code == 202
        wait_for(
            lambda: requests.get(f"{base}{job.headers['Location']}", headers=headers).json()["status"] == "started",
            message="the long job to start",
        )
        assert (tmp_path / "data" / "valkey" / "appendonlydir").is_dir()
        started = descendants_marked(marker)
        assert len(started) >= 5  # runner, valkey, honcho, gunicorn master + workers, rq worker, its horse
        commands = {pid: Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") for pid in started}
        workers = [pid for pid, argv in commands.items() if b"worker" in argv[1:3] and b"rq" in argv[1]]
        webs = [pid for pid, argv in commands.items() if any(b"gunicorn" in arg for arg in argv[:2])]
        assert workers and webs
        cpus = sorted(os.sched_getaffinity(0))
        for pid in workers:  # make run keeps its workers off one CPU: the web always finds it free
            assert sorted(os.sched_getaffinity(pid)) == (cpus[1:] if len(cpus) > 1 else cpus)
        for pid in webs:
            assert sorted(os.sched_getaffinity(pid)) == cpus

        os.killpg(runner.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        runner.wait(30)
        assert runner.returncode is not None
        wait_for(lambda: not descendants_marked(marker), timeout=10, message="every process to be gone")
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait()
        for pid in descendants_marked(marker):
            os.kill(pid, signal.SIGKILL)
