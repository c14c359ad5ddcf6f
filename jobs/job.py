"""The RQ job class Offload's workers run: only registered tasks, arguments checked.

Anyone who can write to Redis can put a job hash there naming any importable
function (``os.system``). Stock RQ imports and calls it. ``TaskJob`` resolves the
function through the registry instead, never by import, and validates the arguments
against the task's schema again before the call. It also records the job's life as
events (see ``jobs.records.job_events``) and captures what the task logs.
"""

from __future__ import annotations

import sys
from typing import Any, ClassVar, cast

import rq.serializers
from pydantic_core import to_jsonable_python
from redis import Redis
from redis.client import Pipeline
from rq.exceptions import DeserializationError
from rq.job import Job, JobStatus
from rq.registry import BaseRegistry, FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry
from rq.utils import get_call_string, now

from jobs import logging_config
from jobs.records import artifacts, job_events, job_logs, job_metrics, job_search
from jobs.registry import Task, UnknownTaskError, registry
from jobs.tracebacks import error_from_traceback
from jobs.trends import series


class _HasDumpsAndLoads(type):
    def __instancecheck__(cls, candidate: object) -> bool:
        return callable(getattr(candidate, "dumps", None)) and callable(getattr(candidate, "loads", None))


class _SerializerCheck(metaclass=_HasDumpsAndLoads):
    """``isinstance(x, Serializer)`` as RQ asks it (has ``dumps`` and ``loads``), without the slow path.

    RQ resolves the serializer each time it builds a job, queue or registry; on Python 3.11 a
    runtime-checkable Protocol's isinstance costs ~30 µs, a sixth of a worker's time per job.
    """


if sys.version_info < (3, 12):
    rq.serializers.Serializer = _SerializerCheck  # type: ignore[misc, assignment]  # RQ's Protocol, replaced on purpose


def never_unpickle() -> None:
    """Make RQ's default serializer JSON in this process, so that no code path that forgets to
    name a serializer (rq-dashboard's job views, say) can unpickle what a stranger wrote. The
    web (app.dashboard), the worker and cron (jobs.worker.rq_cli_config) call it at start-up."""
    rq.serializers.DefaultSerializer = rq.serializers.JSONSerializer  # type: ignore[misc, assignment]  # on purpose
    rq.serializers.PickleSerializer = rq.serializers.JSONSerializer  # type: ignore[assignment]  # on purpose


class ForbiddenJobError(UnknownTaskError):
    """The job names something Offload will not run."""


