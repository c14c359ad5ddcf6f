"""RQ's cron scheduler, kept alive through Redis outages.

Stock ``rq cron`` exits on the first connection error; a platform would restart it,
a local honcho run would stop everything. This one waits for Redis and carries on.
``jobs.worker.rq_cli_config`` (which ``rq cron --config jobs.worker.rq_cli_config`` imports first) installs it
as the class the CLI instantiates.
"""

from __future__ import annotations

import time

import rq.cli.cli_cron
from redis.exceptions import ConnectionError, TimeoutError
from rq.cron import CronScheduler

RETRY_SECONDS = 1.0


class ResilientCronScheduler(CronScheduler):
    def start(self) -> None:
        while True:
            try:
                super().start()
                return
            except (ConnectionError, TimeoutError) as error:
                self.log.warning("cron: Redis unreachable (%s); retrying in %.0f s", error, RETRY_SECONDS)
                time.sleep(RETRY_SECONDS)


def install() -> None:
    rq.cli.cli_cron.CronScheduler = ResilientCronScheduler  # type: ignore[misc]  # the class RQ's CLI builds
