"""Shutdown without failing the running job.

At SIGTERM the current job gets ``SHUTDOWN_GRACE`` seconds to finish; if it does not, it is
stopped and goes back to the front of its queue, as Sidekiq does, instead of failing for a
reason that is not the task's. A second signal hands it back at once. How the grace fits each
runner (Heroku, honcho, systemd, Kubernetes) is in docs/worker.md's shutdown table.

"Stop after the current job" (``jobs.fleet.worker_overview.stop_after_job``: the workers page, the API, the CLI)
is the gentler stop: the worker takes no new job, lets the running one finish however long it
takes, and exits.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import rq
from rq.command import parse_payload
from rq.job import JobStatus

from jobs.fleet.worker_overview import STOP_AFTER_JOB, STOPPING_FIELD
from jobs.records import job_events
from jobs.settings import get_settings


class HandBackAtShutdown(rq.Worker):
    """The shutdown half of Offload's workers (a mixin over RQ's worker)."""

    _hand_back_timer: threading.Timer | None = None
    _handing_back: str | None = None
    _stop_after_job = False

    def handle_payload(self, message: Any) -> None:
        if parse_payload(message).get("command") == STOP_AFTER_JOB:
            self.log.info("Worker %s: asked to stop after its current job", self.name)
            self._stop_after_job = True
            self.connection.hset(self.key, STOPPING_FIELD, "1")
            os.kill(os.getpid(), signal.SIGINT)  # RQ's warm shutdown, without the hand-back timer
            return
        super().handle_payload(message)

    def request_stop(self, signum: int, frame: Any) -> None:
        job_id = self.get_current_job_id()
        if job_id is not None and self._hand_back_timer is None and not self._stop_after_job:
            # Heroku sends SIGKILL 30 s after SIGTERM: finish the job by then (20 s), or hand it back.
            grace = get_settings().OFFLOAD_SHUTDOWN_GRACE
            self.log.info("shutdown requested: job %s has %.0f s to finish before it is handed back", job_id, grace)
            self._hand_back_timer = threading.Timer(grace, self._stop_horse_for_hand_back, args=(job_id,))
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
            job_events.publish_status(pipe, job.id, "queued", reason="handed back: its worker was shutting down")
            pipe.execute()
        self._handing_back = None
        self.log.warning("job %s handed back to queue %s: the worker is shutting down", job.id, job.origin)
