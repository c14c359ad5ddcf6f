"""GET /api/stats (the charts' numbers), GET /api/alerts and POST /api/alerts/test."""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, request
from pydantic import ValidationError

from app import auditing
from app.api.schemas import Strict
from app.problems import invalid_arguments
from app.redis_client import get_redis
from jobs.alerts import evaluation, notifications
from jobs.trends import stats

bp = Blueprint("trends", __name__)


class StatsQuery(Strict):
    range: Literal["hour", "day", "month"] = "hour"
    task: str | None = None
    queue: str | None = None


@bp.get("/stats")
def get_stats() -> dict[str, Any]:
    try:
        query = StatsQuery.model_validate(request.args.to_dict())
    except ValidationError as error:
        raise invalid_arguments(error, prefix=("query",)) from None
    return stats.stats(get_redis(), query.range, query.task, query.queue)


@bp.get("/alerts")
def list_alerts() -> dict[str, Any]:
    alerts = sorted(evaluation.read_state(get_redis()).values(), key=lambda alert: alert.alert)
    return {"alerts": [alert.as_dict() for alert in alerts], "channels": notifications.channels()}


@bp.post("/alerts/test")
def test_alert() -> tuple[dict[str, Any], int]:
    jobs = notifications.send_test(get_redis())
    auditing.record("test notification", done=len(jobs))
    return {"jobs": [job.id for job in jobs]}, 202
