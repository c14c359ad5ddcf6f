"""Refuse new work at the door: rate limits, a cap per queue, a memory headroom.

Accepted work must never be lost, so it is better to say "not now" (429 or 503 with
Retry-After) than to let Redis hit its memory limit and refuse writes, or evict. The
memory headroom is checked here (read at most once a second); the rate limits and the
queue cap are counted by the write itself, in the same atomic step (``jobs.enqueue``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from flask import current_app

from app import rate_limits
from app.problems import ApiProblem
from app.redis_client import get_redis
from jobs.enqueue import Admission, Call, RefusedError

_MEMORY_CACHE = "offload.memory_ratio"
_MEMORY_CACHE_SECONDS = 1.0


def admission(calls: Sequence[Call]) -> Admission:
    """What a submission of ``calls`` must pass; raises a 503 now if Redis memory is nearly full."""
    check_memory("jobs")
    return Admission.of(calls, rate_limits.submission_windows(), current_app.config["QUEUE_MAX_LENGTH"])


def check_memory(what: str) -> None:
    """A 503 now if Redis memory is nearly full: new ``what`` (jobs, uploads) wait."""
    headroom = current_app.config["REDIS_MEMORY_MAX_RATIO"]
    if headroom:
        ratio = _memory_ratio()
        if ratio is not None and ratio > headroom:
            detail = f"Redis uses {ratio:.0%} of its maxmemory; new {what} are refused above {headroom:.0%}"
            raise _refusal(503, "Job store nearly full", detail, "memory")


@contextmanager
def refusals() -> Iterator[None]:
    """Turn a write's ``RefusedError`` into its problem: 429 with Retry-After."""
    try:
        yield
    except RefusedError as refused:
        if refused.reason == "rate-limited":
            raise rate_limits.too_many_submissions(refused.detail, refused.retry_after or 1) from None
        raise _refusal(429, "Queue full", refused.detail, "queue-full") from None


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
