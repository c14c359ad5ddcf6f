"""Soak test: accepted work survives killed workers, stopped workers and a Redis restart.

Starts a private Valkey (append-only file on), the Procfile's web (gunicorn) and
worker processes, submits jobs over HTTP at the given concurrency (each with an
Idempotency-Key, retried on 503 as a client would), and meanwhile a chaos loop
SIGKILLs workers, SIGTERMs others and restarts Redis once; dead workers are replaced,
as a platform would. Then it waits for every accepted job to end and prints:
accepted, finished, failed (counted by error type), lost, recovered (jobs a dead worker's
death put back, and how often), re-run, duplicated effects.
Exit status 0 only if nothing was lost, failed or duplicated: the task never raises, so any
failure is the queue's.

    .venv/bin/python scripts/soak.py [--jobs 1000] [--concurrency 16] [--kills 10]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from scripts.procfile import procfile_command  # noqa: E402

TOKEN = "soak-token-0123456789abcdef"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
TERMINAL = {b"finished", b"failed", b"stopped", b"canceled"}


@dataclass
class Report:
    accepted: list[str] = field(default_factory=list)
    refused: int = 0
    kills: int = 0
    stops: int = 0
    redis_restarts: int = 0


class Cluster:
    def __init__(self, scratch: Path, workers: int) -> None:
        self.server = EmbeddedRedis(scratch / "valkey", persistent=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.scratch = scratch
        self.wanted = workers
        self.workers: list[subprocess.Popen[bytes]] = []
        self.lock = threading.Lock()
        self.env = {
            **os.environ,
            "API_TOKENS": TOKEN,
            "SECRET_KEY": "soak",
            "PORT": str(self.port),
            "WEB_HOST": "127.0.0.1",
            "SUBMIT_RATE_LIMIT": "100000/second",
            "OFFLOAD_SHUTDOWN_GRACE": "2",
            "OFFLOAD_SWEEP_CONFIRM_AFTER": "3",
            "PYTHONUNBUFFERED": "1",
            "OFFLOAD_TASK_MODULES": "scripts.soak_tasks",
        }

    def start(self) -> None:
        self.server.start()
        self.env["REDIS_URL"] = self.server.url
        settings, argv = procfile_command("web")
        self.web = self._spawn(argv, settings, "web")
        for _ in range(self.wanted):
            self.add_worker()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.base}/readyz", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise SystemExit("the cluster did not become ready")

    def _spawn(self, argv: list[str], settings: dict[str, str], name: str) -> subprocess.Popen[bytes]:
        with (self.scratch / f"{name}-{time.monotonic_ns()}.log").open("wb") as log:
            return subprocess.Popen(
                argv, cwd=ROOT, env={**self.env, **settings}, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def add_worker(self) -> None:
        settings, argv = procfile_command("worker")
        with self.lock:
            self.workers.append(self._spawn(argv, settings, "worker"))

    def replace_dead_workers(self) -> None:
        with self.lock:
            alive = [worker for worker in self.workers if worker.poll() is None]
            missing = self.wanted - len(alive)
            self.workers = alive
        for _ in range(missing):
            self.add_worker()

    def random_worker(self) -> subprocess.Popen[bytes] | None:
        with self.lock:
            alive = [worker for worker in self.workers if worker.poll() is None]
        return random.choice(alive) if alive else None

    def stop(self) -> None:
        for process in [*self.workers, self.web]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in [*self.workers, self.web]:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.server.stop()


def submit_all(cluster: Cluster, jobs: int, concurrency: int, report: Report, deadline: float) -> None:
    def submit(number: int) -> str | None:
        headers = {**HEADERS, "Idempotency-Key": f"soak-{number}"}
        body = {"task": "soak.effect", "args": {"seconds": random.uniform(0.01, 0.3)}}
        while time.monotonic() < deadline:
            try:
                response = requests.post(f"{cluster.base}/api/jobs", json=body, headers=headers, timeout=5)
            except requests.RequestException:
                time.sleep(0.2)
                continue
            if response.status_code in (200, 202):
                return response.json()["id"]
            if response.status_code in (409, 429, 503):  # 409: this key's first request is still running
                time.sleep(float(response.headers.get("Retry-After", "1")) / 5)
                continue
            raise SystemExit(f"unexpected answer {response.status_code}: {response.text}")
        return None

    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        for job_id in pool.map(submit, range(jobs)):
            if job_id is None:
                report.refused += 1
            else:
                report.accepted.append(job_id)


def chaos(cluster: Cluster, report: Report, kills: int, stops: int, stop_event: threading.Event) -> None:
    actions = ["kill"] * kills + ["term"] * stops + ["redis"]
    random.shuffle(actions)
    for action in actions:
        if stop_event.wait(random.uniform(0.5, 1.5)):
            return
        if action == "redis":
            cluster.server.stop()
            time.sleep(1.0)
            cluster.server.start()
            report.redis_restarts += 1
        else:
            worker = cluster.random_worker()
            if worker is None:
                continue
            os.killpg(worker.pid, signal.SIGKILL if action == "kill" else signal.SIGTERM)
            if action == "kill":
                report.kills += 1
            else:
                report.stops += 1
        time.sleep(0.3)
        cluster.replace_dead_workers()


def run(jobs: int = 1000, concurrency: int = 16, kills: int = 10, stops: int = 3, workers: int = 4,
        settle: float = 240.0) -> dict[str, object]:  # fmt: skip
    """Run one soak; returns its figures (``lost`` and ``duplicated`` must be 0)."""
    report = Report()
    with tempfile.TemporaryDirectory() as scratch:
        cluster = Cluster(Path(scratch), workers)
        cluster.start()
        stop_event = threading.Event()
        chaos_thread = threading.Thread(target=chaos, args=(cluster, report, kills, stops, stop_event))
        started = time.monotonic()
        try:
            chaos_thread.start()
            submit_all(cluster, jobs, concurrency, report, deadline=time.monotonic() + settle)
            chaos_thread.join()
            connection = redis.Redis.from_url(cluster.server.url)
            deadline = time.monotonic() + settle
            while True:
                cluster.replace_dead_workers()
                with connection.pipeline(transaction=False) as pipe:
                    for job_id in report.accepted:
                        pipe.hget(f"rq:job:{job_id}", "status")
                    statuses = pipe.execute()
                if all(status in TERMINAL for status in statuses) or time.monotonic() > deadline:
                    break
                time.sleep(1)
            elapsed = time.monotonic() - started
            finished = [j for j, s in zip(report.accepted, statuses, strict=True) if s == b"finished"]
            failed = [j for j, s in zip(report.accepted, statuses, strict=True) if s in TERMINAL - {b"finished"}]
            lost = [j for j, s in zip(report.accepted, statuses, strict=True) if s not in TERMINAL]
            effects = {member.decode() for member in connection.smembers("offload:soak:effects")}
            runs = {key.decode(): int(value) for key, value in connection.hgetall("offload:soak:runs").items()}
            applied = {k.decode(): int(v) for k, v in connection.hgetall("offload:soak:effect_count").items()}
            documents = _documents(cluster.base, report.accepted)
            connection.close()
        finally:
            stop_event.set()
            cluster.stop()
    return {
        "accepted": len(report.accepted),
        "refused_after_retries": report.refused,
        "finished": len(finished),
        "failed": len(failed),
        "failed_by_type": _failures_by_type(documents),
        "failed_without_reason": sum(1 for job_id in failed if not (documents[job_id]["error"] or {}).get("message")),
        "lost": len(lost),
        "lost_ids": lost[:10],
        "recovered": sum(1 for document in documents.values() if document["recoveries"]),
        "recoveries": sum(document["recoveries"] for document in documents.values()),
        "most_attempts": max((document["attempts"] for document in documents.values()), default=0),
        "re_run": sum(1 for count in runs.values() if count > 1),
        "effects_missing": sum(1 for job_id in finished if job_id not in effects),
        "duplicated": sum(1 for count in applied.values() if count > 1),
        "worker_kills": report.kills,
        "worker_stops": report.stops,
        "redis_restarts": report.redis_restarts,
        "seconds": round(elapsed, 1),
        "failure_reasons": sorted({_reason(documents[job_id]) for job_id in failed})[:5],
    }


def _documents(base: str, job_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Every accepted job's document, as the API shows it."""

    def fetch(job_id: str) -> dict[str, Any]:
        response = requests.get(f"{base}/api/jobs/{job_id}", headers=HEADERS, timeout=10)
        response.raise_for_status()
        return response.json()

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return dict(zip(job_ids, pool.map(fetch, job_ids), strict=True))


def _reason(document: dict[str, Any]) -> str:
    error = document["error"] or {}
    return f"{error.get('type')}: {error.get('message')}" if error else str(document["status"])


def _failures_by_type(documents: dict[str, dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for document in documents.values():
        if document["status"] != "finished":
            kind = str((document["error"] or {}).get("type") or document["status"])
            counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--stops", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    figures = run(args.jobs, args.concurrency, args.kills, args.stops, args.workers)
    for key, value in figures.items():
        print(f"{key:>24}: {value}")
    ok = not (figures["lost"] or figures["failed"] or figures["duplicated"] or figures["effects_missing"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
