"""What a worker checks before it starts, each refusal one line and exit status 1.

Offload's workers override parts of RQ's worker and write RQ's records from a script
(``lua/record_and_take.lua``); that is only safe on the RQ release they were checked against
(``make test`` runs RQ's own test suite with them, see docs/worker.md). And they run only
registered tasks, which takes Offload's job class.
"""

from __future__ import annotations

import rq

from jobs.job import TaskJob

# The RQ release (major, minor) the workers are built for and RQ's suite passes with.
RQ_BUILT_FOR = (3, 0)


class RefusedToStart(SystemExit):
    """The worker cannot start here. A SystemExit, so ``rq worker`` prints the one line and
    exits 1 instead of logging a traceback."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"offload worker: {reason}")


def rq_release(version: str) -> tuple[int, int]:
    major, minor, *_ = (int(part) if part.isdigit() else -1 for part in version.split("."))
    return major, minor


def check_rq_version(version: str | None = None) -> None:
    version = version or rq.VERSION
    if rq_release(version) != RQ_BUILT_FOR:
        built_for = ".".join(map(str, RQ_BUILT_FOR))
        raise RefusedToStart(
            f"built for RQ {built_for}.x, found RQ {version}; pin rq to {built_for}.x "
            "or upgrade Offload (docs/worker.md: upgrading RQ)"
        )


def check_job_class(job_class: type) -> None:
    if not (isinstance(job_class, type) and issubclass(job_class, TaskJob)):
        name = getattr(job_class, "__qualname__", repr(job_class))
        raise RefusedToStart(
            f"job class {name} is not Offload's; start the worker with --job-class jobs.job.TaskJob "
            "(Offload runs only registered tasks)"
        )
