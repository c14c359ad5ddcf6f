"""Settings for the ``rq worker`` CLI (``rq worker -c jobs.settings``).

RQ reads the UPPERCASE names below. Importing this module also loads the task
registry, so a broken task module stops the worker at start-up, not at the first job.
"""

import os

from jobs import cron_scheduler as _cron_scheduler
from jobs import logging_config as _logging_config
from jobs.connection import redis_url as _redis_url
from jobs.environment import EnvironmentSettingError as _EnvironmentSettingError
from jobs.environment import app_env as _app_env
from jobs.environment import demo_tasks_enabled as _demo_tasks_enabled
from jobs.job import never_unpickle as _never_unpickle
from jobs.registry import QUEUES as _QUEUES
from jobs.registry import registry as _registry
from jobs.worker.forking import wait_when_suspended_at_start as _wait_when_suspended_at_start

try:
    _app_env()
    _demo_tasks_enabled()
except _EnvironmentSettingError as _error:
    raise SystemExit(str(_error)) from None
try:
    REDIS_URL = _redis_url(os.environ["REDIS_URL"])
except KeyError:
    raise SystemExit("REDIS_URL is not set: point the worker at a Redis server (make run does it for you)") from None
# A worker may serve some queues only (one machine for "high", say): OFFLOAD_QUEUES=high,default
QUEUES = [name.strip() for name in os.environ.get("OFFLOAD_QUEUES", ",".join(_QUEUES)).split(",") if name.strip()]
_unknown = sorted(set(QUEUES) - set(_QUEUES))
if _unknown:
    raise SystemExit(f"OFFLOAD_QUEUES names unknown queues {_unknown}; the queues are {list(_QUEUES)}")

# Nothing in a worker or cron process reads a pickle, whatever forgets to name a serializer.
_never_unpickle()

# `rq cron` reads this module before it builds its scheduler: make that one survive outages.
_cron_scheduler.install()

# A worker started while RQ is suspended waits, registered and visible, instead of exiting 1.
_wait_when_suspended_at_start()

# With a handler on the root logger, RQ adds none of its own: worker and cron log in our format.
_logging_config.configure()
_registry.load()
