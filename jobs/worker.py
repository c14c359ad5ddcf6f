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
import threading
from typing import Any

import rq
from rq.job import JobStatus

from jobs import events
from jobs.lifecycle import cancel_dependents
from jobs.sweeper import sweep

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the worker died before prctl took effect
        os._exit(1)


HEARTBEAT_GRACE = int(os.environ.get("OFFLOAD_HEARTBEAT_GRACE", "15"))
# Heroku sends SIGKILL 30 s after SIGTERM: finish the job by then, or hand it back.
SHUTDOWN_GRACE = float(os.environ.get("OFFLOAD_SHUTDOWN_GRACE", "20"))
SWEEP_CONFIRM_AFTER = float(os.environ.get("OFFLOAD_SWEEP_CONFIRM_AFTER", "10"))


class Worker(rq.Worker):
    """RQ's forking worker whose work-horse never outlives it."""

    _hand_back_timer: threading.Timer | None = None
    _handing_back: str | None = None

    def get_heartbeat_ttl(self, job: rq.job.Job, working_time: float = 0.0) -> int:
        """RQ adds a fixed 60 s to each job heartbeat, so a job whose worker died looked alive
        for over a minute; Offload's grace is OFFLOAD_HEARTBEAT_GRACE (15 s) after the next
        expected beat, and the job is recovered that much sooner."""
        return super().get_heartbeat_ttl(job, working_time) - 60 + HEARTBEAT_GRACE

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()
        try:
            sweep(self.connection, confirm_after=SWEEP_CONFIRM_AFTER)
        except Exception:
            self.log.exception("the sweep for lost jobs failed; it runs again at the next maintenance pass")

    def fork_work_horse(self, job: rq.job.Job, queue: rq.Queue) -> None:
        self._parent_pid = os.getpid()
        super().fork_work_horse(job, queue)

    def main_work_horse(self, job: rq.job.Job, queue: rq.Queue) -> None:
        _die_with_parent(self._parent_pid)
        super().main_work_horse(job, queue)

    # Shutdown: the current job gets SHUTDOWN_GRACE seconds to finish; if it does not, its
    # work-horse is stopped and the job goes back to the front of its queue, as Sidekiq
    # does, instead of failing for a reason that is not the task's.

    def request_stop(self, signum: int, frame: Any) -> None:
        job_id = self.get_current_job_id()
        if job_id is not None and self._hand_back_timer is None:
            self.log.info(
                "shutdown requested: job %s has %.0f s to finish before it is handed back", job_id, SHUTDOWN_GRACE
            )
            self._hand_back_timer = threading.Timer(SHUTDOWN_GRACE, self._stop_horse_for_hand_back, args=(job_id,))
            self._hand_back_timer.daemon = True
            self._hand_back_timer.start()
        super().request_stop(signum, frame)

    def request_force_stop(self, signum: int, frame: Any) -> None:
        job = self.get_current_job()
        if job is not None and self.horse_pid:
            self._handing_back = job.id
            self.kill_horse()
            self.wait_for_horse()
            self._hand_back(job, self.execution)
            raise SystemExit()
        super().request_force_stop(signum, frame)

    def _stop_horse_for_hand_back(self, job_id: str) -> None:
        if self.get_current_job_id() == job_id and self.horse_pid:
            self._handing_back = job_id
            self.kill_horse()

    def _hand_back(self, job: rq.job.Job, execution: Any) -> None:
        queue = rq.Queue(job.origin, connection=self.connection, job_class=self.job_class, serializer=self.serializer)
        with self.connection.pipeline() as pipe:
            self.cleanup_execution(job, pipeline=pipe, execution=execution)
            job.set_status(JobStatus.QUEUED, pipeline=pipe)
            queue.push_job_id(job.id, pipeline=pipe, at_front=True)
            events.publish_status(pipe, job.id, "queued", reason="handed back: its worker was shutting down")
            pipe.execute()
        self._handing_back = None
        self.log.warning("job %s handed back to queue %s: the worker is shutting down", job.id, job.origin)

    def handle_job_failure(self, job: rq.job.Job, queue: rq.Queue, *args: Any, **kwargs: Any) -> None:
        """A job cut off by shutdown goes back to its queue; RQ leaves a failed job's
        dependents deferred forever, so they are canceled visibly instead."""
        if self._handing_back == job.id:
            self._hand_back(job, kwargs.get("execution"))
            return
        super().handle_job_failure(job, queue, *args, **kwargs)
        final = job.get_status(refresh=True)
        if final in (JobStatus.FAILED, JobStatus.STOPPED):
            try:
                cancel_dependents(self.connection, job, f"parent {job.id} {final.value}")
            except Exception:
                self.log.exception("could not cancel the dependents of failed job %s", job.id)
