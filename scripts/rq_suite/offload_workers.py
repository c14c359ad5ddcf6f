"""A pytest plugin for RQ's own test suite: RQ's workers replaced by Offload's.

Loaded with ``-p scripts.rq_suite.offload_workers`` before RQ's tests are imported, it puts
Offload's in-process worker where RQ's suite builds ``Worker`` and ``SimpleWorker``, and
writes every test's outcome to the JSON file named by ``OFFLOAD_RQ_SUITE_REPORT``.

RQ's fixtures are plain functions, not registered Offload tasks, and take positional
arguments; ``SuiteJob`` lets them run (RQ's own lookup by import, RQ's callbacks). That
opening exists only here, in this plugin: Offload's workers in production refuse any job
class but ``jobs.job.TaskJob`` (``jobs.worker.guards``).
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
import rq
import rq.worker
import rq.worker.worker_classes
from rq.job import Job

from jobs.job import TaskJob
from jobs.worker.inprocess import InProcessWorker

_REPORT = os.environ.get("OFFLOAD_RQ_SUITE_REPORT", "")
_outcomes: dict[str, str] = {}


class SuiteJob(TaskJob):
    """TaskJob with RQ's own function lookup, arguments and callbacks, for RQ's fixtures."""

    @property
    def task(self) -> Any:
        raise AttributeError("RQ's fixtures are not registered tasks")

    func = Job.func
    success_callback = Job.success_callback
    failure_callback = Job.failure_callback
    stopped_callback = Job.stopped_callback
    _execute = Job._execute

    def refuse_callbacks(self) -> None:
        """RQ's suite sets callbacks on purpose."""


def _suite_job_class(job_class: Any) -> type[TaskJob]:
    if job_class is None or job_class is Job:
        return SuiteJob
    if isinstance(job_class, str):
        job_class = rq.utils.import_attribute(job_class)
    if issubclass(job_class, TaskJob):
        return job_class
    return type(f"Suite{job_class.__name__}", (SuiteJob, job_class), {})


class SuiteWorker(InProcessWorker):
    """Offload's in-process worker, taking RQ's default job class as ``SuiteJob``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["job_class"] = _suite_job_class(kwargs.get("job_class"))
        super().__init__(*args, **kwargs)


for module in (rq, rq.worker, rq.worker.worker_classes):
    module.Worker = SuiteWorker  # type: ignore[attr-defined,misc]
    module.SimpleWorker = SuiteWorker  # type: ignore[attr-defined,misc]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or report.outcome != "passed":
        previous = _outcomes.get(report.nodeid)
        if previous in (None, "passed", "skipped") or report.outcome == "failed":
            _outcomes[report.nodeid] = report.outcome


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _REPORT:
        with open(_REPORT, "w") as report:
            json.dump(_outcomes, report, indent=1, sort_keys=True)
