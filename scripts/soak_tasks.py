"""The soak's own task (loaded with OFFLOAD_TASK_MODULES=scripts.soak_tasks by scripts/soak.py)."""

from __future__ import annotations

import time
from typing import Annotated

from pydantic import Field

from jobs import RetryPolicy, task
from jobs.context import connection, current_job_id


@task(name="soak.effect", retry=RetryPolicy(max_retries=5, intervals=(1, 2, 4, 8, 16)))
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
