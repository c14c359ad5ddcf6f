"""Shared fixtures: a private Valkey server, the app, real worker and web processes."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from flask import Flask
from flask.testing import FlaskClient

os.environ["OFFLOAD_TASK_MODULES"] = "tests.fixtures"

from app import create_app  # noqa: E402
from jobs import settings  # noqa: E402
from scripts.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from scripts.procfile import procfile_command  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


# What `make test-fast` leaves out, by module or by the fixtures a test uses.
_MODULE_MARKS = {
    "test_browser": "browser",
    "test_accessibility": "browser",
    "test_operator_pages": "browser",
    "test_fuzz": "fuzz",
    "test_bench": "bench",
    "test_soak": "bench",
}
_PROCESS_FIXTURES = {"start_worker", "worker", "web_server"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        mark = _MODULE_MARKS.get(item.module.__name__.rsplit(".", 1)[-1]) if isinstance(item, pytest.Function) else None
        if mark:
            item.add_marker(mark)
        if _PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker("processes")


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """Each test reads the environment afresh, as a new process would (monkeypatch.setenv)."""
    settings.reload()
    yield
    settings.get_settings.cache_clear()


def wait_for(condition: Callable[[], Any], timeout: float = 15.0, interval: float = 0.02, message: str = "") -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or condition}")
        time.sleep(interval)


def start_procfile_process(
    process: str, redis_url: str, log_path: Path, *extra_args: str, **env: str
) -> subprocess.Popen[bytes]:
    """Start a Procfile process in its own session, its output in ``log_path``."""
    settings, argv = procfile_command(process)
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [*argv, *extra_args],
            cwd=ROOT,
            env=process_env(redis_url, **settings, **env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("valkey"), persistent=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> Iterator[str]:
    if redis_server.process is None:
        redis_server.start()
    connection = redis.Redis.from_url(redis_server.url)
    connection.flushall()
    yield redis_server.url
    if redis_server.process is None:  # a test stopped it: bring it back for the next one
        redis_server.start()
    redis_server.resume()
    connection.flushall()
    connection.close()


@pytest.fixture
def redis_conn(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


@pytest.fixture
def app(redis_url: str) -> Iterator[Flask]:
    app = create_app({"TESTING": True, "REDIS_URL": redis_url, "API_TOKENS": TOKEN, "SECRET_KEY": "test"})
    yield app
    close_app(app)


def close_app(app: Flask) -> None:
    """Close an app's Redis client now rather than at some later GC."""
    app.extensions["offload.redis"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def process_env(redis_url: str, **extra: str) -> dict[str, str]:
    env = {**os.environ, "REDIS_URL": redis_url, "API_TOKENS": TOKEN, "SECRET_KEY": "test", "PYTHONUNBUFFERED": "1"}
    env.update(extra)
    return env


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Stop the process and everything left in its session (a killed worker's scheduler, say)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


@pytest.fixture
def start_worker(redis_url: str, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start the Procfile's worker command; waits until it has registered in Redis."""
    started: list[subprocess.Popen[bytes]] = []
    connection = redis.Redis.from_url(redis_url)

    def start(*extra_args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        before = connection.scard("rq:workers")
        log = tmp_path / f"worker-{len(started)}.log"
        process = start_procfile_process("worker", redis_url, log, *extra_args, **(env or {}))
        started.append(process)
        if "--burst" not in extra_args:
            wait_for(lambda: connection.scard("rq:workers") > before, message="the worker to register")
        return process

    yield start
    for process in started:
        stop_process(process)
    connection.close()


@pytest.fixture
def run_jobs(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., bool]]:
    """Offload's worker in this process, in burst mode: ``run_jobs()`` runs every job waiting on
    the app's queues (or on the queues named), then returns. No process starts, and coverage sees
    the worker. It keeps the test process's priority, CPUs and signal handlers as they were."""
    from rq.serializers import JSONSerializer

    from jobs.job import TaskJob
    from jobs.worker.inprocess import InProcessWorker

    monkeypatch.setenv("OFFLOAD_WORKER_NICE", "0")
    monkeypatch.setenv("OFFLOAD_WORKER_CPUS", "all")
    settings.reload()
    connection = redis.Redis.from_url(redis_url)

    def run(*queues: str) -> bool:
        handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
        worker = InProcessWorker(
            list(queues or settings.get_settings().QUEUES),
            connection=connection,
            job_class=TaskJob,
            serializer=JSONSerializer,
        )
        try:
            return worker.work(burst=True, logging_level="WARNING")
        finally:
            for number, handler in handlers.items():
                signal.signal(number, handler)
            gc.unfreeze()

    yield run
    connection.close()


@pytest.fixture
def worker(start_worker: Callable[..., subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    return start_worker()


@pytest.fixture
def web_server(redis_url: str, tmp_path: Path) -> Iterator[str]:
    """The Procfile's web command (gunicorn) on a free port; yields its base URL."""
    port = free_port()
    process = start_procfile_process(
        "web", redis_url, tmp_path / "web.log", PORT=str(port), WEB_HOST="127.0.0.1", WEB_CONCURRENCY="2"
    )
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"gunicorn exited: {(tmp_path / 'web.log').read_text()}")
        try:
            return requests.get(f"{base}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    wait_for(healthy, timeout=20, message="gunicorn to answer /healthz")
    yield base
    stop_process(process)


# The browser tests' fixtures, defined once here so that one chromium serves them all.
from tests.browsing import api, browser, page  # noqa: E402, F401
