"""Finding jobs for the API, the pages and the CLI: a search (``jobs.records.job_search``), loaded.

Without a filter the newest jobs come from the job index and the counts from RQ's own queues
and registries (a failed registry's stopped jobs told apart), so the first page costs what a
page costs whatever the store holds. With a filter, the search counts what it finds.
"""

from __future__ import annotations

from redis import Redis

from jobs import failures
from jobs.job import TaskJob
from jobs.queues import queue_counts, queue_for
from jobs.records import job_index
from jobs.records.job_search import Found, Query, search
from jobs.settings import get_settings
from jobs.vocabulary import REGISTRY_STATES


def find(redis: Redis, query: Query, limit: int, cursor: str | None = None) -> tuple[list[TaskJob], Found]:
    """A page of the jobs ``query`` finds, newest first, and what the search counted."""
    if not query.filters():
        jobs, next_cursor = job_index.page(redis, lambda job: True, limit, cursor)
        counts = status_counts(redis)
        return jobs, Found([job.id for job in jobs], next_cursor, sum(counts.values()), counts)
    found = search(redis, query, limit, cursor, status_keys(redis))
    jobs = [job for job in TaskJob.load_many(redis, found.job_ids) if job is not None]
    return jobs, found


def status_keys(redis: Redis) -> list[str]:
    """Per queue: the queue's list, then its started, scheduled, deferred, finished, failed and
    canceled registries, as RQ names them."""
    keys = []
    for name in get_settings().QUEUES:
        queue = queue_for(redis, name)
        keys.append(queue.key)
        keys += [getattr(queue, f"{state}_job_registry").key for state in REGISTRY_STATES]
    return keys


def status_counts(redis: Redis) -> dict[str, int]:
    """Jobs per status over every queue, from RQ's queues and registries."""
    counts: dict[str, int] = {}
    for per_queue in queue_counts(redis).values():
        for state, count in per_queue.items():
            counts[state] = counts.get(state, 0) + count
    if counts.get("failed"):
        stopped = sum(1 for _, status in failures.failed_registry(redis) if status == "stopped")
        counts["failed"] -= stopped
        counts["stopped"] = stopped
    return {state: count for state, count in counts.items() if count}


def summary_of(found: Found) -> dict[str, object]:
    """The counts a list answer carries beside its page."""
    return {"matches": found.matches, "counts": found.counts}
