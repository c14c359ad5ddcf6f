"""/api/jobs: enqueue (one or a batch), read, list, cancel, retry, delete, logs, artifact."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, current_app, request
from pydantic import ValidationError
from rq.exceptions import NoSuchJobError

from app import backpressure, idempotency
from app.api.schemas import SCHEDULE_HORIZON_SECONDS, EnqueueRequest, ListJobsQuery
from app.api.tasks import find_task
from app.auth import credential_scope
from app.documents import job_document, job_filter
from app.json_body import json_body
from app.problems import ApiProblem, field_problem, invalid_arguments, validation_problem
from app.redis_client import get_redis
from jobs import artifacts, events, lifecycle
from jobs import enqueue as queueing
from jobs import index as job_index
from jobs.job import TaskJob
from jobs.settings import get_settings
from jobs.vocabulary import JOB_ID

bp = Blueprint("jobs", __name__)


@bp.post("/jobs")
def create_job() -> tuple[dict[str, Any], int, dict[str, str]]:
    body = json_body()
    call = prepare_call(body)
    admission = backpressure.admission([call])
    connection = get_redis()
    key = request.headers.get("Idempotency-Key")
    claim_key = None
    if key is not None:
        idempotency.check_key(key)
        claim_key = idempotency.redis_key(credential_scope(), key)
        existing = idempotency.claim(connection, claim_key, body, call.job_id)
        if existing is not None:
            return _created(existing, 200)
    try:
        with backpressure.refusals():
            job = queueing.submit(connection, call, admission)
    except Exception:
        if claim_key is not None:
            idempotency.release(connection, claim_key)
        raise
    if claim_key is not None:
        idempotency.keep(connection, claim_key)
    return _created(job, 202 if job.id == call.job_id else 200)


@bp.post("/jobs/batch")
def create_jobs() -> tuple[list[dict[str, Any]], int]:
    body = json_body()
    limit = current_app.config["BATCH_MAX_ITEMS"]
    if not isinstance(body, list) or not body:
        raise field_problem([], "Input should be a non-empty array", "send a non-empty JSON array", "Invalid batch")
    if len(body) > limit:
        raise ApiProblem(
            413,
            "Batch too large",
            f"a batch holds at most {limit} items; split it",
            type="urn:offload:problem:batch-too-large",
        )
    results: list[dict[str, Any]] = []
    calls: list[tuple[int, queueing.Call]] = []
    for index, item in enumerate(body):
        try:
            calls.append((index, prepare_call(item)))
            results.append({})
        except ApiProblem as problem:
            results.append({"index": index, "status": problem.status, "problem": problem.to_dict()})
    if not calls:
        errors = [
            {"loc": [item["index"], *error["loc"]], "msg": error["msg"], "type": error.get("type")}
            for item in results
            for error in item["problem"].get("errors") or [{"loc": [], "msg": item["problem"]["detail"]}]
        ]
        raise validation_problem("no item of the batch could be enqueued", errors, "Invalid batch")
    admission = backpressure.admission([call for _, call in calls])
    connection = get_redis()
    plain = [call for _, call in calls if not call.task.unique_on]
    with backpressure.refusals():  # the admission is counted once, by the write of the plain calls
        written = iter(queueing.write(connection, plain, admission))
    jobs = [queueing.submit(connection, call) if call.task.unique_on else next(written) for _, call in calls]
    for (index, _), job in zip(calls, jobs, strict=True):
        results[index] = {"index": index, "status": 202, "job": job_document(job)}
    return results, 202


@bp.get("/jobs/<job_id>")
def show_job(job_id: str) -> dict[str, Any]:
    return job_document(fetch_job(job_id))


@bp.get("/jobs")
def list_jobs() -> dict[str, Any]:
    try:
        query = ListJobsQuery.model_validate(request.args.to_dict())
    except ValidationError as error:
        raise invalid_arguments(error, prefix=("query",)) from None

    check_queue(query.queue, ("query", "queue"))
    matches = job_filter(query.status, query.task, query.queue)
    jobs, next_cursor = job_index.page(get_redis(), matches, query.limit, query.cursor)
    return {"jobs": [job_document(job) for job in jobs], "next_cursor": next_cursor}


@bp.post("/jobs/<job_id>/cancel")
def cancel_job(job_id: str) -> tuple[dict[str, Any], int]:
    job = fetch_job(job_id)
    with _conflicts():
        lifecycle.cancel(get_redis(), job)
    return job_document(fetch_job(job_id)), 202


@bp.post("/jobs/<job_id>/retry")
def retry_job(job_id: str) -> tuple[dict[str, Any], int, dict[str, str]]:
    job = fetch_job(job_id)
    with _conflicts():
        lifecycle.retry(get_redis(), job)
    return _created(fetch_job(job_id), 202)


@bp.delete("/jobs/<job_id>")
def delete_job(job_id: str) -> tuple[str, int]:
    job = fetch_job(job_id)
    with _conflicts():
        lifecycle.forget(get_redis(), job)
    return "", 204


@bp.get("/jobs/<job_id>/logs")
def job_logs(job_id: str) -> dict[str, Any]:
    fetch_job(job_id)
    tail = request.args.get("tail", type=int)
    if tail is not None and not 1 <= tail <= events.LOG_MAX_LINES:
        raise field_problem(["query", "tail"], f"must be 1 to {events.LOG_MAX_LINES}")
    lines, dropped = events.read_logs(get_redis(), job_id, tail)
    return {"job_id": job_id, "lines": lines, "dropped": dropped}


@bp.get("/jobs/<job_id>/artifact")
def job_artifact(job_id: str) -> Response:
    fetch_job(job_id)
    artifact = artifacts.load(get_redis(), job_id)
    if artifact is None:
        raise ApiProblem(
            404, "No artifact", "this job has no artifact (or it expired)", type="urn:offload:problem:no-artifact"
        )
    response = Response(artifact.data, mimetype=artifact.content_type)
    response.headers["Content-Disposition"] = attachment(artifact.filename)
    return response


def attachment(filename: str) -> str:
    """A Content-Disposition any server can send: an ASCII ``filename`` beside the exact name
    as RFC 5987's ``filename*`` (a name like ``ｒｅｐｏｒｔ.csv`` made gunicorn answer 500)."""
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", filename).strip("._") or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def fetch_job(job_id: str) -> TaskJob:
    """The job with that id, or a 404 problem."""
    if JOB_ID.fullmatch(job_id):
        try:
            return lifecycle.fetch(get_redis(), job_id)
        except NoSuchJobError:
            pass
    raise ApiProblem(404, "Unknown job", f"no job with id {job_id!r}", type="urn:offload:problem:unknown-job")


