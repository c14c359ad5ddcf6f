"""What one job costs: pickup latency, Redis commands and memory, and a worker's memory over time."""

from __future__ import annotations

import time

import redis
import requests
from rq.serializers import JSONSerializer

from jobs import submission
from jobs.job import TaskJob
from scripts.bench import peers
from scripts.bench.bench_tasks import RESULT_TTL
from scripts.bench.common import (
    AUTH,
    Bench,
    Row,
    offload_workers,
    percentile,
    process_rss_mb,
    start,
    stop,
    wait_for,
    web_server,
)
from scripts.bench.drain import QUEUES, fill, rq_worker
from scripts.embedded_redis import STREAM_NODE_MAX_BYTES
from scripts.procfile import procfile_command

BENCH_TASKS = {"OFFLOAD_TASK_MODULES": "scripts.bench.bench_tasks"}


def pickup(bench: Bench, jobs: int, with_peers: list[peers.Peer] | None = None) -> None:
    """Enqueue → the task starts, one job at a time with idle workers (RQ's own timestamps; the
    peers' tasks report their own wait). Offload's row is the baseline of the others."""
    rows: dict[str, list[float]] = {}
    for name, (settings, argv) in {
        "Offload (Procfile worker)": procfile_command("worker"),
        "RQ Worker (fork per job)": rq_worker("rq.worker.Worker"),
    }.items():
        bench.flush()
        processes = [start(argv, bench.env(**settings), bench.scratch / f"pickup-{i}.log") for i in range(2)]
        try:
            rows[name] = _pickup_waits(bench, jobs)
        finally:
            for process in processes:
                stop(process)
    for peer in with_peers or []:
        bench.flush()
        process = start(peer.worker_argv(2), peer.env(bench), bench.scratch / f"pickup-{peer.name}.log")
        try:
            time.sleep(2)  # the peer's workers are up and waiting
            rows[peer.title] = peer.pickup_waits(bench, jobs)
        finally:
            stop(process)
    ours = rows["Offload (Procfile worker)"]
    for name, waits in rows.items():
        versus = ""
        if waits is not ours and waits:
            versus = (
                f"Offload's p50 {percentile(ours, 0.5) / percentile(waits, 0.5):.2f}×, "
                f"p99 {percentile(ours, 0.99) / percentile(waits, 0.99):.2f}× this"
            )
        bench.add(
            Row(
                "pickup",
                f"enqueue → start p50 / p99, {name}, idle",
                f"{percentile(waits, 0.5):.2f} / {percentile(waits, 0.99):.2f} ms" if waits else "no figure",
                ratio=versus,
                note=f"{jobs} jobs one at a time",
            )
        )


def _pickup_waits(bench: Bench, jobs: int) -> list[float]:
    connection = bench.redis()
    wait_for(lambda: connection.scard("rq:workers") >= 2, what="workers")
    time.sleep(0.5)
    waits = []
    for _ in range(jobs):
        job = submission.enqueue(connection, "bench.noop")
        wait_for(lambda key=job.key: connection.hget(key, "status") == b"finished", what="a job to finish")
        job = TaskJob.fetch(job.id, connection=connection, serializer=JSONSerializer)
        waits.append((job.started_at - job.enqueued_at).total_seconds() * 1000)
        time.sleep(0.02)  # the worker is back waiting before the next one
    connection.close()
    return waits


