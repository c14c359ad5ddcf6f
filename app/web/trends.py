"""/trends (charts of jobs over time: all, per queue, per task) and /alerts (the rules' state, a test
notification): on the same services as ``GET /api/stats`` and ``GET /api/alerts``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app import auditing, charts
from app.redis_client import get_redis
from jobs.alerts import evaluation, notifications
from jobs.registry import UnknownTaskError, registry
from jobs.settings import get_settings
from jobs.submission import InvalidCall
from jobs.trends import series, stats

bp = Blueprint("trends", __name__)
RANGES = {"hour": "Last hour", "day": "Last day", "month": "Last 30 days"}


def charts_of(found: dict[str, Any]) -> list[charts.Chart]:
    """The charts of one stats answer: throughput and failures always; durations for a task;
    depth and latency for a queue."""
    points, step = found["points"], found["step_seconds"]
    per = "minute" if step == 60 else f"{step // 60} minutes" if step < 3600 else f"{step // 3600} hours"
    made = [charts.build(f"Jobs per {per}", points, [("finished", "finished"), ("failed", "failed")], "", step)]
    if found["task"]:
        made.append(charts.build("Failure rate", points, [("failure_ratio", "failed share")], "%", step))
        wanted = [("duration_p50", "p50"), ("duration_p95", "p95"), ("duration_max", "max")]
        made.append(charts.build("Duration", points, wanted, "s", step))
    elif found["queue"]:
        made.append(charts.build("Queued jobs", points, [("depth", "depth")], "", step))
        wanted = [("oldest_age", "oldest job's wait"), ("wait_p95", "wait p95")]
        made.append(charts.build("Latency", points, wanted, "s", step))
    else:
        made.append(charts.build(f"Enqueued per {per}", points, [("enqueued", "enqueued")], "", step))
    return made


@bp.get("/trends")
def trends() -> tuple[str, int]:
    chosen = request.args.get("range", "hour")
    task, queue = request.args.get("task") or None, request.args.get("queue") or None
    if chosen not in series.RANGES:
        abort(400, f"range must be one of {', '.join(series.RANGES)}")
    try:
        found = stats.stats(get_redis(), chosen, task, queue)
    except (UnknownTaskError, InvalidCall) as error:
        abort(404, str(error).split(";")[0])
    subject = f"task {task}" if task else f"queue {queue}" if queue else "all jobs"
    page = render_template(
        "trends.html",
        charts=charts_of(found),
        ranges=RANGES,
        chosen=chosen,
        subject=subject,
        task=task,
        queue=queue,
        tasks=[each.name for each in registry.all()],
        queues=get_settings().QUEUES,
    )
    return page, 200


@bp.get("/alerts")
def alerts() -> str:
    state = sorted(
        evaluation.read_state(get_redis()).values(), key=lambda alert: (alert.state != "firing", alert.alert)
    )
    return render_template(
        "alerts.html",
        alerts=state,
        rules=get_settings().ALERT_RULES,
        channels=notifications.channels(),
        sent=request.args.getlist("sent"),
    )


@bp.post("/alerts/test")
def test_notification() -> ResponseReturnValue:
    jobs = notifications.send_test(get_redis())
    auditing.record("test notification", done=len(jobs))
    return redirect(url_for(".alerts", sent=[job.id for job in jobs] or ["none"]), 303)
