"""Tasks used only by the tests. Every job a test runs lives here, importable by a real
worker process (loaded through OFFLOAD_TASK_MODULES)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from jobs import progress, task


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
