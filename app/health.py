"""/healthz (the process answers) and /readyz (it can do useful work)."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint
from redis.exceptions import RedisError
from rq import Worker

from app.auth import public
from app.redis_client import get_redis

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@public
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@bp.get("/readyz")
@public
def readyz() -> tuple[dict[str, Any], int]:
    redis = get_redis()
    problems: list[str] = []
    body: dict[str, Any] = {}
    try:
        started = time.perf_counter()
        redis.ping()
        body["redis"] = {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
        body["workers"] = Worker.count(connection=redis)
        if body["workers"] == 0:
            problems.append("no worker has sent a heartbeat")
    except RedisError as error:
        body["redis"] = {"ok": False, "error": type(error).__name__}
        problems.append(f"Redis unreachable: {error}")
    body["status"] = "ready" if not problems else "unavailable"
    body["problems"] = problems
    return body, 200 if not problems else 503
