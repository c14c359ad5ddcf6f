"""GET /api/jobs/{id}/events: the job's life as Server-Sent Events, until it ends.

Events come from the job's Redis stream; their ids are the stream ids, so a client
that reconnects with ``Last-Event-ID`` resumes right after the last event it saw.
Between events the stream checks the job itself, so a job that ended without an
event (recovered after a crash, expired) still closes the stream.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request, stream_with_context
from redis import Redis
from redis.exceptions import RedisError

from app.documents import job_document
from app.problems import ApiProblem, field_problem
from app.redis_client import get_redis
from jobs.connection import text
from jobs.lifecycle import fetch, find
from jobs.records.job_events import read_events
from jobs.vocabulary import TERMINAL

bp = Blueprint("events", __name__)
_STREAM_ID = re.compile(r"^\d{1,20}(-\d{1,20})?$")
BLOCK_MS = 500
# A comment line this often also tells us soon when a client has gone away.
KEEPALIVE_SECONDS = 5
_SLOTS = "offload.stream_slots"


@bp.get("/jobs/<job_id>/events")
def job_events(job_id: str) -> Response:
    find(get_redis(), job_id)
    after = request.headers.get("Last-Event-ID") or request.args.get("last_event_id") or "0"
    if not _STREAM_ID.fullmatch(after):
        raise field_problem(
            ["header", "Last-Event-ID"], "not a stream id", "Last-Event-ID must be an event id this stream sent"
        )
    slots = current_app.extensions[_SLOTS]
    if not slots.acquire(blocking=False):
        raise ApiProblem(
            503,
            "Too many open streams",
            f"this web process already holds {current_app.config['SSE_MAX_STREAMS']} event streams; poll the job"
            " document or try again shortly",
            type="urn:offload:problem:streams-exhausted",
            headers={"Retry-After": "5"},
        )
    max_seconds = current_app.config["SSE_MAX_SECONDS"]
    stream = _released(slots, _stream(get_redis(), job_id, after, max_seconds))
    response = Response(stream_with_context(stream), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response


def init_app(app: Flask) -> None:
    """Each open stream holds one Redis connection while it waits: bound them per process."""
    app.extensions[_SLOTS] = threading.BoundedSemaphore(app.config["SSE_MAX_STREAMS"])


def _released(slots: threading.BoundedSemaphore, stream: Iterator[str]) -> Iterator[str]:
    try:
        yield from stream
    finally:
        slots.release()


def _frame(data: dict[str, Any], kind: str, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _stream(redis: Redis, job_id: str, after: str, max_seconds: float) -> Iterator[str]:
    yield "retry: 2000\n\n"
    started = last_sent = time.monotonic()
    while time.monotonic() - started < max_seconds:
        try:
            batch = read_events(redis, job_id, after, block_ms=BLOCK_MS)
        except RedisError:
            yield _frame({"message": "the job store is unreachable; reconnect to resume"}, "error")
            return
        for event_id, kind, data in batch:
            after = event_id
            yield _frame(data, kind, event_id)
            last_sent = time.monotonic()
            if kind == "status" and data.get("status") in TERMINAL:
                yield _frame({"job": _document(redis, job_id)}, "end")
                return
        if batch:
            continue
        ended = _ended_status(redis, job_id)
        if ended is not None:
            yield _frame({"status": ended, "job": _document(redis, job_id)}, "end")
            return
        if time.monotonic() - last_sent > KEEPALIVE_SECONDS:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
    # Long streams end on purpose so that proxies and workers recycle; clients reconnect.
    yield _frame({"message": "stream time limit reached; reconnect with Last-Event-ID"}, "timeout")


def _ended_status(redis: Redis, job_id: str) -> str | None:
    raw = redis.hget(f"rq:job:{job_id}", "status")
    if raw is None:
        return "expired"
    status = text(raw)
    return status if status in TERMINAL else None


def _document(redis: Redis, job_id: str) -> dict[str, Any] | None:
    try:
        job = fetch(redis, job_id)
    except Exception:  # noqa: BLE001 - the job may have expired meanwhile
        return None
    return job_document(job)
