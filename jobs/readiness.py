"""Can this deployment do useful work, and if not, why: the one answer /readyz and `flask offload doctor` give."""

from __future__ import annotations

import time
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Worker
from rq.scheduler import SCHEDULER_LOCKING_KEY_TEMPLATE
from rq.suspension import is_suspended

from jobs.fleet import queue_control
from jobs.queues import queue_for
from jobs.settings import get_settings
from jobs.worker.liveness import heartbeat_age, is_alive


def check(redis: Redis) -> dict[str, Any]:
    """Ready when Redis answers, some worker is alive, every queue with work has a worker,
    no queue is paused, and every queue with scheduled jobs has a scheduler. ``status`` is ``ready`` or
    ``unavailable``; ``problems`` says why, in words."""
    problems: list[str] = []
    body: dict[str, Any] = {}
    try:
        started = time.perf_counter()
        redis.ping()
        body["redis"] = {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
        body.update(_work_and_workers(redis, problems))
    except RedisError as error:
        body["redis"] = {"ok": False, "error": type(error).__name__}
        problems.append(f"Redis unreachable: {error}")
    body["status"] = "ready" if not problems else "unavailable"
    body["problems"] = problems
    return body


def _work_and_workers(redis: Redis, problems: list[str]) -> dict[str, Any]:
    registered = Worker.all(connection=redis)
    workers = [worker for worker in registered if is_alive(worker)]
    for worker in registered:
        if worker not in workers:
            age = heartbeat_age(worker)
            problems.append(
                f"worker {worker.name} has sent no heartbeat for {age:.0f} s" if age is not None
                else f"worker {worker.name} has never sent a heartbeat"
            )  # fmt: skip
    suspended = bool(is_suspended(redis))
    if suspended:
        problems.append("RQ is suspended (rq suspend): no job starts until `rq resume`")
    listening = {name for worker in workers for name in worker.queue_names()}
    paused = queue_control.paused(redis)
    with redis.pipeline(transaction=False) as pipe:
        for name in get_settings().QUEUES:
            queue = queue_for(redis, name)
            pipe.llen(queue.key)
            pipe.zcard(queue.scheduled_job_registry.key)
            pipe.exists(SCHEDULER_LOCKING_KEY_TEMPLATE % name)
        answers = iter(pipe.execute())
    queues = {}
    for name in get_settings().QUEUES:
        queued, scheduled, scheduler = next(answers), next(answers), bool(next(answers))
        queues[name] = {
            "queued": queued,
            "scheduled": scheduled,
            "workers": name in listening,
            "scheduler": scheduler,
            "paused": name in paused,
        }
        if name in paused:
            problems.append(f"queue {name!r} is paused: its {queued} queued job(s) wait until it is resumed")
        elif queued and name not in listening:
            problems.append(f"queue {name!r} has {queued} job(s) and no worker listens to it")
        if scheduled and not scheduler:
            problems.append(f"queue {name!r} has {scheduled} scheduled job(s) and no scheduler is running")
    if not workers:
        problems.insert(0, "no worker has sent a heartbeat")
    return {"workers": len(workers), "suspended": suspended, "queues": queues}
