"""/queues (pause, resume, empty), /workers (stop after the current job) and /cron (run now):
the fleet's pages, on the same services as ``/api/queues``, ``/api/workers`` and ``/api/cron``."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app import auditing
from app.fleet_documents import worker_document
from app.redis_client import get_redis
from jobs.cron import entries
from jobs.fleet import queue_control, queue_overview, worker_overview
from jobs.fleet.queue_control import UnknownQueueError
from jobs.fleet.worker_overview import UnknownWorkerError
from jobs.registry import UnknownTaskError

bp = Blueprint("fleet", __name__)


@bp.get("/queues")
def queues() -> str:
    return render_template("queues.html", queues=queue_overview.overview(get_redis()), done=request.args.get("done"))


@bp.post("/queues/<name>/<any(pause, resume):action>")
def pause_or_resume(name: str, action: str) -> ResponseReturnValue:
    step = queue_control.pause if action == "pause" else queue_control.resume
    try:
        changed = step(get_redis(), name)
    except UnknownQueueError as error:
        abort(404, str(error))
    auditing.record(f"{action} queue", filters={"queue": name}, done=int(changed))
    said = (
        f"Queue {name} {'paused' if action == 'pause' else 'resumed'}." if changed else f"Queue {name} was already so."
    )
    return redirect(url_for(".queues", done=said), 303)


@bp.route("/queues/<name>/empty", methods=["GET", "POST"])
def empty(name: str) -> ResponseReturnValue:
    redis = get_redis()
    try:
        waiting = queue_control.waiting(redis, name)
    except UnknownQueueError as error:
        abort(404, str(error))
    if request.method == "GET":
        return render_template("queue_empty.html", name=name, count=waiting, outcome=None)
    outcome = queue_control.empty(redis, name)
    auditing.record("empty queue", filters={"queue": name}, done=outcome.done, skipped=sum(outcome.skipped.values()))
    return render_template("queue_empty.html", name=name, count=waiting, outcome=outcome)


@bp.get("/workers")
def workers() -> str:
    now = datetime.now(UTC)
    found = [worker_document(worker, now) for worker in worker_overview.workers(get_redis())]
    return render_template("workers.html", workers=found, done=request.args.get("done"))


@bp.post("/workers/<name>/stop")
def stop_worker(name: str) -> ResponseReturnValue:
    try:
        worker_overview.stop_after_job(get_redis(), name)
    except UnknownWorkerError as error:
        abort(404, str(error))
    auditing.record("stop worker", filters={"worker": name})
    return redirect(url_for(".workers", done=f"Worker {name} stops after its current job."), 303)


@bp.get("/cron")
def cron() -> str:
    return render_template("cron.html", entries=entries.entries(get_redis()))


@bp.post("/cron/<name>/run")
def run_now(name: str) -> ResponseReturnValue:
    try:
        job = entries.run_now(get_redis(), name)
    except UnknownTaskError as error:
        abort(404, str(error))
    auditing.record("run cron entry now", job=job.id, filters={"entry": name})
    return redirect(url_for("web.pages.job", job_id=job.id), 303)
