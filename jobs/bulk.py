"""Retry, cancel or delete every job a filter (or a failure group) finds, in bounded chunks.

Each job goes through the same step as its own button (``jobs.lifecycle``); one that its state
does not allow is skipped with the reason, never an error, so a repeated action does nothing
more and says so. At most ``BULK_MAX_JOBS`` jobs per call: the outcome says when more are left.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from redis import Redis

from jobs import failures, finding, lifecycle
from jobs.job import TaskJob
from jobs.records.job_search import Query
from jobs.settings import get_settings

CHUNK = 200
ACTIONS: dict[str, Callable[[Redis, TaskJob], object]] = {
    "retry": lifecycle.retry,
    "cancel": lifecycle.cancel,
    "delete": lifecycle.forget,
}


@dataclass
class Outcome:
    action: str
    matched: int = 0
    done: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # reason → jobs
    more: bool = False  # the cap was reached: run it again for the rest

    def as_dict(self) -> dict[str, object]:
        return {
            "action": self.action,
            "matched": self.matched,
            "done": self.done,
            "skipped": sum(self.skipped.values()),
            "skipped_because": dict(self.skipped),
            "more": self.more,
        }


def act(redis: Redis, action: str, query: Query | None = None, group: str | None = None) -> Outcome:
    """Apply ``action`` to every job ``query`` finds, or every job of failure ``group``."""
    step = ACTIONS[action]
    outcome = Outcome(action)
    limit = get_settings().BULK_MAX_JOBS
    for jobs in _chunks(redis, query, group, outcome):
        for job in jobs:
            if outcome.done + sum(outcome.skipped.values()) >= limit:
                outcome.more = True
                return outcome
            try:
                step(redis, job)
            except lifecycle.JobStateError as refused:
                outcome.skipped[str(refused)] += 1
            else:
                outcome.done += 1
    return outcome


def _chunks(redis: Redis, query: Query | None, group: str | None, outcome: Outcome) -> Iterator[list[TaskJob]]:
    if group is not None:
        chosen = next((each for each in failures.groups(redis) if each.id == group), None)
        ids = chosen.job_ids if chosen is not None else []
        outcome.matched = len(ids)
        for start in range(0, len(ids), CHUNK):
            yield [job for job in TaskJob.load_many(redis, ids[start : start + CHUNK]) if job is not None]
        return
    if query is None:
        raise ValueError("give a query or a group")
    cursor = None
    first = True
    while True:
        jobs, found = finding.find(redis, query, CHUNK, cursor)
        if first:
            outcome.matched, first = found.matches, False
        yield jobs
        if found.next_cursor is None:
            return
        cursor = found.next_cursor
