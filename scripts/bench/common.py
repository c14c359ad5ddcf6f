"""What every benchmark section shares: the server, processes, a load generator, statistics."""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import requests

from scripts.embedded_redis import EmbeddedRedis, free_port
from scripts.procfile import ROOT, procfile_command

TOKEN = "bench-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WRK = shutil.which("wrk") or "/usr/bin/wrk"


@dataclass
class Row:
    """One line of the table: what was measured, the figure, and how to reproduce it."""

    section: str
    name: str
    value: str
    ratio: str = ""
    note: str = ""


@dataclass
class Bench:
    """One run's shared state: the Redis-compatible server, a scratch directory, the rows."""

    server: EmbeddedRedis
    scratch: Path
    repeat: int
    rows: list[Row] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def env(self, **extra: str) -> dict[str, str]:
        base = {
            **os.environ,
            "REDIS_URL": self.url,
            "API_TOKENS": TOKEN,
            "SECRET_KEY": "bench",
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            # The benchmark measures throughput, not the limits that protect a shared deployment.
            "SUBMIT_RATE_LIMIT": "1000000/second",
            "QUEUE_MAX_LENGTH": "0",
            "REDIS_MEMORY_MAX_RATIO": "0",
        }
        return {**base, **extra}

    def add(self, *rows: Row) -> None:
        for row in rows:
            self.rows.append(row)
            line = f"  {row.section:<22} {row.name:<52} {row.value:>28}  {row.ratio}"
            print(line.rstrip(), flush=True)

    def flush(self) -> None:
        with self.redis() as connection:
            connection.execute_command("FLUSHALL", "SYNC")  # Valkey frees asynchronously by default


def start(
    argv: Sequence[str], env: dict[str, str], log: Path, cwd: Path = ROOT, **kwargs: Any
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            list(argv), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
        )


def stop(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, 15)
            process.wait(timeout)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(process.pid, 9)
    except ProcessLookupError:
        pass
    process.wait()


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, what: str = "a condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextmanager
def web_server(bench: Bench, app: str = "scripts.bench.webapp:create_bench_app()", **env: str) -> Iterator[str]:
    """The Procfile's gunicorn command on a free port, serving ``app``."""
    _, argv = procfile_command("web")
    argv = [*argv[:-1], app]
    port = free_port()
    log = bench.scratch / f"web-{port}.log"
    process = start(argv, bench.env(PORT=str(port), WEB_HOST="127.0.0.1", **env), log)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited; see {log}")
        try:
            return requests.get(f"{base}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_for(up, what="gunicorn")
        yield base
    finally:
        stop(process)


@contextmanager
def offload_workers(bench: Bench, count: int, *extra: str, **env: str) -> Iterator[list[subprocess.Popen[bytes]]]:
    """The Procfile's worker command, ``count`` times; waits until all have registered."""
    settings, argv = procfile_command("worker")
    connection = bench.redis()
    before = connection.scard("rq:workers")
    processes = [
        start([*argv, *extra], bench.env(**settings, **env), bench.scratch / f"worker-{i}.log") for i in range(count)
    ]
    try:
        wait_for(lambda: connection.scard("rq:workers") >= before + count, what="the workers to register")
        yield processes
    finally:
        for process in processes:
            stop(process)
        connection.close()


@dataclass
class Load:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


_WRK_SCRIPT = """
wrk.method = "{method}"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
done = function(summary, latency, requests)
  io.write(string.format("OFFLOAD %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write,
    summary.errors.timeout))
end
"""


def wrk(url: str, connections: int, seconds: float, scratch: Path, method: str = "GET", body: str = "") -> Load:
    """``wrk`` against ``url``: requests per second and latency percentiles (non-2xx count as errors)."""
    script = scratch / f"wrk-{method.lower()}-{abs(hash(body)) % 10**8}.lua"
    script.write_text(_WRK_SCRIPT.format(method=method, body=body, token=TOKEN))
    threads = min(connections, 2)
    argv = [WRK, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", str(script), url]
    output = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    found = re.search(r"OFFLOAD (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)", output)
    if found is None:
        raise RuntimeError(f"wrk printed no summary:\n{output}")
    total, micros, p50, p99, errors, timeouts = map(int, found.groups())
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    failed = errors + timeouts + int(non_2xx.group(1) if non_2xx else 0)
    return Load(total / (micros / 1e6), p50 / 1000, p99 / 1000, failed)


def percentile(samples: Sequence[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def spread(values: Sequence[float], unit: str = "", digits: int = 0) -> str:
    """Median and range of repeated measurements: ``1,234/s (1,100–1,300)``."""
    middle = statistics.median(values)
    text = f"{middle:,.{digits}f}{unit}"
    if len(values) > 1:
        text += f" ({min(values):,.{digits}f}–{max(values):,.{digits}f})"
    return text


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}×" if baseline else ""


def session_cpu_seconds(session: int) -> float:
    """CPU used so far by every process of a session (Linux /proc), reaped children included."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session:  # fields after the command: state, ppid, pgrp, session, ...
            total += sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return total / ticks


def process_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0
