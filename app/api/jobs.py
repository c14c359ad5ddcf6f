"""POST/GET /api/jobs: enqueue a task, read one job, list jobs."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, request
from pydantic import ValidationError
from rq.exceptions import NoSuchJobError
from rq.serializers import JSONSerializer

from app import job_index
from app.api.schemas import EnqueueRequest, ListJobsQuery
from app.api.tasks import find_task
from app.documents import job_document, status_of, task_name
from app.enqueue import enqueue_task
from app.json_body import json_body
from app.problems import ApiProblem, invalid_arguments
from app.redis_client import get_redis
from jobs.job import TaskJob

bp = Blueprint("jobs", __name__)
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@bp.post("/jobs")
def create_job() -> tuple[dict[str, Any], int, dict[str, str]]:
    try:
        body = EnqueueRequest.model_validate(json_body())
    except ValidationError as error:
        raise invalid_arguments(error) from None
    task = find_task(body.task)
    _check_schedule(body)
    _check_parents(body.depends_on or [])
    try:
        job = enqueue_task(
            task,
            body.args,
            queue=body.queue,
            timeout=body.timeout,
            delay=body.delay,
            at=body.at,
            depends_on=body.depends_on,
        )
    except ValidationError as error:
        raise invalid_arguments(error, prefix=("args",)) from None
    document = job_document(job)
    return document, 202, {"Location": document["links"]["self"]}


@bp.get("/jobs/<job_id>")
def show_job(job_id: str) -> dict[str, Any]:
    return job_document(fetch_job(job_id))


@bp.get("/jobs")
def list_jobs() -> dict[str, Any]:
    try:
        query = ListJobsQuery.model_validate(request.args.to_dict())
    except ValidationError as error:
        raise invalid_arguments(error, prefix=("query",)) from None

    def matches(job: TaskJob) -> bool:
        return (
            (query.status is None or status_of(job) == query.status)
            and (query.task is None or task_name(job) == query.task)
            and (query.queue is None or job.origin == query.queue)
        )

    jobs, next_cursor = job_index.page(get_redis(), matches, query.limit, query.cursor)
    return {"jobs": [job_document(job) for job in jobs], "next_cursor": next_cursor}


def fetch_job(job_id: str) -> TaskJob:
    """The job with that id, or a 404 problem."""
    if _JOB_ID.match(job_id):
        try:
            return TaskJob.fetch(job_id, connection=get_redis(), serializer=JSONSerializer)
        except NoSuchJobError:
            pass
    raise ApiProblem(404, "Unknown job", f"no job with id {job_id!r}", type="urn:offload:problem:unknown-job")


def _check_schedule(body: EnqueueRequest) -> None:
    if body.delay is not None and body.at is not None:
        raise ApiProblem(
            422,
            "Invalid arguments",
            "give either delay or at, not both",
            type="urn:offload:problem:validation",
            errors=[{"loc": ["at"], "msg": "cannot be combined with delay", "type": "value_error"}],
        )
    if body.at is not None and body.at <= datetime.now(UTC):
        raise ApiProblem(
            422,
            "Invalid arguments",
            "at must be in the future",
            type="urn:offload:problem:validation",
            errors=[{"loc": ["at"], "msg": "must be in the future", "type": "value_error"}],
        )


def _check_parents(parent_ids: list[str]) -> None:
    redis = get_redis()
    errors = [
        {"loc": ["depends_on", index], "msg": f"no job with id {parent!r}", "type": "value_error"}
        for index, parent in enumerate(parent_ids)
        if not _JOB_ID.match(parent) or not TaskJob.exists(parent, connection=redis)
    ]
    if errors:
        raise ApiProblem(
            422,
            "Invalid arguments",
            "depends_on names unknown jobs",
            type="urn:offload:problem:validation",
            errors=errors,
        )