def redis_costs(bench: Bench, jobs: int) -> None:
    """Commands per job (INFO commandstats) to enqueue and to process; memory per job over its life."""
    bench.flush()
    connection = bench.redis()
    with web_server(bench) as base:
        session = requests.Session()
        calls = 200
        connection.config_resetstat()
        for _ in range(calls):
            session.post(f"{base}/api/jobs", json={"task": "bench.noop"}, headers=AUTH, timeout=10).raise_for_status()
        per_request = _commands(connection) / calls
        scripts_per_request = _commands(connection, "cmdstat_evalsha") / calls
    bench.flush()
    fill(bench, jobs, "bench.short_lived")
    connection.config_resetstat()
    with offload_workers(bench, 2, **BENCH_TASKS):
        wait_for(lambda: _finished(connection) >= jobs, timeout=300, what="the jobs to finish")
        per_job = _commands(connection) / jobs
    bench.add(
        Row(
            "redis",
            "commands per POST /api/jobs",
            f"{per_request:.1f}",
            note=f"{scripts_per_request:.1f} script call per request runs the rest: rate limit, queue cap (when set), "
            "job, queue entry, index, first event, metrics (plus the web's HTTP metrics, sent in batches)",
        ),
        Row("redis", "commands per job processed (Offload worker)", f"{per_job:.1f}", note="inside scripts included"),
    )

    for node_bytes in (4096, STREAM_NODE_MAX_BYTES):
        connection.config_set("stream-node-max-bytes", node_bytes)
        queued, finished, expired = _memory_per_job(bench, connection, jobs)
        setting = f"stream-node-max-bytes {node_bytes}" + (" (Redis default)" if node_bytes == 4096 else "")
        bench.add(
            Row("redis", f"memory per queued job, {setting}", f"{queued:,.0f} B"),
            Row("redis", f"memory per finished job (result kept), {setting}", f"{finished:,.0f} B"),
            Row(
                "redis",
                f"memory per job after its result TTL ({RESULT_TTL} s), {setting}",
                f"{expired:,.0f} B",
                note="index and registry entries go at the next listing / cleanup",
            ),
        )
    connection.close()


def _memory_per_job(bench: Bench, connection: redis.Redis, jobs: int) -> tuple[float, float, float]:
    bench.flush()
    time.sleep(0.5)
    empty = _memory(connection)
    fill(bench, jobs, "bench.short_lived")
    queued = _memory(connection)
    with offload_workers(bench, 2, **BENCH_TASKS):
        wait_for(lambda: _finished(connection) >= jobs, timeout=300, what="the jobs to finish")
        finished = _memory(connection)
        time.sleep(RESULT_TTL + 1)
        for key in connection.scan_iter(count=1000):  # expire lazily-expired keys now
            connection.exists(key)
        expired = _memory(connection)
    return (queued - empty) / jobs, (finished - empty) / jobs, (expired - empty) / jobs


def worker_memory(bench: Bench, jobs: int) -> None:
    """One Offload worker through ``jobs`` jobs: its RSS after 10 % of them and at the end."""
    bench.flush()
    fill(bench, jobs)
    connection = bench.redis()
    samples: list[tuple[int, float]] = []
    with offload_workers(bench, 1) as (process,):
        while True:
            done = _finished(connection)
            samples.append((done, process_rss_mb(process.pid)))
            if done >= jobs:
                break
            time.sleep(0.25)
    connection.close()
    warm = next(rss for done, rss in samples if done >= jobs // 10)
    end = samples[-1][1]
    peak = max(rss for _, rss in samples)
    bench.add(
        Row(
            "worker memory",
            f"one Offload worker, RSS after {jobs // 10:,} and after {jobs:,} jobs",
            f"{warm:.1f} → {end:.1f} MB",
            f"{end - warm:+.1f} MB",
            f"peak {peak:.1f} MB",
        )
    )


def _commands(connection: object, only: str | None = None) -> int:
    stats = connection.info("commandstats")  # type: ignore[attr-defined]
    if only is not None:
        return int(stats.get(only, {}).get("calls", 0))
    return sum(value["calls"] for name, value in stats.items() if "config" not in name and "info" not in name)


def _memory(connection: object) -> int:
    return int(connection.info("memory")["used_memory"])  # type: ignore[attr-defined]


def _finished(connection: object) -> int:
    return sum(connection.zcard(f"rq:finished:{name}") for name in QUEUES)  # type: ignore[attr-defined]