class TaskJob(Job):
    """An RQ job whose function must be a registered task."""

    # RQ builds a new registry object on every access, resolving the serializer each time (a
    # slow Protocol check on Python 3.11); a registry is only a queue name and a connection.
    _registries: ClassVar[dict[tuple[str, str, int], BaseRegistry]] = {}

    def attempt_number(self) -> int:
        """Which run this is, or the last one was: automatic retries used, manual retries and runs
        cut off by a dead worker, plus one."""
        meta = self.meta if isinstance(self.meta, dict) else {}
        automatic = max(0, meta.get("max_retries", 0) - (self.retries_left or 0))
        return automatic + meta.get("manual_retries", 0) + meta.get("recoveries", 0) + 1

    @classmethod
    def load(cls, connection: Redis, job_id: str) -> TaskJob:
        """The stored job (JSON); ``NoSuchJobError`` when there is none. RQ's ``fetch`` is typed as
        returning ``Job`` while it builds ``cls``: this says so once."""
        return cast(TaskJob, cls.fetch(job_id, connection=connection, serializer=rq.serializers.JSONSerializer))

    @classmethod
    def load_many(cls, connection: Redis, job_ids: list[str]) -> list[TaskJob | None]:
        """The stored jobs in order, None for each that is gone: one round trip."""
        return cast(
            "list[TaskJob | None]",
            cls.fetch_many(job_ids, connection=connection, serializer=rq.serializers.JSONSerializer),
        )

    def _registry(self, kind: type[BaseRegistry]) -> Any:
        key = (kind.__name__, self.origin, id(self.connection))
        found = self._registries.get(key)
        if found is None or found.connection is not self.connection:
            found = kind(self.origin, connection=self.connection, job_class=type(self), serializer=self.serializer)
            self._registries[key] = found
        return found

    @property
    def started_job_registry(self) -> StartedJobRegistry:
        return self._registry(StartedJobRegistry)

    @property
    def failed_job_registry(self) -> FailedJobRegistry:
        return self._registry(FailedJobRegistry)

    @property
    def finished_job_registry(self) -> FinishedJobRegistry:
        return self._registry(FinishedJobRegistry)

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

    def refuse_callbacks(self) -> None:
        """Raise ForbiddenJobError if the job carries any RQ callback."""
        for name in (self._success_callback_name, self._failure_callback_name, self._stopped_callback_name):
            self._refuse_callback(name)

    def _refuse_callback(self, name: str | None) -> None:
        # Offload never sets RQ callbacks; one found in Redis was written by someone else.
        if name:
            raise ForbiddenJobError(f"refusing to import callback {name!r}: Offload jobs carry no callbacks")
        return None

    def get_call_string(self) -> str | None:
        """RQ's call string (shown by rq-dashboard and the worker's log), secret arguments masked."""
        try:
            kwargs = self.task.redact(self.kwargs)
        except Exception:  # noqa: BLE001 - not a task, or unreadable: nothing of it is shown
            return f"{self.func_name}(…)" if self.func_name else None
        return get_call_string(self.func_name, self.args, kwargs, max_length=75)

    def send_webhooks(self, status: Any, *, exc_string: str | None = None) -> None:
        """Offload does not use RQ's job webhooks; ignore any stored on the job."""

    def _execute(self) -> Any:
        task = self.task
        if self.args:
            raise ForbiddenJobError("tasks take keyword arguments only")
        kwargs = task.validate(self.kwargs)
        token = logging_config.request_id.set(self.meta.get("request_id"))
        try:
            with job_logs.capture(self.connection, self.id, self.failure_ttl, attempt=self.attempt_number()):
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
        job_events.publish_status(pipeline, self.id, "started", worker=worker_name)
        self.observe_queue_wait(pipeline)

    def observe_queue_wait(self, pipeline: Pipeline | None = None) -> None:
        """How long the job waited for a worker (without a pipeline: into the worker's tally)."""
        if self.enqueued_at is not None and self.started_at is not None:
            wait = max(0.0, (self.started_at - self.enqueued_at).total_seconds())
            labels = self._labels()
            job_metrics.observe(pipeline, "job_queue_wait_seconds", labels, wait, job_metrics.DURATION_BUCKETS)
            series.record_wait(pipeline, labels["task"], self.origin or "unknown", wait)

    def _handle_success(self, result_ttl: int, pipeline: Pipeline, *args: Any, **kwargs: Any) -> None:
        super()._handle_success(result_ttl, pipeline, *args, **kwargs)
        job_events.publish_end(pipeline, self.id, "finished", result_ttl)
        job_search.clear_error(pipeline, self.id)
        self.record_end("finished", pipeline)

    def _handle_failure(self, exc_string: str, pipeline: Pipeline, *args: Any, **kwargs: Any) -> None:
        super()._handle_failure(exc_string, pipeline, *args, **kwargs)
        status = "stopped" if self._status == JobStatus.STOPPED else "failed"
        job_events.publish_end(pipeline, self.id, status, self.failure_ttl or job_events.DEFAULT_TTL)
        error = error_from_traceback(exc_string)
        if error is not None:
            job_search.record_error(pipeline, self.id, error["type"], error["message"])
        self.record_end(status, pipeline)

    def _labels(self) -> dict[str, str]:
        """Metric labels; a job whose payload cannot be read (a foreign pickle) still gets counted."""
        name = self.meta.get("task") if isinstance(self.meta, dict) else None
        if not name:
            try:
                name = self.func_name
            except DeserializationError:
                name = None
        return {"task": name or "unknown"}

    def record_end(self, status: str, pipeline: Pipeline | None = None) -> None:
        """Count the job's end and its duration (without a pipeline: into the worker's tally)."""
        labels = self._labels()
        job_metrics.count(pipeline, "jobs_ended", {**labels, "status": status})
        duration = None
        if self.started_at is not None:
            duration = max(0.0, ((self.ended_at or now()) - self.started_at).total_seconds())
            job_metrics.observe(pipeline, "job_duration_seconds", labels, duration, job_metrics.DURATION_BUCKETS)
        series.record_end(pipeline, labels["task"], self.origin or "unknown", status, duration)

    def retry(self, queue: Any, pipeline: Pipeline) -> None:
        super().retry(queue, pipeline)
        status = "scheduled" if self._status == JobStatus.SCHEDULED else "queued"
        job_events.publish_status(pipeline, self.id, status, retry=True, retries_left=self.retries_left)
