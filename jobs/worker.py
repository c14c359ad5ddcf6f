"""The worker class for ``rq worker -w jobs.worker.Worker``.

RQ's work-horse calls ``os.setpgrp()``, so a signal to the worker's process group
(honcho, Ctrl-C, a platform stop) never reaches it, and a worker killed outright
leaves its horse running with nobody to record the result. Here the horse asks the
kernel to kill it when its worker dies.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Any

import rq
from rq.job import JobStatus

from jobs.lifecycle import cancel_dependents

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the worker died before prctl took effect
        os._exit(1)


HEARTBEAT_GRACE = int(os.environ.get("OFFLOAD_HEARTBEAT_GRACE", "15"))


class Worker(rq.Worker):
    """RQ's forking worker whose work-horse never outlives it."""

    def get_heartbeat_ttl(self, job: rq.job.Job, working_time: float = 0.0) -> int:
        """RQ adds a fixed 60 s to each job heartbeat, so a job whose worker died looked alive
        for over a minute; Offload's grace is OFFLOAD_HEARTBEAT_GRACE (15 s) after the next
        expected beat, and the job is recovered that much sooner."""
        return super().get_heartbeat_ttl(job, working_time) - 60 + HEARTBEAT_GRACE

    def fork_work_horse(self, job: rq.job.Job, queue: rq.Queue) -> None:
        self._parent_pid = os.getpid()
        super().fork_work_horse(job, queue)

    def main_work_horse(self, job: rq.job.Job, queue: rq.Queue) -> None:
        _die_with_parent(self._parent_pid)
        super().main_work_horse(job, queue)

    def handle_job_failure(self, job: rq.job.Job, queue: rq.Queue, *args: Any, **kwargs: Any) -> None:
        """RQ leaves a failed job's dependents deferred forever; cancel them visibly instead."""
        super().handle_job_failure(job, queue, *args, **kwargs)
        final = job.get_status(refresh=True)
        if final in (JobStatus.FAILED, JobStatus.STOPPED):
            try:
                cancel_dependents(self.connection, job, f"parent {job.id} {final.value}")
            except Exception:
                self.log.exception("could not cancel the dependents of failed job %s", job.id)
