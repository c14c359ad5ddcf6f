"""Refuse new work before Redis runs out of room: a cap per queue, a memory headroom.

Accepted work must never be lost, so it is better to say "not now" at the door (429 or
503 with Retry-After) than to let Redis hit its memory limit and refuse writes, or evict.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from flask import current_app

from app.problems import ApiProblem
from app.redis_client import get_redis
from jobs.enqueue import queue_for

_MEMORY_CACHE = "offload.memory_ratio"
_MEMORY_CACHE_SECONDS = 1.0


def check(queues: Iterable[str], adding: int = 1) -> None:
    """Raise a 429 if a queue would pass QUEUE_MAX_LENGTH, a 503 if Redis memory is nearly full."""
    config = current_app.config
    redis = get_redis()
    limit = config["QUEUE_MAX_LENGTH"]
    if limit:
        names = sorted(set(queues))
        with redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.llen(queue_for(redis, name).key)
            lengths = pipe.execute()
        for name, length in zip(names, lengths, strict=True):
            if length + adding > limit:
                detail = f"queue {name!r} holds {length} jobs (limit {limit}); try again when workers have caught up"
                raise _refusal(429, "Queue full", detail, "queue-full")
    headroom = config["REDIS_MEMORY_MAX_RATIO"]
    if headroom:
        ratio = _memory_ratio()
        if ratio is not None and ratio > headroom:
            detail = f"Redis uses {ratio:.0%} of its maxmemory; new jobs are refused above {headroom:.0%}"
            raise _refusal(503, "Job store nearly full", detail, "memory")


def _refusal(status: int, title: str, detail: str, kind: str) -> ApiProblem:
    retry_after = str(current_app.config["BACKPRESSURE_RETRY_AFTER"])
    return ApiProblem(status, title, detail, type=f"urn:offload:problem:{kind}", headers={"Retry-After": retry_after})


def _memory_ratio() -> float | None:
    """used_memory / maxmemory, read at most once a second per process; None without a maxmemory."""
    cached = current_app.extensions.get(_MEMORY_CACHE)
    if cached is not None and time.monotonic() - cached[0] < _MEMORY_CACHE_SECONDS:
        return cached[1]
    info = get_redis().info("memory")
    maxmemory = int(info.get("maxmemory") or 0)
    ratio = int(info["used_memory"]) / maxmemory if maxmemory else None
    current_app.extensions[_MEMORY_CACHE] = (time.monotonic(), ratio)
    return ratio
