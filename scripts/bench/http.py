"""HTTP: enqueueing through the API next to a hello-world route, batches, and what background
work does to the web's latency (Offload's workers vs a thread in the web process)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import requests

from scripts.bench import plain_rq
from scripts.bench.common import AUTH, Bench, Load, Row, offload_workers, percentile, ratio, spread, web_server, wrk
from scripts.bench.webapp import FLOOR_PATH
from scripts.procfile import ROOT

CONCURRENCY = (1, 8, 32)
# Each row's workers: the Procfile's command with these settings.
WORKER_SETUPS: dict[str, dict[str, str]] = {
    "Offload, 2 workers burning CPU": {},
    "Offload, 2 workers at OFFLOAD_WORKER_NICE=idle burning CPU": {"OFFLOAD_WORKER_NICE": "idle"},
    "Offload, 2 workers at OFFLOAD_WORKER_CPUS=spare (as make run) burning CPU": {"OFFLOAD_WORKER_CPUS": "spare"},
}
BARE_LOOPS = "Offload, 2 bare busy loops at SCHED_IDLE (no worker)"
BATCH_SIZE = 1000


def enqueue(bench: Bench, seconds: float) -> None:
    """POST /api/jobs beside the plain Flask + RQ route (the same gunicorn command, serving an app of
    its own) and GET /hello, at each concurrency, alternating; the plain route is the baseline."""
    body = json.dumps({"task": "bench.noop"})
    plain_app = "scripts.bench.plain_rq:create_plain_rq_app()"
    with web_server(bench) as base, web_server(bench, plain_app) as plain_base:
        wrk(f"{base}/hello", 8, 1, bench.scratch)  # warm both gunicorn processes of each server
        wrk(f"{plain_base}{plain_rq.PATH}", 8, 1, bench.scratch, "POST", body)
        for connections in CONCURRENCY:
            jobs: list[Load] = []
            plain: list[Load] = []
            hello: list[Load] = []
            floor: list[Load] = []
            for _ in range(bench.repeat):
                bench.flush()
                jobs.append(wrk(f"{base}/api/jobs", connections, seconds, bench.scratch, "POST", body))
                plain.append(wrk(f"{plain_base}{plain_rq.PATH}", connections, seconds, bench.scratch, "POST", body))
                hello.append(wrk(f"{base}/hello", connections, seconds, bench.scratch))
                floor.append(wrk(f"{base}{FLOOR_PATH}", connections, seconds, bench.scratch, "POST", body))
            _rows(bench, f"POST /api/jobs, c={connections}", jobs, plain, "the plain route")
            _rows(bench, f"plain Flask + RQ enqueue route (baseline), c={connections}", plain, None)
            _rows(bench, f"GET /hello, c={connections}", hello, None)
            _rows(bench, f"POST {FLOOR_PATH} (token, JSON, one script call), c={connections}", floor, plain, "plain")
        with bench.redis() as connection:
            assert connection.llen("rq:queue:high") > 0, "the enqueue load wrote no job"


def batch(bench: Bench, seconds: float) -> None:
    """POST /api/jobs/batch with BATCH_SIZE jobs per request."""
    body = json.dumps([{"task": "bench.noop"}] * BATCH_SIZE)
    with web_server(bench, MAX_CONTENT_LENGTH=str(4 * 1024 * 1024)) as base:
        loads = []
        for _ in range(bench.repeat):
            bench.flush()
            loads.append(wrk(f"{base}/api/jobs/batch", 2, seconds, bench.scratch, "POST", body))
        rates = [load.requests_per_second * BATCH_SIZE for load in loads]
        p50 = [load.p50_ms for load in loads]
        errors = sum(load.errors for load in loads)
        bench.add(
            Row(
                "http",
                f"POST /api/jobs/batch ({BATCH_SIZE:,} jobs each), c=2",
                spread(rates, " jobs/s"),
                note=f"p50 {spread(p50, ' ms', 1)} per request; {errors} errors",
            )
        )


def _rows(bench: Bench, name: str, loads: list[Load], baseline: list[Load] | None, versus_name: str = "") -> None:
    rates = [load.requests_per_second for load in loads]
    tails = [load.p99_ms for load in loads]
    versus = ""
    if baseline:
        base_rates = [load.requests_per_second for load in baseline]
        base_tails = [load.p99_ms for load in baseline]
        versus = (
            f"{ratio(_middle(rates), _middle(base_rates))} {versus_name} in req/s, "
            f"p99 {_middle(tails) / max(_middle(base_tails), 1e-9):.2f}× its"
        )
    errors = sum(load.errors for load in loads)
    bench.add(
        Row(
            "http",
            name,
            spread(rates, " req/s"),
            versus,
            f"p50 {spread([x.p50_ms for x in loads], ' ms', 2)}, p99 {spread(tails, ' ms', 2)}"
            + (f"; {errors} errors" if errors else ""),
        )
    )


def _middle(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def healthz_under_load(bench: Bench, seconds: float, burn_seconds: float = 1.0) -> None:
    """/healthz latency idle, then while two workers burn CPU, for Offload and for the naive app.

    Each figure is the median over ``bench.repeat`` rounds (a p99 of one round is noisy);
    Offload idle is measured at the start and at the end of every round.
    """
    results: dict[str, list[Load]] = {}
    for _ in range(bench.repeat):
        with web_server(bench) as base:
            results.setdefault("Offload, idle", []).append(_healthz(bench, base, seconds))
            for name, env in WORKER_SETUPS.items():
                with offload_workers(bench, 2, **env):
                    _burn(base, seconds, burn_seconds)
                    results.setdefault(name, []).append(_healthz(bench, base, seconds))
                bench.flush()
            # What priority alone allows: the same burn in two bare processes at the lowest priority.
            with _busy_loops(2, burn_seconds):
                time.sleep(1)
                results.setdefault(BARE_LOOPS, []).append(_healthz(bench, base, seconds))
            time.sleep(1)
            # Idle once more at the end of the round: an idle p99 alone swings by 1.5x here.
            results["Offload, idle"].append(_healthz(bench, base, seconds))
        bench.flush()
        naive = "scripts.bench.naive:create_naive_app()"
        with web_server(bench, app=naive, GUNICORN_CMD_ARGS="--worker-class gthread --threads 4") as base:
            results.setdefault("thread in the web process, idle", []).append(_healthz(bench, base, seconds))
            for _ in range(2):
                requests.post(f"{base}/work", params={"seconds": seconds + 4}, timeout=10).raise_for_status()
            time.sleep(1)
            busy = _healthz(bench, base, seconds)
            results.setdefault("thread in the web process, 2 threads burning CPU", []).append(busy)
            time.sleep(4)  # the threads finish before the next round
    for idle_name, *busy_names in (
        ("Offload, idle", *WORKER_SETUPS, BARE_LOOPS),
        ("thread in the web process, idle", "thread in the web process, 2 threads burning CPU"),
    ):
        idle_p99 = statistics.median(load.p99_ms for load in results[idle_name])
        for name in (idle_name, *busy_names):
            loads = results[name]
            p99 = statistics.median(load.p99_ms for load in loads)
            bench.add(
                Row(
                    "web under load",
                    f"GET /healthz p50 / p99, {name}",
                    f"{statistics.median(x.p50_ms for x in loads):.2f} / {p99:.2f} ms",
                    f"p99 {ratio(p99, idle_p99)} idle" if name != idle_name else "",
                    f"p99 of each round {', '.join(f'{x.p99_ms:.1f}' for x in loads)} ms; {len_note(loads[0])}",
                )
            )


def _burn(base: str, seconds: float, burn_seconds: float) -> None:
    """Enough CPU-heavy jobs to keep both workers busy while the latency is measured."""
    for _ in range(int(2 * (seconds + 4) / burn_seconds) + 4):
        requests.post(
            f"{base}/api/jobs",
            json={"task": "bench.cpu_burn", "args": {"seconds": burn_seconds}},
            headers=AUTH,
            timeout=10,
        ).raise_for_status()
    time.sleep(1)  # both workers busy


@contextmanager
def _busy_loops(count: int, burn_seconds: float) -> Iterator[None]:
    """``count`` processes running bench.cpu_burn's loop at SCHED_IDLE: what priority alone allows."""
    code = f"from scripts.bench.bench_tasks import cpu_burn\nwhile True: cpu_burn({burn_seconds})"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=ROOT,
            preexec_fn=lambda: os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0)),  # noqa: PLW1509
        )
        for _ in range(count)
    ]
    try:
        yield
    finally:
        for process in processes:
            process.kill()
            process.wait()


def len_note(load: Load) -> str:
    return f"one client, a request every 5 ms ({load.requests_per_second:,.0f} req/s)"


def _healthz(bench: Bench, base: str, seconds: float, pause: float = 0.005) -> Load:
    """One client, a request every few milliseconds: latency as a user or a health check sees it,
    without the queueing a saturating load generator would add."""
    samples = []
    session = requests.Session()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        began = time.perf_counter()
        session.get(f"{base}/healthz", timeout=10).raise_for_status()
        samples.append((time.perf_counter() - began) * 1000)
        time.sleep(pause)
    session.close()
    return Load(len(samples) / seconds, percentile(samples, 0.5), percentile(samples, 0.99), 0)
