"""The words every part shares: job statuses, queue names and the shapes of ids.

A status, a queue name or an id pattern is written here once; the API's schemas, the pages,
the CLI, the worker and the Redis records import it. Which queues exist is a setting
(``QUEUES`` in ``jobs.settings``); what a queue name may look like is said here.
"""

from __future__ import annotations

import re
from typing import Literal, get_args

# The statuses a job shows, in the order a page lists them.
Status = Literal["queued", "scheduled", "deferred", "started", "finished", "failed", "stopped", "canceled"]
STATUSES: tuple[str, ...] = get_args(Status)

# A job waits in these (RQ's "created" is a job not yet in any queue).
WAITING = frozenset({"queued", "scheduled", "deferred", "created"})
# Still to run or running: a unique job with one of these is the one a new submission returns.
ACTIVE = WAITING | {"started"}
# Ran, at least once.
RAN = frozenset({"started", "finished", "failed", "stopped"})
# Done for good: an event stream closes on these.
TERMINAL = frozenset({"finished", "failed", "stopped", "canceled"})
# A user may run these again.
RETRYABLE = frozenset({"failed", "stopped", "canceled"})
# Each has a registry per queue in RQ (queued jobs are the queue's list itself).
REGISTRY_STATES: tuple[str, ...] = ("started", "scheduled", "deferred", "finished", "failed", "canceled")

DEFAULT_QUEUES: tuple[str, ...] = ("high", "default", "low")

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
"""Job ids, upload ids and queue names: what may sit in a Redis key and a URL path as is."""
JOB_ID = re.compile(ID_PATTERN)
QUEUE_NAME = JOB_ID
