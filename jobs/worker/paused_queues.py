"""Paused queues (``jobs.fleet.queue_control``) for RQ's own dequeue, which the forking worker uses.

``InProcessWorker`` checks the paused queues inside its claim script; RQ's ``dequeue_any`` knows
nothing of them, so here the worker dequeues only from the queues that are not paused, and a job
popped from a queue paused in that very moment goes back to the front of it, unstarted.
"""

from __future__ import annotations

import time
from typing import Any

import rq
from rq.intermediate_queue import IntermediateQueue

from jobs.fleet import queue_control
from jobs.fleet.queue_control import PAUSE_CHECK_EVERY


class SkipPausedQueues(rq.Worker):
    """A mixin over RQ's worker: no job of a paused queue starts."""

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None) -> Any:
        idle_since = time.monotonic()
        every = self._ordered_queues
        while True:
            paused = queue_control.paused(self.connection)
            if not paused:
                return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            open_queues = [queue for queue in every if queue.name not in paused]
            waited = time.monotonic() - idle_since
            if max_idle_time is not None and waited >= max_idle_time:
                return None
            if not open_queues:
                if timeout is None:  # burst: nothing may be taken now
                    return None
                self.heartbeat()
                time.sleep(PAUSE_CHECK_EVERY)
                if self._stop_requested:
                    return None
                continue
            self._ordered_queues = open_queues
            try:  # a short wait (max_idle_time), then the paused set is read again
                result = super().dequeue_job_and_maintain_ttl(
                    timeout if timeout is None else min(timeout, PAUSE_CHECK_EVERY), PAUSE_CHECK_EVERY
                )
            finally:
                self._ordered_queues = every
            if result is None:
                if timeout is None:
                    return None
                continue
            job, queue = result
            if queue.name in queue_control.paused(self.connection):  # paused while this worker waited on it
                with self.connection.pipeline() as pipe:
                    pipe.lrem(IntermediateQueue(queue.key, self.connection).key, 1, job.id)
                    queue.push_job_id(job.id, pipeline=pipe, at_front=True)
                    pipe.execute()
                continue
            return result
