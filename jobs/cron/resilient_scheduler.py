"""RQ's cron scheduler, kept alive through Redis outages, and the one process that evaluates alerts.

Stock ``rq cron`` exits on the first connection error; a platform would restart it,
a local honcho run would stop everything. This one waits for Redis and carries on.
Between its enqueues it runs ``jobs.alerts.evaluation.tick`` every ``ALERT_CHECK_SECONDS``
(the alert rules and the queues' depth samples for the trends): exactly one cron process
runs, and it runs when every worker is gone, which is when alerts matter most.
``jobs.worker.rq_cli_config`` (which ``rq cron --config jobs.worker.rq_cli_config`` imports first) installs it
as the class the CLI instantiates.
"""

from __future__ import annotations

import time

import rq.cli.cli_cron
from redis.exceptions import ConnectionError, TimeoutError
from rq.cron import CronJob, CronScheduler

from jobs.alerts import evaluation
from jobs.settings import get_settings

RETRY_SECONDS = 1.0


class ResilientCronScheduler(CronScheduler):
    _next_check = 0.0

    def start(self) -> None:
        while True:
            try:
                super().start()
                return
            except (ConnectionError, TimeoutError) as error:
                self.log.warning("cron: Redis unreachable (%s); retrying in %.0f s", error, RETRY_SECONDS)
                time.sleep(RETRY_SECONDS)

    def enqueue_jobs(self) -> list[CronJob]:
        enqueued = super().enqueue_jobs()
        if time.monotonic() >= self._next_check:
            self._next_check = time.monotonic() + get_settings().ALERT_CHECK_SECONDS
            evaluation.tick(self.connection)
        return enqueued

    def calculate_sleep_interval(self) -> float:
        return max(0.0, min(super().calculate_sleep_interval(), self._next_check - time.monotonic()))


def install() -> None:
    rq.cli.cli_cron.CronScheduler = ResilientCronScheduler  # type: ignore[misc]  # the class RQ's CLI builds
