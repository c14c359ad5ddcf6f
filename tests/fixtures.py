"""Tasks used only by the tests. Every job a test runs lives here, importable by a real
worker process (loaded through OFFLOAD_TASK_MODULES)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from jobs import RetryPolicy, progress, task
from jobs.records.artifacts import Artifact


class Point(BaseModel):
    x: int
    y: int


@task
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@task(queue="low")
def describe(
    name: Annotated[str, Field(min_length=1, max_length=20)],
    color: Literal["red", "green"] = "red",
    tags: list[str] | None = None,
    where: Point | None = None,
) -> dict:
    """Echo structured arguments back, as the worker received them."""
    return {
        "name": name,
        "color": color,
        "tags": tags or [],
        "where": where.model_dump() if where else None,
        "where_type": type(where).__name__,
    }


@task
def touch(path: str) -> str:
    """Create a file, to prove from outside that the job ran."""
    Path(path).write_text(str(os.getpid()))
    progress(1, 1, "touched")
    return path


@task
def hold(pid_file: str, release_file: str, timeout: float = 30) -> str:
    """Write this process's pid, then block until ``release_file`` exists."""
    Path(pid_file).write_text(str(os.getpid()))
    deadline = time.monotonic() + timeout
    while not Path(release_file).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{release_file} never appeared")
        time.sleep(0.02)
    return "released"


@task(isolated=True)
def hold_isolated(pid_file: str, release_file: str, timeout: float = 30) -> str:
    """``hold`` in a work-horse of its own (an isolated task)."""
    return hold(pid_file, release_file, timeout)


log = logging.getLogger("tests.fixtures")


@task
def chatty(lines: int = 3, fail: bool = False) -> int:
    """Log and print numbered lines, then fail if asked."""
    for number in range(lines):
        log.info("line %d", number)
    print("printed to stdout")
    if fail:
        raise RuntimeError("crashed after logging")
    return lines


def _count_attempt(path: str) -> int:
    counter = Path(path)
    attempt = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(attempt))
    return attempt


@task(retry=RetryPolicy(max_retries=3, intervals=(1, 1, 1)))
def flaky(counter: str, succeed_on: int = 3) -> int:
    """Fail until the ``succeed_on``-th attempt (counted in a file)."""
    attempt = _count_attempt(counter)
    if attempt < succeed_on:
        raise ConnectionError(f"attempt {attempt} failed")
    return attempt


@task(retry=2)
def always_fails(counter: str) -> None:
    """Fail on every attempt; retried twice with the default backoff."""
    raise ValueError(f"attempt {_count_attempt(counter)} failed")


@task
def needs_file(path: str) -> str:
    """Fail unless ``path`` exists: a failure a test can fix before retrying."""
    return Path(path).read_text()


@task(unique_on=("account",))
def account_report(account: int, note: str = "") -> int:
    """One report per account at a time."""
    return account


@task
def make_file(text: str, size: int = 0, name: str = "hello.txt") -> Artifact:
    """Return a text file as an artifact (``size`` pads it, to test the cap)."""
    return Artifact((text + "x" * size).encode(), "text/plain", name)


@task(every=1)
def heartbeat() -> str:
    """Enqueued every second by the cron process in the cron test."""
    return "beat"


@task(retry=RetryPolicy(max_retries=1, intervals=(0,)))
def run_twice(marker_dir: str) -> dict:
    """First attempt: record this host's name and hang (its machine is then killed).
    Second attempt: finish, saying where it ran."""
    marker = Path(marker_dir) / "first-attempt"
    if not marker.exists():
        marker.write_text(f"{os.getpid()}")
        time.sleep(600)
    return {"pid": os.getpid()}


@task
def hold_and_count(counter: str, release_file: str, timeout: float = 60) -> int:
    """Count this run in a file, then block until ``release_file`` exists."""
    attempt = _count_attempt(counter)
    deadline = time.monotonic() + timeout
    while not Path(release_file).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{release_file} never appeared")
        time.sleep(0.02)
    return attempt


@task
def fail_with(message: str) -> None:
    """Raise an error carrying ``message`` as it is (a lone surrogate included)."""
    raise RuntimeError(message)
