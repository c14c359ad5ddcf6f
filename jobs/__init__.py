"""Offload's tasks: plain Python functions, registered with ``@task``.

This package knows nothing of Flask: the web app imports it, never the reverse. Its names are
imported when first used, so that reading the settings (``jobs.settings``, which gunicorn's
configuration does before gevent patches the standard library) imports neither Redis nor RQ.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobs.context import progress
    from jobs.registry import RetryPolicy, registry, task

__all__ = ["RetryPolicy", "progress", "registry", "task"]
_HOMES = {
    "progress": "jobs.context",
    "RetryPolicy": "jobs.registry",
    "registry": "jobs.registry",
    "task": "jobs.registry",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'jobs' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
