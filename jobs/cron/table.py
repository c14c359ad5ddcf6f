"""The cron table, for RQ's own scheduler: ``rq cron jobs.cron.table``.

Every task declared with ``@task(cron=...)`` or ``@task(every=...)`` is registered
here; nothing is listed twice. RQ's ``CronJob`` builds its queue without a serializer,
so its jobs would be pickled; ``OffloadCronJob`` enqueues through Offload's own
``jobs.submission`` instead, so cron jobs are JSON, carry their task name, are listed in
the job index and run through the worker's allowlist like every other job. Cron
expressions are read in the process's time zone: the Procfile runs cron with TZ=UTC.
"""

from __future__ import annotations

from typing import Any

import rq.cron
from redis import Redis
from rq.cron import CronJob

from jobs.cron.entries import enqueue_entry
from jobs.job import TaskJob
from jobs.registry import registry


class OffloadCronJob(CronJob):
    """A cron entry that enqueues its task the Offload way (and lists the run in its history)."""

    def enqueue(self, connection: Redis) -> TaskJob:
        return enqueue_entry(connection, registry.lookup_path(self.func_name), dict(self.kwargs))


def register_scheduled_tasks() -> list[dict[str, Any]]:
    """Hand every scheduled task of the registry to RQ's cron loader."""
    # CronScheduler.register builds entries by this module-level name.
    rq.cron.CronJob = OffloadCronJob  # type: ignore[misc]  # the class RQ's loader builds
    registered = []
    for task in registry.all():
        if task.cron or task.every:
            registered.append(
                rq.cron.register(
                    task.func,
                    task.queue,
                    cron=task.cron,
                    interval=task.every,
                    job_timeout=task.timeout,
                    result_ttl=task.result_ttl,
                    failure_ttl=task.failure_ttl,
                    name=task.name,
                )
            )
    return registered


register_scheduled_tasks()
