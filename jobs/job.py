"""The RQ job class Offload's workers run: only registered tasks, arguments checked.

Anyone who can write to Redis can put a job hash there naming any importable
function (``os.system``). Stock RQ imports and calls it. ``TaskJob`` resolves the
function through the registry instead, never by import, and validates the arguments
against the task's schema again before the call. It also records the job's life as
events (see ``jobs.events``) and captures what the task logs.
"""

from __future__ import annotations

from typing import Any

from pydantic_core import to_jsonable_python
from redis.client import Pipeline
from rq.exceptions import DeserializationError
from rq.job import Job, JobStatus
from rq.utils import now

from jobs import artifacts, events, logging_config, logs, metrics
from jobs.registry import Task, UnknownTaskError, registry


class ForbiddenJobError(UnknownTaskError):
    """The job names something Offload will not run."""


class TaskJob(Job):
    """An RQ job whose function must be a registered task."""

    @property
    def task(self) -> Task:
        if self.instance is not None:
            raise ForbiddenJobError("jobs that call a method on an instance are not allowed")
        func_name = self.func_name or ""
        try:
            return registry.lookup_path(func_name)
        except UnknownTaskError:
            raise ForbiddenJobError(
                f"refusing to run {func_name!r}: it is not a registered task, and Offload runs only registered tasks"
            ) from None

    @property
    def func(self) -> Any:
        return self.task.func

    @property
    def success_callback(self) -> None:
        return self._refuse_callback(self._success_callback_name)

    @property
    def failure_callback(self) -> None:
        return self._refuse_callback(self._failure_callback_name)

    @property
    def stopped_callback(self) -> None:
        return self._refuse_callback(self._stopped_callback_name)

    def _refuse_callback(self, name: str | None) -> None:
        # Offload never sets RQ callbacks; one found in Redis was written by someone else.
        if name:
            raise ForbiddenJobError(f"refusing to import callback {name!r}: Offload jobs carry no callbacks")
        return None

    def send_webhooks(self, status: Any, *, exc_string: str | None = None) -> None:
        """Offload does not use RQ's job webhooks; ignore any stored on the job."""

    def _execute(self) -> Any:
        task = self.task
        if self.args:
            raise ForbiddenJobError("tasks take keyword arguments only")
        kwargs = task.validate(self.kwargs)
        token = logging_config.request_id.set(self.meta.get("request_id"))
        try:
            with logs.capture(self.connection, self.id, self.failure_ttl):
                result = task.func(**kwargs)
        finally:
            logging_config.request_id.reset(token)
        if isinstance(result, artifacts.Artifact):
            artifacts.store(self.connection, self.id, result, self.result_ttl or task.result_ttl)
            self.meta["artifact"] = result.describe()
            self.save_meta()
            return {"artifact": result.describe()}
        return to_jsonable_python(result)

    # Lifecycle events: each is written in the same pipeline as RQ's own change.

    def prepare_for_execution(self, worker_name: str, pipeline: Pipeline) -> None:
        super().prepare_for_execution(worker_name, pipeline)
        events.publish_status(pipeline, self.id, "started", worker=worker_name)
        if self.enqueued_at is not None and self.started_at is not None:
            wait = max(0.0, (self.started_at - self.enqueued_at).total_seconds())
            metrics.observe(pipeline, "job_queue_wait_seconds", self._labels(), wait, metrics.DURATION_BUCKETS)

    def _handle_success(self, result_ttl: int, pipeline: Pipeline, *args: Any, **kwargs: Any) -> None:
        super()._handle_success(result_ttl, pipeline, *args, **kwargs)
        events.publish_status(pipeline, self.id, "finished")
        events.set_ttl(pipeline, self.id, result_ttl)
        self._record_end(pipeline, "finished")

    def _handle_failure(self, exc_string: str, pipeline: Pipeline, *args: Any, **kwargs: Any) -> None:
        super()._handle_failure(exc_string, pipeline, *args, **kwargs)
        status = "stopped" if self._status == JobStatus.STOPPED else "failed"
        events.publish_status(pipeline, self.id, status)
        events.set_ttl(pipeline, self.id, self.failure_ttl or events.DEFAULT_TTL)
        self._record_end(pipeline, status)

    def _labels(self) -> dict[str, str]:
        """Metric labels; a job whose payload cannot be read (a foreign pickle) still gets counted."""
        name = self.meta.get("task") if isinstance(self.meta, dict) else None
        if not name:
            try:
                name = self.func_name
            except DeserializationError:
                name = None
        return {"task": name or "unknown"}

    def _record_end(self, pipeline: Pipeline, status: str) -> None:
        labels = self._labels()
        metrics.count(pipeline, "jobs_ended", {**labels, "status": status})
        if self.started_at is not None:
            ended = self.ended_at or now()
            duration = (ended - self.started_at).total_seconds()
            metrics.observe(pipeline, "job_duration_seconds", labels, max(0.0, duration), metrics.DURATION_BUCKETS)

    def retry(self, queue: Any, pipeline: Pipeline) -> None:
        super().retry(queue, pipeline)
        status = "scheduled" if self._status == JobStatus.SCHEDULED else "queued"
        events.publish_status(pipeline, self.id, status, retry=True, retries_left=self.retries_left)
