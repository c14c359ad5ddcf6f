"""Acting on jobs after they were enqueued: cancel, stop, retry, forget."""

from __future__ import annotations

from redis import Redis
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import CanceledJobRegistry, FailedJobRegistry
from rq.serializers import JSONSerializer

from jobs.job import TaskJob
from jobs.records import job_events, job_index, job_search
from jobs.vocabulary import JOB_ID, RETRYABLE, TERMINAL, WAITING


class JobStateError(Exception):
    """The job is not in a state that allows this action (the API answers 409)."""


class UnknownJobError(LookupError):
    """No job has that id (it never existed, was deleted or expired)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job with id {job_id!r}")
        self.job_id = job_id


def fetch(connection: Redis, job_id: str) -> TaskJob:
    return TaskJob.load(connection, job_id)


def find(connection: Redis, job_id: str) -> TaskJob:
    """The job with that id, or ``UnknownJobError``: the one lookup of the API, the pages and the CLI."""
    if JOB_ID.fullmatch(job_id):
        try:
            return fetch(connection, job_id)
        except NoSuchJobError:
            pass
    raise UnknownJobError(job_id)


def status(job: TaskJob) -> str:
    return job.get_status(refresh=True).value


def cancel(connection: Redis, job: TaskJob, reason: str = "canceled on request") -> str:
    """Cancel a waiting job or stop a running one; returns what was done."""
    current = status(job)
    if current in WAITING:
        job.cancel()
        job_events.publish_status(connection, job.id, "canceled", reason=reason)
        cancel_dependents(connection, job, f"parent {job.id} was canceled")
        return "canceled"
    if current == JobStatus.STARTED.value:
        try:
            send_stop_job_command(connection, job.id, serializer=JSONSerializer)
        except InvalidJobOperation:
            raise JobStateError("the job is between workers; try again in a moment") from None
        return "stopping"
    raise JobStateError(f"the job already ended ({current})")


def cancel_dependents(connection: Redis, parent: Job, reason: str) -> list[str]:
    """Cancel every job waiting on ``parent`` (and theirs), so none waits forever."""
    canceled, pending = [], list(parent.dependent_ids)
    while pending:
        job_id = pending.pop()
        try:
            child = fetch(connection, job_id)
        except NoSuchJobError:
            continue
        if status(child) not in WAITING:
            continue
        child.meta["canceled_because"] = reason
        child.save_meta()
        child.cancel()
        job_events.publish_status(connection, child.id, "canceled", reason=reason)
        canceled.append(job_id)
        pending.extend(child.dependent_ids)
    return canceled


def retry(connection: Redis, job: TaskJob) -> None:
    """Run a failed, stopped or canceled job again, with its original arguments."""
    current = status(job)
    if current not in RETRYABLE:
        raise JobStateError(f"only failed, stopped or canceled jobs can be retried; this one is {current}")
    registry_class = CanceledJobRegistry if current == "canceled" else FailedJobRegistry
    registry = registry_class(job.origin, connection=connection, job_class=TaskJob, serializer=JSONSerializer)
    job.meta["manual_retries"] = job.meta.get("manual_retries", 0) + 1
    job.save_meta()
    try:
        registry.requeue(job)
    except InvalidJobOperation:
        raise JobStateError(f"the job is no longer in the {current} registry") from None
    job_events.publish_status(connection, job.id, "queued", retry=True)
    job_search.clear_error(connection, job.id)


def forget(connection: Redis, job: TaskJob) -> None:
    """Delete an ended job with its result, logs, events, artifact and index entry."""
    current = status(job)
    if current not in TERMINAL:
        raise JobStateError(f"only ended jobs can be deleted; this one is {current} (cancel it first)")
    with connection.pipeline() as pipe:
        job.delete(pipeline=pipe)
        pipe.delete(*job_events.keys_of(job.id))
        if job.created_at is not None:
            job_index.remove(pipe, job.id, job.created_at)
        job_search.forget(pipe, job.id)
        pipe.execute()