def prepare_call(body: Any) -> queueing.Call:
    """A validated call from one request body, or the problem that stops it."""
    try:
        request_ = EnqueueRequest.model_validate(body)
    except ValidationError as error:
        raise invalid_arguments(error) from None
    task = find_task(request_.task)
    check_queue(request_.queue, ("queue",))
    _check_schedule(request_)
    _check_parents(request_.depends_on or [])
    try:
        return queueing.prepare(
            task,
            request_.args,
            queue=request_.queue,
            timeout=request_.timeout,
            delay=request_.delay,
            at=request_.at,
            depends_on=request_.depends_on or [],
        )
    except ValidationError as error:
        raise invalid_arguments(error, prefix=("args",)) from None


def check_queue(queue: str | None, loc: tuple[str, ...]) -> None:
    """A queue the app declares (``QUEUES``), or a 422 naming them."""
    queues = get_settings().QUEUES
    if queue is not None and queue not in queues:
        raise field_problem(list(loc), f"must be one of the app's queues: {', '.join(queues)}")


def _created(job: TaskJob, status: int) -> tuple[dict[str, Any], int, dict[str, str]]:
    document = job_document(job)
    return document, status, {"Location": document["links"]["self"]}


@contextmanager
def _conflicts() -> Iterator[None]:
    """Turn a ``JobStateError`` into a 409 problem."""
    try:
        yield
    except lifecycle.JobStateError as error:
        raise ApiProblem(409, "Conflict", str(error), type="urn:offload:problem:job-state") from None


def _check_schedule(body: EnqueueRequest) -> None:
    if body.delay is not None and body.at is not None:
        raise field_problem(["at"], "cannot be combined with delay", "give either delay or at, not both")
    if body.at is not None and body.at <= datetime.now(UTC):
        raise field_problem(["at"], "must be in the future", "at must be in the future")
    if body.at is not None and body.at > datetime.now(UTC) + timedelta(seconds=SCHEDULE_HORIZON_SECONDS):
        raise field_problem(["at"], "must be within a year", "a job may be scheduled at most a year ahead")


def _check_parents(parent_ids: list[str]) -> None:
    """Every parent exists: one round trip for all of them."""
    well_formed = [parent for parent in parent_ids if JOB_ID.fullmatch(parent)]
    with get_redis().pipeline(transaction=False) as pipe:
        for parent in well_formed:
            pipe.exists(TaskJob.key_for(parent))
        existing = {parent for parent, found in zip(well_formed, pipe.execute(), strict=True) if found}
    errors = [
        {"loc": ["depends_on", index], "msg": f"no job with id {parent!r}", "type": "value_error"}
        for index, parent in enumerate(parent_ids)
        if parent not in existing
    ]
    if errors:
        raise validation_problem("depends_on names unknown jobs", errors)
