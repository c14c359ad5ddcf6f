"""Check that the Procfile's processes start and become ready on this machine.

Runs `honcho start` on the Procfile against a private Valkey (or REDIS_URL), then waits
until the web answers /readyz (Redis up, a worker registered, a scheduler running), the
cron scheduler has registered, and a job runs through; stops everything and exits 0, or
prints what did not come up and exits 1. Usage: .venv/bin/python scripts/check_procfile.py
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.embedded_redis import EmbeddedRedis, free_port  # noqa: E402

TOKEN = "procfile-check-token-0123456789"


def wait(what: str, condition, timeout: float = 60) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                print(f"ok: {what}", flush=True)
                return
        except (requests.RequestException, redis.RedisError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"FAILED: {what} within {timeout}s")


def main() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        server = EmbeddedRedis(Path(scratch) / "valkey", persistent=False)
        server.start()
        port = free_port()
        env = {
            **os.environ,
            "REDIS_URL": server.url,
            "API_TOKENS": TOKEN,
            "SECRET_KEY": "check",
            "PORT": str(port),
            "WEB_HOST": "127.0.0.1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        }
        honcho = subprocess.Popen(
            [str(Path(sys.executable).parent / "honcho"), "start", "--env", os.devnull, "--port", str(port)],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        base, headers = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {TOKEN}"}
        connection = redis.Redis.from_url(server.url)
        try:
            wait("web answers /healthz", lambda: requests.get(f"{base}/healthz", timeout=2).ok)
            wait("/readyz: Redis, a worker and its scheduler", lambda: requests.get(f"{base}/readyz", timeout=2).ok)
            wait("the cron scheduler registered", lambda: connection.zcard("rq:cron_schedulers") > 0)
            job = requests.post(f"{base}/api/jobs", json={"task": "demo.noop"}, headers=headers, timeout=5).json()
            wait(
                "a job runs through",
                lambda: (
                    requests.get(f"{base}/api/jobs/{job['id']}", headers=headers, timeout=2).json()["status"]
                    == "finished"
                ),
            )
        finally:
            os.killpg(honcho.pid, signal.SIGTERM)
            honcho.wait(30)
            connection.close()
            server.stop()
    print("the Procfile's processes start and become ready", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
