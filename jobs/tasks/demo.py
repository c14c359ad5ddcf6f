"""Demonstration tasks: for the docs, the benchmarks and the fault tests."""

from __future__ import annotations

import logging
import random
import time
from typing import Annotated

from pydantic import Field

from jobs import RetryPolicy, progress, task
from jobs.context import connection, current_job_id
from jobs.registry import highest_queue, lowest_queue

log = logging.getLogger(__name__)


@task
def sleep(
    seconds: Annotated[float, Field(ge=0, le=3600, description="How long to sleep in all")] = 5,
    steps: Annotated[int, Field(ge=1, le=1000, description="How many progress steps")] = 10,
) -> dict:
    """Sleep for a while in steps, reporting progress after each one."""
    started = time.monotonic()
    for step in range(1, steps + 1):
        time.sleep(seconds / steps)
        progress(step, steps, f"step {step} of {steps}")
        log.info("step %d of %d done", step, steps)
    return {"slept": round(time.monotonic() - started, 3), "steps": steps}


@task
def fail(message: str = "failed on purpose") -> None:
    """Raise an error on purpose, to show how a failed job looks."""
    raise RuntimeError(message)


@task(queue=highest_queue(), timeout=30)
def noop() -> None:
    """Do nothing: the unit of the benchmarks."""


@task(queue=lowest_queue(), timeout=600)
def cpu_burn(seconds: Annotated[float, Field(ge=0, le=600)] = 1.0) -> dict:
    """Keep one core busy for a while: the load of the benchmarks' CPU-heavy rows."""
    deadline = time.monotonic() + seconds
    rounds = 0
    while time.monotonic() < deadline:
        sum(i * i for i in range(10_000))
        rounds += 1
    return {"rounds": rounds}


@task(retry=RetryPolicy(max_retries=3, backoff=1))
def flaky(failure_rate: Annotated[float, Field(ge=0, le=1)] = 0.5) -> str:
    """Fail at random with the given probability; retried up to three times."""
    if random.random() < failure_rate:
        raise ConnectionError("flaky failure, on purpose")
    return "ok"


@task(retry=RetryPolicy(max_retries=5, intervals=(1, 2, 4, 8, 16)))
def effect(seconds: Annotated[float, Field(ge=0, le=60)] = 0.05) -> str:
    """An idempotent side effect, for the soak test: records this job in a Redis set.

    Counts its runs too, so a soak can tell re-runs (allowed: delivery is at least once)
    from duplicated effects (not allowed)."""
    job_id = current_job_id() or "direct-call"
    redis = connection()
    redis.hincrby("offload:soak:runs", job_id, 1)
    time.sleep(seconds)
    # The effect, guarded by the job id: applied (and counted) only the first time.
    redis.eval(_APPLY_ONCE, 2, "offload:soak:effects", "offload:soak:effect_count", job_id)
    return job_id


_APPLY_ONCE = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then
  return redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
end
return 0
"""
