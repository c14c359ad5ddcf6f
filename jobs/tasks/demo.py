"""Demonstration tasks, to try Offload with: loaded outside production (OFFLOAD_DEMO_TASKS).

The benchmark's and the soak's own tasks live beside them, in ``scripts/``."""

from __future__ import annotations

import logging
import random
import time
from typing import Annotated

from pydantic import Field

from jobs import RetryPolicy, progress, task
from jobs.registry import highest_queue

log = logging.getLogger(__name__)


@task
def sleep(
    seconds: Annotated[float, Field(ge=0, le=3600, description="How long to sleep in all, in seconds")] = 5,
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
    """Do nothing: the shortest job there is."""


@task(retry=RetryPolicy(max_retries=3, backoff=1))
def flaky(failure_rate: Annotated[float, Field(ge=0, le=1)] = 0.5) -> str:
    """Fail at random with the given probability; retried up to three times."""
    if random.random() < failure_rate:
        raise ConnectionError("flaky failure, on purpose")
    return "ok"
