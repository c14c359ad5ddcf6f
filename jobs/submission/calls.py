"""A call of a registered task, validated before anything is written.

``prepare`` is the one place a call is checked: its arguments against the task's schema,
its queue against the app's queues, its start time within a year, its parents existing.
A bad call raises ``InvalidCall`` naming each bad field; each caller renders it its own way
(problem+json, errors beside the form's fields, one line on the CLI).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from pydantic import ValidationError
from redis import Redis

from jobs.job import TaskJob
from jobs.registry import Task, registry, task_of
from jobs.settings import get_settings
from jobs.vocabulary import JOB_ID

SCHEDULE_HORIZON_SECONDS = 365 * 24 * 3600


class InvalidCall(ValueError):
    """A call that may not be enqueued. ``errors`` are pydantic's shape: ``loc``, ``msg``, ``type``,
    with ``loc`` starting at the request's field (``args``, ``queue``, ``at``, ``depends_on``)."""

    def __init__(self, detail: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors

    @classmethod
    def of(cls, loc: list[Any], msg: str, detail: str | None = None) -> InvalidCall:
        return cls(detail or msg, [{"loc": loc, "msg": msg, "type": "value_error"}])

    @classmethod
    def from_validation(cls, error: ValidationError, prefix: tuple[str | int, ...] = ()) -> InvalidCall:
        errors = [
            {"loc": [*prefix, *item["loc"]], "msg": item["msg"], "type": item["type"]}
            for item in error.errors(include_url=False)
        ]
        return cls(f"{len(errors)} field(s) failed validation", errors)


def resolve_task(task: Task | str | Callable[..., Any]) -> Task:
    if isinstance(task, Task):
        return task
    if isinstance(task, str):
        return registry.lookup(task)
    return task_of(task)


@dataclass
class Call:
    """One validated call of a task, ready to be written."""

    task: Task
    args: dict[str, Any]
    queue: str | None = None
    timeout: int | None = None
    delay: float | None = None
    at: datetime | None = None
    depends_on: list[str] = field(default_factory=list)
    job_id: str = field(default_factory=lambda: uuid4().hex)
    meta: dict[str, Any] = field(default_factory=dict)


def prepare(
    task: Task | str | Callable[..., Any],
    args: dict[str, Any] | None = None,
    *,
    connection: Redis | None = None,
    **options: Any,
) -> Call:
    """A checked call; raises ``UnknownTaskError`` or ``InvalidCall``, having written nothing.

    ``connection`` is needed only to check ``depends_on`` (each parent must exist).
    """
    resolved = resolve_task(task)
    check_queue(options.get("queue"))
    check_schedule(options.get("delay"), options.get("at"))
    parents = options.get("depends_on") or []
    if parents:
        if connection is None:
            raise TypeError("prepare() needs the connection to check depends_on")
        check_parents(connection, parents)
    try:
        json_args = resolved.to_json_args(args or {})
    except ValidationError as error:
        raise InvalidCall.from_validation(error, prefix=("args",)) from None
    return Call(task=resolved, args=json_args, **options)


def check_queue(queue: str | None, loc: tuple[str, ...] = ("queue",)) -> None:
    """A queue the app declares (``QUEUES``), or ``InvalidCall`` naming them."""
    queues = get_settings().QUEUES
    if queue is not None and queue not in queues:
        raise InvalidCall.of(list(loc), f"must be one of the app's queues: {', '.join(queues)}")


def check_schedule(delay: float | None, at: datetime | None) -> None:
    if delay is not None and at is not None:
        raise InvalidCall.of(["at"], "cannot be combined with delay", "give either delay or at, not both")
    if delay is not None and not 0 <= delay <= SCHEDULE_HORIZON_SECONDS:
        raise InvalidCall.of(["delay"], "must be 0 to a year in seconds")
    if at is not None and at.tzinfo is None:
        raise InvalidCall.of(["at"], "must include a time zone (an offset, or Z for UTC)")
    if at is not None and at <= datetime.now(UTC):
        raise InvalidCall.of(["at"], "must be in the future", "at must be in the future")
    if at is not None and at > datetime.now(UTC) + timedelta(seconds=SCHEDULE_HORIZON_SECONDS):
        raise InvalidCall.of(["at"], "must be within a year", "a job may be scheduled at most a year ahead")


def check_parents(connection: Redis, parent_ids: list[str]) -> None:
    """Every parent exists: one round trip for all of them."""
    well_formed = [parent for parent in parent_ids if JOB_ID.fullmatch(parent)]
    with connection.pipeline(transaction=False) as pipe:
        for parent in well_formed:
            pipe.exists(TaskJob.key_for(parent))
        existing = {parent for parent, found in zip(well_formed, pipe.execute(), strict=True) if found}
    errors = [
        {"loc": ["depends_on", index], "msg": f"no job with id {parent!r}", "type": "value_error"}
        for index, parent in enumerate(parent_ids)
        if parent not in existing
    ]
    if errors:
        raise InvalidCall("depends_on names unknown jobs", errors)
