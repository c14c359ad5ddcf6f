"""Offload's tasks: plain Python functions, registered with ``@task``.

This package knows nothing of Flask: the web app imports it, never the reverse.
"""

from jobs.context import progress
from jobs.registry import QUEUES, RetryPolicy, registry, task

__all__ = ["QUEUES", "RetryPolicy", "progress", "registry", "task"]
