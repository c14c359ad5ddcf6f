"""The worker class for ``rq worker -w jobs.worker.forking.ForkingWorker``, and the base of Offload's own.

RQ's work-horse calls ``os.setpgrp()``, so a signal to the worker's process group
(honcho, Ctrl-C, a platform stop) never reaches it, and a worker killed outright
leaves its horse running with nobody to record the result. Here the horse asks the
kernel to kill it when its worker dies. Beside that, what every Offload worker keeps:
a stop never signals the worker's own process group, a worker whose registration
expired registers again, a worker started while RQ is suspended waits instead of
exiting, what dead workers held is recovered (``jobs.worker.recovery``), and text that cannot
be stored never takes a worker down.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Any

import psutil
import rq
import rq.cli.workers
from redis.exceptions import RedisError
from rq import worker_registration
from rq.job import JobStatus

from jobs.fleet.worker_overview import RSS_FIELD
from jobs.lifecycle import cancel_dependents
from jobs.records import job_index
from jobs.settings import get_settings
from jobs.worker.guards import check_job_class, check_rq_version
from jobs.worker.paused_queues import SkipPausedQueues
from jobs.worker.recovery import recover
from jobs.worker.shutdown import HandBackAtShutdown
from jobs.worker.sweeper import sweep

_PR_SET_PDEATHSIG = 1
_this_process = psutil.Process()


def _rss() -> int:
    return int(_this_process.memory_info().rss)


def _die_with_parent(parent_pid: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the worker died before prctl took effect
        os._exit(1)


class ForkingWorker(HandBackAtShutdown, SkipPausedQueues, rq.Worker):
    """RQ's forking worker whose work-horse never outlives it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        check_rq_version()
        super().__init__(*args, **kwargs)
        check_job_class(self.job_class)

    def run_maintenance_tasks(self) -> None:
        """Offload's recovery first, so that a dead worker's jobs run again before RQ's own
        cleanup (which lags it by RQ's 60 s heartbeat margin) could fail them as abandoned."""
        self._ensure_registered()
        settings = get_settings()
        grace = settings.OFFLOAD_HEARTBEAT_GRACE
        try:
            recover(
                self.connection,
                self.queue_names(),
                worker_stale_after=max(self.dequeue_timeout, self.job_monitoring_interval) + grace,
                job_stale_after=self.job_monitoring_interval + grace,
            )
            sweep(self.connection, confirm_after=settings.OFFLOAD_SWEEP_CONFIRM_AFTER)
            job_index.prune(self.connection)  # the index and search records of expired jobs
        except Exception:
            self.log.exception("recovering lost jobs failed; it runs again at the next maintenance pass")
        super().run_maintenance_tasks()

    # Visible while alive: a worker whose key expired (frozen, cut off, Redis restarted
    # without its data) registers again at its next heartbeat.

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """RQ's heartbeat, with the worker's memory (RSS) beside it for the workers page."""
        super().heartbeat(timeout, pipeline)
        try:
            (pipeline if pipeline is not None else self.connection).hset(self.key, RSS_FIELD, _rss())
        except RedisError:
            pass  # as RQ's own beat: the next one tries again
        if pipeline is None:
            self._ensure_registered()

    def _ensure_registered(self) -> None:
        try:
            registered = self.connection.sismember(worker_registration.REDIS_WORKER_KEYS, self.key)
            if registered and self.connection.hexists(self.key, "birth"):
                return
            self.log.warning("worker %s: its registration had expired; registering again", self.name)
            self.connection.delete(self.key)
            self.register_birth()
            self.connection.hset(self.key, "state", self.get_state() or "idle")
        except RedisError:
            pass  # Redis is away: the next heartbeat tries again

    def kill_horse(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Stop the work-horse, if there is one. RQ's falls through to ``os.killpg(0)`` when
        there is none, which is the worker's own process group: never do that."""
        if not self.horse_pid:
            self.log.info("worker %s: no work-horse to stop", self.name)
            return
        super().kill_horse(sig)

    def handle_job_failure(self, job: rq.job.Job, queue: rq.Queue, *args: Any, **kwargs: Any) -> None:
        """A job cut off by shutdown goes back to its queue; RQ leaves a failed job's
        dependents deferred forever, so they are canceled visibly instead. Text Redis cannot
        store (a lone surrogate in an exception message) is escaped, not fatal."""
        if self._handing_back == job.id:
            self._hand_back(job, kwargs.get("execution"))
            return
        if "exc_string" in kwargs:
            kwargs["exc_string"] = printable(kwargs["exc_string"])
        elif len(args) >= 2:
            args = (args[0], printable(args[1]), *args[2:])
        super().handle_job_failure(job, queue, *args, **kwargs)
        final = job.get_status(refresh=True)
        if final in (JobStatus.FAILED, JobStatus.STOPPED):
            try:
                cancel_dependents(self.connection, job, f"parent {job.id} {final.value}")
            except Exception:
                self.log.exception("could not cancel the dependents of failed job %s", job.id)

    def fork_work_horse(self, job: rq.job.Job, queue: rq.Queue) -> None:
        self._parent_pid = os.getpid()
        super().fork_work_horse(job, queue)

    def main_work_horse(self, job: rq.job.Job, queue: rq.Queue) -> None:
        _die_with_parent(self._parent_pid)
        super().main_work_horse(job, queue)


def printable(text: str) -> str:
    """``text`` with what UTF-8 cannot encode (lone surrogates) escaped, so Redis can store it."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def wait_when_suspended_at_start() -> None:
    """``rq worker`` exits 1 when RQ is suspended (rq/cli/workers.py checks before it builds the
    worker), so a suspension flag kept across restarts stopped every process of ``make run``.
    Let it start instead: the worker registers, shows ``suspended`` and waits for ``rq resume``
    (its loop checks before every claim). Fenced: tests/test_worker_promises.py fails if RQ's
    CLI stops calling the name this replaces."""
    original = rq.cli.workers.is_suspended

    def is_suspended(connection: Any, worker: Any = None) -> Any:
        if worker is None:  # the CLI's start-up check: start, and wait inside the loop
            return False
        return original(connection, worker)

    rq.cli.workers.is_suspended = is_suspended
