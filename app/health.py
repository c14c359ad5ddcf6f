"""/healthz (the process answers) and /readyz (it can do useful work, and if not, why)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from app.auth import public
from app.redis_client import get_redis
from jobs import readiness

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@public
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@bp.get("/readyz")
@public
def readyz() -> tuple[dict[str, Any], int]:
    body = readiness.check(get_redis())
    return body, 200 if body["status"] == "ready" else 503
