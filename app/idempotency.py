"""Idempotency-Key: a repeated POST returns the job the first one created.

The first request claims the key atomically (SET NX) with the id its job will get,
before the job is written; a concurrent or later duplicate finds the claim, checks
that it carries the same body, and answers with that job. Keys are scoped to the
caller's token and kept for a day.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from redis import Redis
from rq.exceptions import NoSuchJobError

from app.problems import ApiProblem
from jobs.job import TaskJob
from jobs.lifecycle import fetch

TTL = 24 * 3600
# A claim whose request has not written its job yet lives this long: a web process killed in
# between leaves a claim that clears itself, and the client's retries then go through.
IN_PROGRESS_TTL = 30
MAX_KEY_LENGTH = 255


def _fingerprint(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def redis_key(token: str, key: str) -> str:
    scope = hashlib.sha256(token.encode()).hexdigest()[:16]
    return f"offload:idempotency:{scope}:{hashlib.sha256(key.encode()).hexdigest()}"


def check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ApiProblem(
            400,
            "Bad Idempotency-Key",
            f"the Idempotency-Key header must be 1 to {MAX_KEY_LENGTH} printable characters",
            type="urn:offload:problem:idempotency-key",
        )


def claim(connection: Redis, key: str, body: Any, job_id: str) -> TaskJob | None:
    """None if this request now owns ``key``; else the job of the request that does."""
    value = json.dumps({"job_id": job_id, "body": _fingerprint(body)})
    deadline = time.monotonic() + 2.0
    while True:
        if connection.set(key, value, nx=True, ex=IN_PROGRESS_TTL):
            return None
        held = connection.get(key)
        if held is None:
            continue  # released by a request that failed: try to claim again
        holder = json.loads(held)
        if holder["body"] != _fingerprint(body):
            raise ApiProblem(
                422,
                "Idempotency-Key reused",
                "this Idempotency-Key was already used with a different request body",
                type="urn:offload:problem:idempotency-key",
            )
        try:
            return fetch(connection, holder["job_id"])
        except NoSuchJobError:
            if time.monotonic() > deadline:  # the first request is still writing, or died
                raise ApiProblem(
                    409,
                    "Request in progress",
                    "a request with this Idempotency-Key is still being processed",
                    type="urn:offload:problem:idempotency-key",
                    headers={"Retry-After": "1"},
                ) from None
            time.sleep(0.01)


def keep(connection: Redis, key: str) -> None:
    """The request's job is written: keep its key for the day."""
    connection.expire(key, TTL)


def release(connection: Redis, key: str) -> None:
    connection.delete(key)
