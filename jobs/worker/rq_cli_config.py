"""What ``rq worker -c jobs.worker.rq_cli_config`` and ``rq cron -c …`` read.

RQ reads the UPPERCASE names below. Importing this module reads Offload's settings (a bad
value stops the process with one line naming it) and loads the task registry, so a broken
task module stops the worker at start-up, not at the first job.
"""

from jobs import logging_config as _logging_config
from jobs.connection import redis_url as _redis_url
from jobs.cron import resilient_scheduler
from jobs.job import never_unpickle as _never_unpickle
from jobs.registry import registry as _registry
from jobs.settings import SettingsError as _SettingsError
from jobs.settings import get_settings as _get_settings
from jobs.worker.forking import wait_when_suspended_at_start as _wait_when_suspended_at_start

try:
    _settings = _get_settings()
except _SettingsError as _error:
    raise SystemExit(str(_error)) from None
if not _settings.REDIS_URL:
    raise SystemExit("REDIS_URL is not set: point the worker at a Redis server (make run does it for you)")
REDIS_URL = _redis_url(_settings.REDIS_URL)
# A worker may serve some queues only (one machine for "high", say): OFFLOAD_QUEUES=high,default
QUEUES = list(_settings.worker_queues)
_unknown = sorted(set(QUEUES) - set(_settings.QUEUES))
if _unknown:
    raise SystemExit(f"OFFLOAD_QUEUES names unknown queues {_unknown}; the queues are {list(_settings.QUEUES)}")

# Nothing in a worker or cron process reads a pickle, whatever forgets to name a serializer.
_never_unpickle()

# `rq cron` reads this module before it builds its scheduler: make that one survive outages.
resilient_scheduler.install()

# A worker started while RQ is suspended waits, registered and visible, instead of exiting 1.
_wait_when_suspended_at_start()

# With a handler on the root logger, RQ adds none of its own: worker and cron log in our format.
_logging_config.configure()
_registry.load()
