"""What the API answers for each domain error the services raise (the pages and the CLI say it their own way)."""

from __future__ import annotations

from flask import Flask, Response, current_app

from app.problems import ApiProblem, problem_response, validation_problem
from jobs.cron.entries import NotScheduledError
from jobs.fleet.queue_control import UnknownQueueError
from jobs.fleet.worker_overview import UnknownWorkerError
from jobs.lifecycle import JobStateError, UnknownJobError
from jobs.records.uploaded_files import UploadQuotaError
from jobs.registry import UnknownTaskError
from jobs.submission import InvalidCall, RefusedError

DOMAIN_ERRORS = (
    InvalidCall,
    UnknownTaskError,
    UnknownJobError,
    UnknownQueueError,
    UnknownWorkerError,
    JobStateError,
    RefusedError,
    UploadQuotaError,
)


def problem_of(error: Exception) -> ApiProblem:
    """The problem+json answer for one of ``DOMAIN_ERRORS``."""
    if isinstance(error, InvalidCall):
        return validation_problem(error.detail, error.errors)
    if isinstance(error, NotScheduledError):
        return ApiProblem(
            404, "Not a cron entry", f"{error}; GET /api/cron lists them", type="urn:offload:problem:unknown-cron-entry"
        )
    if isinstance(error, UnknownTaskError):
        return ApiProblem(
            404, "Unknown task", f"{error}; GET /api/tasks lists them", type="urn:offload:problem:unknown-task"
        )
    if isinstance(error, UnknownJobError):
        return ApiProblem(404, "Unknown job", str(error), type="urn:offload:problem:unknown-job")
    if isinstance(error, UnknownQueueError):
        return ApiProblem(404, "Unknown queue", str(error), type="urn:offload:problem:unknown-queue")
    if isinstance(error, UnknownWorkerError):
        return ApiProblem(
            404, "Unknown worker", f"{error}; GET /api/workers lists them", type="urn:offload:problem:unknown-worker"
        )
    if isinstance(error, JobStateError):
        return ApiProblem(409, "Conflict", str(error), type="urn:offload:problem:job-state")
    if isinstance(error, UploadQuotaError):
        return _with_retry(429, "Upload quota reached", str(error), "upload-quota", error.retry_after)
    if isinstance(error, RefusedError):
        if error.reason == "rate-limited":
            detail = f"{error.detail}; try again in {error.retry_after or 1} s"
            return _with_retry(429, "Too many submissions", detail, "rate-limited", error.retry_after or 1)
        if error.reason == "memory":
            return _with_retry(503, "Job store nearly full", error.detail, "memory", error.retry_after)
        return _with_retry(429, "Queue full", error.detail, "queue-full", error.retry_after)
    raise TypeError(f"not a domain error: {error!r}")


def status_of(error: Exception) -> int:
    return problem_of(error).status


def _with_retry(status: int, title: str, detail: str, kind: str, retry_after: int | None) -> ApiProblem:
    wait = retry_after if retry_after is not None else current_app.config["BACKPRESSURE_RETRY_AFTER"]
    return ApiProblem(status, title, detail, type=f"urn:offload:problem:{kind}", headers={"Retry-After": str(wait)})


def register_domain_handlers(app: Flask) -> None:
    for error_class in DOMAIN_ERRORS:
        app.register_error_handler(error_class, _handle)


def _handle(error: Exception) -> Response:
    return problem_response(problem_of(error))
