"""Refuse new work at the door: rate limits, a cap per queue, a memory headroom.

Accepted work must never be lost, so it is better to say "not now" (429 or 503 with
Retry-After) than to let Redis hit its memory limit and refuse writes, or evict. The
memory headroom is checked here (read at most once a second); the rate limits and the
queue cap are counted by the write itself, in the same atomic step (``jobs.submission``).
Each refusal is a ``RefusedError``; ``app.domain_problems`` says how the API answers it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from flask import current_app

from app import rate_limits
from app.redis_client import get_redis
from jobs.submission import Admission, Call, RefusedError

_MEMORY_CACHE = "offload.memory_ratio"
_MEMORY_CACHE_SECONDS = 1.0


def admission(calls: Sequence[Call], limited: bool = True) -> Admission:
    """What a submission of ``calls`` must pass (``limited``: the caller's rate limit too, which an
    operator's CLI has not); raises ``RefusedError`` now if Redis memory is nearly full."""
    check_memory("jobs")
    windows = rate_limits.submission_windows() if limited else []
    return Admission.of(calls, windows, current_app.config["QUEUE_MAX_LENGTH"])


def check_memory(what: str) -> None:
    """``RefusedError`` now if Redis memory is nearly full: new ``what`` (jobs, uploads) wait."""
    headroom = current_app.config["REDIS_MEMORY_MAX_RATIO"]
    if headroom:
        ratio = _memory_ratio()
        if ratio is not None and ratio > headroom:
            detail = f"Redis uses {ratio:.0%} of its maxmemory; new {what} are refused above {headroom:.0%}"
            raise RefusedError("memory", detail)


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
