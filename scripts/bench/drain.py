"""Drain rate: N no-op jobs waiting in Redis, P worker processes started, timed until every job
is done (worker start-up included, as a deploy or a scale-up pays it)."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from jobs import submission
from jobs.registry import registry
from jobs.vocabulary import DEFAULT_QUEUES
from scripts.bench import peers
from scripts.bench.common import Bench, Row, ratio, session_cpu_seconds, spread, start, stop, wait_for
from scripts.procfile import procfile_command

CHUNK = 1000
PROCESSES = 2
QUEUES = DEFAULT_QUEUES
OFFLOAD = "Offload (Procfile worker)"


@dataclass
class Drain:
    jobs: int
    seconds: float
    worker_cpu: float
    redis_cpu: float

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds


def fill(bench: Bench, jobs: int, task: str = "bench.noop") -> None:
    """Enqueue ``jobs`` calls of ``task`` the way the API does, a chunk per transaction."""
    registry.load()
    with bench.redis() as connection:
        for begin in range(0, jobs, CHUNK):
            calls = [submission.prepare(task, {}) for _ in range(min(CHUNK, jobs - begin))]
            submission.write(connection, calls)


def rq_worker(worker_class: str) -> tuple[dict[str, str], list[str]]:
    """RQ's own ``rq worker`` with its own job class and defaults, reading JSON like Offload's jobs.

    ``--config jobs.worker.rq_cli_config`` imports the task modules once in the worker, as an RQ user's
    settings module would; without it every forked work-horse would import them again.
    """
    rq = str(Path(sys.executable).parent / "rq")
    return {}, [
        rq,
        "worker",
        "--config",
        "jobs.worker.rq_cli_config",
        "--serializer",
        "json",
        "--worker-class",
        worker_class,
    ]


def drain_rq(bench: Bench, jobs: int, settings: dict[str, str], argv: list[str], tree: Path | None = None) -> Drain:
    bench.flush()
    fill(bench, jobs)
    connection = bench.redis()
    redis_cpu = _redis_cpu(connection)
    began = time.perf_counter()
    env = bench.env(**settings, **({"PYTHONPATH": str(tree)} if tree else {}))
    cwd = {"cwd": tree} if tree else {}
    workers = [start([*argv, "--burst"], env, bench.scratch / f"drain-{i}.log", **cwd) for i in range(PROCESSES)]
    worker_cpu = 0.0
    for worker in workers:
        _, status, usage = os.wait4(worker.pid, 0)
        worker.returncode = os.waitstatus_to_exitcode(status)
        worker_cpu += usage.ru_utime + usage.ru_stime
    seconds = time.perf_counter() - began
    redis_cpu = _redis_cpu(connection) - redis_cpu
    finished = sum(connection.zcard(f"rq:finished:{name}") for name in QUEUES)
    connection.close()
    if finished != jobs:
        raise RuntimeError(f"{finished} of {jobs} jobs finished; see the logs in {bench.scratch}")
    return Drain(jobs, seconds, worker_cpu, redis_cpu)


def drain_peer(bench: Bench, jobs: int, peer: peers.Peer) -> Drain:
    bench.flush()
    peer.fill(bench, jobs)
    connection = bench.redis()
    redis_cpu = _redis_cpu(connection)
    began = time.perf_counter()
    process = start(peer.worker_argv(PROCESSES), peer.env(bench), bench.scratch / f"{peer.name}.log")
    try:
        wait_for(lambda: int(connection.get(peers.DONE_KEY) or 0) >= jobs, timeout=600, what=f"{peer.name} to drain")
        seconds = time.perf_counter() - began
        redis_cpu = _redis_cpu(connection) - redis_cpu
        worker_cpu = session_cpu_seconds(process.pid)
    finally:
        stop(process)
        connection.close()
    return Drain(jobs, seconds, worker_cpu, redis_cpu)


def run(bench: Bench, jobs: int, with_peers: list[peers.Peer], baseline_tree: Path | None = None) -> dict[str, Drain]:
    """Every setup ``bench.repeat`` times, interleaved so that drift hits all of them alike.

    ``baseline_tree``: another checkout (``git worktree add /tmp/before main``) whose Procfile
    worker drains beside this one, for a before/after figure from one run."""
    setups: dict[str, object] = {
        OFFLOAD: procfile_command("worker"),
        **(
            {f"Offload at {baseline_tree}": (*procfile_command("worker", baseline_tree / "Procfile"), baseline_tree)}
            if baseline_tree
            else {}
        ),
        "RQ Worker (rq worker, fork per job)": rq_worker("rq.worker.Worker"),
        "RQ SimpleWorker": rq_worker("rq.worker.SimpleWorker"),
    }
    for peer in with_peers:
        setups[peer.title] = peer
    results: dict[str, list[Drain]] = {name: [] for name in setups}
    for _ in range(bench.repeat):
        for name, setup in setups.items():
            if isinstance(setup, peers.Peer):
                results[name].append(drain_peer(bench, jobs, setup))
            else:
                settings, argv, *tree = setup  # type: ignore[misc]
                results[name].append(drain_rq(bench, jobs, settings, argv, *tree))
    baseline = _median_rate(results["RQ Worker (rq worker, fork per job)"])
    offload = _median_rate(results[OFFLOAD])
    for name, drains in results.items():
        versus = f"; Offload is {ratio(offload, _median_rate(drains))} this" if name != OFFLOAD else ""
        rates = [d.rate for d in drains]
        cpu = [d.worker_cpu / d.jobs * 1000 for d in drains]
        redis_cpu = [d.redis_cpu / d.jobs * 1000 for d in drains]
        bench.add(
            Row(
                "drain",
                f"{name}: {jobs:,} no-op jobs, {PROCESSES} processes",
                spread(rates, " jobs/s"),
                f"{ratio(_median_rate(drains), baseline)} RQ Worker{versus}",
                f"worker CPU {spread(cpu, ' ms', 2)}/job, Redis CPU {spread(redis_cpu, ' ms', 3)}/job",
            )
        )
    return {name: drains[0] for name, drains in results.items()}


def _median_rate(drains: list[Drain]) -> float:
    rates = sorted(d.rate for d in drains)
    return rates[len(rates) // 2]


def _redis_cpu(connection: object) -> float:
    info = connection.info("cpu")  # type: ignore[attr-defined]
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
