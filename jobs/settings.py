"""Settings for the ``rq worker`` CLI (``rq worker -c jobs.settings``).

RQ reads the UPPERCASE names below. Importing this module also loads the task
registry, so a broken task module stops the worker at start-up, not at the first job.
"""

import os

from jobs.registry import QUEUES as _QUEUES
from jobs.registry import registry as _registry

try:
    REDIS_URL = os.environ["REDIS_URL"]
except KeyError:
    raise SystemExit("REDIS_URL is not set: point the worker at a Redis server (make run does it for you)") from None
QUEUES = list(_QUEUES)

_registry.load()
