"""How many live event streams one web process holds, and what they cost the API.

Starts its own Valkey and ONE gunicorn process (the Procfile's web command,
WEB_CONCURRENCY=1), enqueues jobs that stay scheduled (so their streams stay open),
opens N concurrent SSE streams with asyncio, then measures /healthz and
GET /api/tasks latency while they are open. Usage:

    .venv/bin/python scripts/sse_capacity.py [--streams 100 250 500 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from scripts.procfile import procfile_command  # noqa: E402

TOKEN = "capacity-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def open_stream(port: int, job_id: str, ready: asyncio.Event, opened: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET /api/jobs/{job_id}/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    writer.write(request.encode())
    await writer.drain()
    status = await reader.readline()
    if b" 200 " in status:
        opened.append(1)
    await ready.wait()
    writer.close()


def latencies(url: str, count: int) -> list[float]:
    session = requests.Session()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        session.get(url, headers=AUTH, timeout=10).raise_for_status()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def measure(port: int, job_ids: list[str], streams: int) -> tuple[int, list[float], list[float]]:
    ready, opened = asyncio.Event(), []
    tasks = [asyncio.create_task(open_stream(port, job_ids[i % len(job_ids)], ready, opened)) for i in range(streams)]
    deadline = time.monotonic() + 60
    while len(opened) < streams and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.sleep(1)  # let every stream settle into its blocking read
    base = f"http://127.0.0.1:{port}"
    health = await asyncio.to_thread(latencies, f"{base}/healthz", 200)
    api = await asyncio.to_thread(latencies, f"{base}/api/tasks", 200)
    ready.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(8)  # the server notices closed streams at its next keep-alive (5 s)
    return len(opened), health, api


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[0, 100, 250, 500, 1000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        server = EmbeddedRedis(Path(scratch) / "valkey", persistent=False)
        server.start()
        port = free_port()
        env = {**os.environ, "REDIS_URL": server.url, "API_TOKENS": TOKEN, "PORT": str(port),
               "WEB_HOST": "127.0.0.1", "WEB_CONCURRENCY": "1"}  # fmt: skip
        web = subprocess.Popen(
            procfile_command("web")[1], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            for _ in range(200):
                try:
                    requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except requests.RequestException:
                    time.sleep(0.05)
            job_ids = [
                requests.post(
                    f"http://127.0.0.1:{port}/api/jobs",
                    json={"task": "demo.noop", "delay": 3600},
                    headers=AUTH,
                    timeout=5,
                ).json()["id"]  # fmt: skip
                for _ in range(20)
            ]
            print(f"one gunicorn process (gevent worker), Valkey on loopback, {os.cpu_count()} cores")
            print(f"{'open streams':>12} | {'/healthz p50':>12} | {'p99':>8} | {'/api/tasks p50':>14} | {'p99':>8}")
            for streams in args.streams:
                opened, health, api = asyncio.run(measure(port, job_ids, streams))
                print(
                    f"{opened:>5} of {streams:<4} | {statistics.median(health):>9.2f} ms | "
                    f"{percentile(health, 0.99):>5.2f} ms | {statistics.median(api):>11.2f} ms | "
                    f"{percentile(api, 0.99):>5.2f} ms"
                )
        finally:
            web.terminate()
            web.wait(30)
            server.stop()


if __name__ == "__main__":
    main()
