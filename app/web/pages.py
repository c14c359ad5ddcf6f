"""/ (tasks), /tasks/{name} (a task's form), /jobs (history) and /jobs/{id} (one job, live)."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from pydantic import ValidationError
from werkzeug.datastructures import FileStorage

from app import submitting, uploading
from app.api.schemas import ListJobsQuery
from app.documents import arguments, attempt_history, job_document, progress_of, status_of, task_name
from app.domain_problems import problem_of
from app.redis_client import get_redis
from app.web import trends
from app.web.forms import OPTION_PREFIX, args_from_form, field_errors, fields_of
from jobs import finding, lifecycle
from jobs.job import TaskJob
from jobs.lifecycle import UnknownJobError
from jobs.records import job_events, job_index, job_search, uploaded_files
from jobs.records.uploaded_files import UploadQuotaError
from jobs.registry import Task, UnknownTaskError, registry
from jobs.settings import get_settings
from jobs.submission import InvalidCall, RefusedError
from jobs.trends import stats
from jobs.vocabulary import STATUSES

bp = Blueprint("pages", __name__)
RECENT_SCAN = 200
RUNS_PER_TASK = 5
PAGE_SIZE = 25
FILTERS = ("q", "status", "task", "queue", "since", "until")
LOG_TAIL = 200


@bp.get("/")
def tasks() -> str:
    recent, _ = job_index.page(get_redis(), lambda job: True, RECENT_SCAN)
    runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for job in recent:
        row = summary(job)
        if len(runs[row["task"]]) < RUNS_PER_TASK:
            runs[row["task"]].append(row)
    throughput = trends.charts_of(stats.stats(get_redis(), "hour"))[0]
    rows = [summary(job) for job in recent[:10]]
    return render_template("tasks.html", tasks=registry.all(), runs=runs, recent=rows, throughput=throughput)


@bp.route("/tasks/<name>", methods=["GET", "POST"])
def task_form(name: str) -> ResponseReturnValue:
    task = _task_or_404(name)
    fields = fields_of(task.schema())
    if request.method == "GET":
        return _render_form(task, fields, {}, {}, None), 200
    try:
        submission = args_from_form(fields, request.form, request.files, _store_upload)
        errors = submission.errors
        call = submitting.call_from({"task": task.name, "args": submission.args, **_options(request.form)})
        if not errors:
            [job] = submitting.submit([call])
            return redirect(url_for(".job", job_id=job.id), 303)
    except InvalidCall as invalid:  # every field in one pass: what the form found and what validation found
        found = field_errors(invalid.errors, fields)
        errors = {**{name: found[name] for name in found if name not in errors}, **errors}
    except (RefusedError, UploadQuotaError) as refused:  # Redis nearly full, a limit or a quota reached
        problem = problem_of(refused)
        page = _render_form(task, fields, request.form, {}, problem.detail or problem.title)
        return page, problem.status, dict(problem.headers)  # a 429 keeps its Retry-After
    return _render_form(task, fields, request.form, errors, "Some fields need another look."), 422


@bp.get("/jobs")
def history() -> tuple[str, int]:
    redis = get_redis()
    filters = {key: value.strip() for key, value in request.args.items() if value.strip() and key in FILTERS}
    cursor = request.args.get("cursor") or None
    problem = None
    try:
        query = ListJobsQuery.model_validate({**with_utc(filters), "cursor": cursor, "limit": PAGE_SIZE})
    except ValidationError as error:
        problem = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors(include_url=False))
        query = ListJobsQuery(limit=PAGE_SIZE)
    jobs, found = finding.find(redis, query.search(), query.limit, query.cursor)
    return render_template(
        "jobs.html",
        rows=rows(jobs),
        counts={state: found.counts.get(state, 0) for state in STATUSES},
        found=found,
        filters=filters,
        next_cursor=found.next_cursor,
        statuses=STATUSES,
        queues=get_settings().QUEUES,
        tasks=[task.name for task in registry.all()],
        problem=problem,
    ), 400 if problem else 200


@bp.get("/jobs/<job_id>")
def job(job_id: str) -> str:
    redis = get_redis()
    # The stream position first: anything that happens after it reaches the page as an event.
    last_event_id = job_events.last_event_id(redis, job_id)
    found = _job_or_404(job_id)
    document = job_document(found)
    lines, dropped = job_events.read_logs(redis, job_id, LOG_TAIL)
    artifact = _artifact_of(document)
    history = attempt_history(found, document["status"])
    return render_template(
        "job.html",
        job=document,
        lines=lines,
        dropped=dropped,
        last_event_id=last_event_id,
        artifact=artifact,
        attempts=history,
    )


def with_utc(filters: dict[str, str]) -> dict[str, str]:
    """The pages' times are UTC (they say so) and carry no offset; the filters want one. A value
    longer than ``YYYY-MM-DDTHH:MM:SS`` has one already (or is wrong, for the validation to say)."""
    return {
        key: f"{value}+00:00" if key in ("since", "until") and len(value) <= 19 and "+" not in value else value
        for key, value in filters.items()
    }


def summary(job: TaskJob, error: tuple[str, str] | None = None) -> dict[str, Any]:
    """What a row of a job list shows: no result, so no extra round trip per job (the page's
    errors come in one read: ``rows``)."""
    status = status_of(job)
    percent = progress_of(job, status)["percent"]
    duration = None
    if job.started_at is not None and job.ended_at is not None and status in ("finished", "failed", "stopped"):
        duration = max(0.0, (job.ended_at - job.started_at).total_seconds())
    return {
        "id": job.id,
        "task": task_name(job) or "?",
        "status": status,
        "queue": job.origin,
        "created_at": job.created_at.replace(tzinfo=UTC) if job.created_at else None,
        "percent": None if percent is None else round(percent),
        "error": error if status == "failed" else None,
        "duration": duration,
        "args": argument_summary(arguments(job)),
    }


def rows(jobs: list[TaskJob]) -> list[dict[str, Any]]:
    errors = job_search.errors_of(get_redis(), [job.id for job in jobs])
    return [summary(job, error) for job, error in zip(jobs, errors, strict=True)]


def argument_summary(args: dict[str, Any] | None, limit: int = 80) -> str:
    """``name=value, ...`` in at most ``limit`` characters (secrets are already masked)."""
    if not args:
        return ""
    text = ", ".join(f"{key}={json.dumps(value, ensure_ascii=False, default=str)}" for key, value in args.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _task_or_404(name: str) -> Task:
    try:
        return registry.lookup(name)
    except UnknownTaskError:
        abort(404, f"No task is named {name!r}.")


def _job_or_404(job_id: str) -> TaskJob:
    try:
        return lifecycle.find(get_redis(), job_id)  # the API's lookup: the same id rules
    except UnknownJobError:
        abort(404, f"No job has the id {job_id!r} (or it expired).")


def _artifact_of(document: dict[str, Any]) -> dict[str, Any] | None:
    result = document.get("result")
    if "artifact" not in document["links"] or not isinstance(result, dict):
        return None
    described = result.get("artifact") or {}
    return {**described, "url": document["links"]["artifact"]}


def _store_upload(sent: FileStorage) -> str:
    upload = uploaded_files.Upload(
        sent.read(), sent.mimetype or "application/octet-stream", sent.filename or "upload.bin"
    )
    return uploading.accept(upload)


def _options(form: Any) -> dict[str, Any]:
    """Queue, delay and start time as the API takes them; unreadable values go through for it to name."""
    options: dict[str, Any] = {}
    queue = form.get(f"{OPTION_PREFIX}queue", "")
    if queue:
        options["queue"] = queue
    delay = form.get(f"{OPTION_PREFIX}delay", "").strip()
    if delay:
        try:
            options["delay"] = float(delay)
        except ValueError:
            options["delay"] = delay
    at = form.get(f"{OPTION_PREFIX}at", "").strip()
    if at:
        try:
            options["at"] = datetime.fromisoformat(at).replace(tzinfo=UTC).isoformat()  # the form asks for UTC
        except ValueError:
            options["at"] = at
    return options


def _render_form(task: Task, fields: list[Any], values: Any, errors: dict[str, list[str]], message: str | None) -> str:
    queues: list[str] = list(get_settings().QUEUES)
    return render_template(
        "task_form.html",
        task=task,
        fields=fields,
        values=values,
        errors=errors,
        message=message,
        queues=queues,
        prefix=OPTION_PREFIX,
        multipart=any(item.kind == "file" for item in fields),
    )
