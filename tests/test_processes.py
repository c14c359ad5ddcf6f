"""The Procfile's processes for real: gunicorn serving the API, the dashboard, `make run`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import requests

from app import create_app
from scripts.embedded_redis import EmbeddedRedis, free_port
from tests.conftest import AUTH, BIN, ROOT, TOKEN, process_env, wait_for

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


class Run:
    """``make run`` (or scripts/run.py itself) started as from a terminal, in a session of its own."""

    def __init__(self, tmp_path: Path, via_make: bool = False) -> None:
        self.port = free_port()
        self.marker = f"OFFLOAD_TEST_RUN={os.getpid()}-{self.port}"
        self.env_file, self.data_dir, self.log = tmp_path / ".env", tmp_path / "data", tmp_path / "run.log"
        env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "OFFLOAD_SHUTDOWN_GRACE")}
        env.update({"OFFLOAD_TEST_RUN": self.marker.split("=", 1)[1], "API_TOKENS": "", "SECRET_KEY": ""})
        options = ["--port", str(self.port), "--env-file", str(self.env_file), "--data-dir", str(self.data_dir)]
        argv = (
            ["make", "--no-print-directory", "run", f"PYTHON={sys.executable}", f"RUN_ARGS={' '.join(options)}"]
            if via_make
            else [sys.executable, "scripts/run.py", *options]
        )
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.base = f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        try:
            return requests.get(f"{self.base}/readyz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    @property
    def headers(self) -> dict[str, str]:
        token = self.env_file.read_text().split("API_TOKENS=", 1)[1].split()[0]
        return {"Authorization": f"Bearer {token}"}

    def pid_of(self, name: bytes) -> int:
        for pid in descendants_marked(self.marker):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if any(arg.endswith(name) for arg in argv[:2]):
                return pid
        raise AssertionError(f"no {name!r} process")

    def stop_all(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for pid in descendants_marked(self.marker):
            os.kill(pid, signal.SIGKILL)


def test_run_command_starts_everything_and_ctrl_c_leaves_no_process_behind(tmp_path: Path):
    run = Run(tmp_path)
    try:
        wait_for(run.ready, timeout=30, message="make run to become ready")
        token = run.env_file.read_text().split("API_TOKENS=", 1)[1].split()[0]
        assert f"API token (from .env): {token}" in run.log.read_text()
        base, headers = run.base, run.headers
        job = requests.post(f"{base}/api/jobs", json={"task": "demo.sleep", "args": {"seconds": 60}}, headers=headers)
        assert job.status_code == 202
        wait_for(
            lambda: requests.get(f"{base}{job.headers['Location']}", headers=headers).json()["status"] == "started",
            message="the long job to start",
        )
        assert (run.data_dir / "valkey" / "appendonlydir").is_dir()
        started = descendants_marked(run.marker)
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

        os.killpg(run.process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        run.process.wait(30)
        assert run.process.returncode is not None
        wait_for(lambda: not descendants_marked(run.marker), timeout=10, message="every process to be gone")
    finally:
        run.stop_all()


@pytest.mark.parametrize(
    "via_make, stop",
    [
        (False, "Ctrl-C: SIGINT to the foreground process group"),
        (False, "SIGINT to run.py alone"),
        (False, "SIGTERM to run.py alone"),
        (True, "SIGINT to make alone"),
    ],
)
def test_stopping_make_run_hands_a_running_job_back_to_the_embedded_server(tmp_path: Path, via_make: bool, stop: str):
    run = Run(tmp_path, via_make=via_make)
    try:
        wait_for(run.ready, timeout=60, message="make run to become ready")
        pid_file, release = tmp_path / "pid", tmp_path / "release"
        body = {"task": "tests.fixtures.hold", "args": {"pid_file": str(pid_file), "release_file": str(release)}}
        job_id = requests.post(f"{run.base}/api/jobs", json=body, headers=run.headers, timeout=5).json()["id"]
        wait_for(pid_file.exists, message="the job to start")
        signalled = run.pid_of(b"run.py") if "run.py" in stop else run.process.pid
        sig = signal.SIGTERM if "SIGTERM" in stop else signal.SIGINT
        if "group" in stop:
            os.killpg(run.process.pid, sig)
        else:
            os.kill(signalled, sig)
        run.process.wait(30)
        assert not descendants_marked(run.marker)
    finally:
        run.stop_all()
    server = EmbeddedRedis(run.data_dir / "valkey", persistent=True)  # the same data, read back
    server.start()
    try:
        connection = redis.Redis.from_url(server.url)
        assert connection.hget(f"rq:job:{job_id}", "status") == b"queued", (tmp_path / "run.log").read_text()
        assert connection.lrange("rq:queue:default", 0, -1) == [job_id.encode()]
        assert connection.zcard("rq:failed:default") == 0
        connection.close()
    finally:
        server.stop()


def test_plain_honcho_start_never_fails_a_running_job(tmp_path: Path, redis_url: str, start_worker):
    """honcho SIGKILLs what still runs 5 s after the first process stops; the worker's default grace
    (20 s, for Heroku's 30) is longer: the job is cut off, then recovered and run again."""
    env = {**process_env(redis_url), "PYTHONPATH": str(ROOT), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    env.pop("OFFLOAD_SHUTDOWN_GRACE", None)
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("worker:"))
    )
    with (tmp_path / "honcho.log").open("wb") as log:
        honcho = subprocess.Popen(
            [str(BIN / "honcho"), "start", "--procfile", str(procfile), "--app-root", str(ROOT), "--no-prefix"],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    counter, release = tmp_path / "attempts", tmp_path / "release"
    body = {"counter": str(counter), "release_file": str(release)}
    client = create_app({"TESTING": True, "REDIS_URL": redis_url, "API_TOKENS": TOKEN}).test_client()
    job_id = client.post("/api/jobs", json={"task": "tests.fixtures.hold_and_count", "args": body}, headers=AUTH)
    job_id = job_id.get_json()["id"]
    try:
        wait_for(counter.exists, timeout=30, message="the job to start under honcho")
        os.killpg(honcho.pid, signal.SIGINT)  # Ctrl-C
        honcho.wait(30)
    finally:
        if honcho.poll() is None:
            os.killpg(honcho.pid, signal.SIGKILL)
            honcho.wait()
    release.touch()
    start_worker("--job-monitoring-interval", "1", "--maintenance-interval", "1", env={"OFFLOAD_HEARTBEAT_GRACE": "2"})
    done = wait_for(
        lambda: (
            (doc := client.get(f"/api/jobs/{job_id}", headers=AUTH).get_json())["status"] in ("finished", "failed")
            and doc
        ),
        timeout=90,
        message="the job to end",
    )
    assert done["status"] == "finished", done["error"]
    assert done["recoveries"] + (1 if "handed back" in (tmp_path / "honcho.log").read_text() else 0) >= 1
