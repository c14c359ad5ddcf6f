"""Tasks of the benchmark only (loaded with OFFLOAD_TASK_MODULES=scripts.bench.tasks)."""

from __future__ import annotations

from jobs import task

# Results kept two seconds: Redis memory per job is measured before and after they expire.
RESULT_TTL = 2


@task(name="bench.short_lived", queue="default", result_ttl=RESULT_TTL, failure_ttl=RESULT_TTL)
def short_lived() -> None:
    """A no-op whose records expire quickly."""
