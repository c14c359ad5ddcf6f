"""Submitting jobs from the web app: one path for the API, its batch, the task form and the CLI.

``call_from`` reads a request body (the API's ``EnqueueRequest``) into a checked call;
``submit`` admits calls (memory headroom, the caller's rate limit, the queue cap) and
writes them. Both raise the domain errors of ``jobs.submission``; each caller renders
them its own way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from app import backpressure
from app.api.schemas import EnqueueRequest
from app.redis_client import get_redis
from jobs import submission
from jobs.job import TaskJob
from jobs.submission import Call, InvalidCall


def call_from(body: Any) -> Call:
    """A checked call from one body; raises ``InvalidCall`` or ``UnknownTaskError``."""
    try:
        request = EnqueueRequest.model_validate(body)
    except ValidationError as error:
        raise InvalidCall.from_validation(error) from None
    return submission.prepare(
        request.task,
        request.args,
        connection=get_redis(),
        queue=request.queue,
        timeout=request.timeout,
        delay=request.delay,
        at=request.at,
        depends_on=request.depends_on or [],
    )


def submit(calls: Sequence[Call], *, limited: bool = True) -> list[TaskJob]:
    """Admit and write ``calls`` (all or none); ``limited``: count the caller's rate limit.
    Raises ``RefusedError``; a unique task's call may come back as its active twin."""
    admission = backpressure.admission(calls, limited)
    return submission.submit_many(get_redis(), calls, admission)
