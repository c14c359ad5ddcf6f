"""/api/jobs: enqueue (one or a batch), read, list, cancel, retry, delete, logs, artifact."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, current_app, request
from pydantic import ValidationError

from app import auditing, idempotency, submitting
from app.api.schemas import ListJobsQuery
from app.auth import credential_scope
from app.documents import job_document
from app.domain_problems import problem_of
from app.json_body import json_body
from app.problems import ApiProblem, field_problem, invalid_arguments, validation_problem
from app.redis_client import get_redis
from jobs import finding, lifecycle, submission
from jobs.job import TaskJob
from jobs.records import artifacts, job_events
from jobs.registry import UnknownTaskError
from jobs.submission import InvalidCall
from jobs.submission.calls import check_queue

bp = Blueprint("jobs", __name__)


@bp.post("/jobs")
def create_job() -> tuple[dict[str, Any], int, dict[str, str]]:
    body = json_body()
    call = submitting.call_from(body)
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
        [job] = submitting.submit([call])
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
    calls: list[tuple[int, submission.Call]] = []
    for index, item in enumerate(body):
        try:
            calls.append((index, submitting.call_from(item)))
            results.append({})
        except (InvalidCall, UnknownTaskError) as error:
            problem = problem_of(error)
            results.append({"index": index, "status": problem.status, "problem": problem.to_dict()})
    if not calls:
        errors = [
            {"loc": [item["index"], *error["loc"]], "msg": error["msg"], "type": error.get("type")}
            for item in results
            for error in item["problem"].get("errors") or [{"loc": [], "msg": item["problem"]["detail"]}]
        ]
        raise validation_problem("no item of the batch could be enqueued", errors, "Invalid batch")
    jobs = submitting.submit([call for _, call in calls])
    for (index, _), job in zip(calls, jobs, strict=True):
        results[index] = {"index": index, "status": 202, "job": job_document(job)}
    return results, 202


@bp.get("/jobs/<job_id>")
def show_job(job_id: str) -> dict[str, Any]:
    return job_document(_find(job_id))


@bp.get("/jobs")
def list_jobs() -> dict[str, Any]:
    try:
        query = ListJobsQuery.model_validate(request.args.to_dict())
    except ValidationError as error:
        raise invalid_arguments(error, prefix=("query",)) from None

    check_queue(query.queue, ("query", "queue"))
    jobs, found = finding.find(get_redis(), query.search(), query.limit, query.cursor)
    return {"jobs": [job_document(job) for job in jobs], "next_cursor": found.next_cursor, **finding.summary_of(found)}


@bp.post("/jobs/<job_id>/cancel")
def cancel_job(job_id: str) -> tuple[dict[str, Any], int]:
    job = _find(job_id)
    lifecycle.cancel(get_redis(), job)
    auditing.record("cancel", job=job_id, done=1)
    return job_document(_find(job_id)), 202


@bp.post("/jobs/<job_id>/retry")
def retry_job(job_id: str) -> tuple[dict[str, Any], int, dict[str, str]]:
    job = _find(job_id)
    lifecycle.retry(get_redis(), job)
    auditing.record("retry", job=job_id, done=1)
    return _created(_find(job_id), 202)


@bp.delete("/jobs/<job_id>")
def delete_job(job_id: str) -> tuple[str, int]:
    job = _find(job_id)
    lifecycle.forget(get_redis(), job)
    auditing.record("delete", job=job_id, done=1)
    return "", 204


@bp.get("/jobs/<job_id>/logs")
def job_logs(job_id: str) -> dict[str, Any]:
    _find(job_id)
    tail = request.args.get("tail", type=int)
    if tail is not None and not 1 <= tail <= job_events.LOG_MAX_LINES:
        raise field_problem(["query", "tail"], f"must be 1 to {job_events.LOG_MAX_LINES}")
    lines, dropped = job_events.read_logs(get_redis(), job_id, tail)
    return {"job_id": job_id, "lines": lines, "dropped": dropped}


@bp.get("/jobs/<job_id>/artifact")
def job_artifact(job_id: str) -> Response:
    _find(job_id)
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


def _created(job: TaskJob, status: int) -> tuple[dict[str, Any], int, dict[str, str]]:
    document = job_document(job)
    return document, status, {"Location": document["links"]["self"]}


def _find(job_id: str) -> TaskJob:
    return lifecycle.find(get_redis(), job_id)
