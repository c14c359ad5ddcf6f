"""The task registry: the one list of functions Offload will run.

A task is a plain Python function marked with ``@task``. Its type hints are its
argument schema: pydantic builds the validator and the JSON Schema from them. The
API, the OpenAPI document, the pages' forms, the CLI, the cron table and the worker's
allowlist all read this registry, so a task is declared exactly once.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import random
import threading
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import croniter
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, create_model

from jobs.settings import get_settings

TASK_PACKAGE = "jobs.tasks"
# Sleep, burn CPU, fail, the soak's effect: loaded only where asked for (OFFLOAD_DEMO_TASKS in jobs.settings).
DEMO_MODULE = "jobs.tasks.demo"
EXTRA_MODULES_ENV = "OFFLOAD_TASK_MODULES"


class TaskDefinitionError(TypeError):
    """A function cannot become a task (missing type hints, bad options)."""


class UnknownTaskError(LookupError):
    """No task of that name (or dotted path) is registered."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how soon a failed job runs again.

    ``intervals`` are explicit delays in seconds; without them the delays grow
    exponentially from ``backoff`` seconds, each scaled by a random jitter factor.
    """

    max_retries: int = 0
    backoff: float = 1.0
    intervals: tuple[int, ...] = ()
    jitter: float = 0.5

    def delays(self) -> list[int]:
        """The delay before each retry, in whole seconds (RQ schedules by the second)."""
        if self.intervals:
            return list(self.intervals)
        delays = []
        for attempt in range(self.max_retries):
            base = self.backoff * (2**attempt)
            factor = 1 + random.uniform(-self.jitter, self.jitter)
            delays.append(max(0, round(base * factor)))
        return delays

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_retries": self.max_retries,
            "backoff": self.backoff,
            "intervals": list(self.intervals),
            "jitter": self.jitter,
        }


@dataclass(frozen=True)
class Task:
    """A registered function and everything needed to queue and run it."""

    name: str
    func: Callable[..., Any]
    queue: str
    timeout: int
    retry: RetryPolicy
    result_ttl: int
    failure_ttl: int
    description: str
    args_model: type[BaseModel] = field(repr=False)
    cron: str | None = None
    every: int | None = None
    unique_on: tuple[str, ...] = ()
    # Run in a forked work-horse of its own rather than in the worker process.
    isolated: bool = False

    @property
    def schedule(self) -> str | None:
        """The cron expression, or ``every N seconds``; None for tasks that only run on demand."""
        if self.cron:
            return self.cron
        return f"every {self.every} seconds" if self.every else None

    def next_run(self, after: datetime | None = None) -> datetime | None:
        """When the cron process will next enqueue this task (UTC), if it is scheduled."""
        after = after or datetime.now(UTC)
        if self.cron:
            return croniter(self.cron, after).get_next(datetime)
        if self.every:
            return after + timedelta(seconds=self.every)
        return None

    @property
    def func_path(self) -> str:
        """The dotted path RQ stores in the job (what rq-dashboard shows)."""
        return f"{self.func.__module__}.{self.func.__qualname__}"

    def validate(self, args: dict[str, Any]) -> dict[str, Any]:
        """Check ``args`` against the type hints; returns them coerced to Python values.

        Raises pydantic's ``ValidationError`` with one entry per bad field.
        """
        model = self.args_model.model_validate(args)
        return {name: getattr(model, name) for name in self.args_model.model_fields}

    def to_json_args(self, args: dict[str, Any]) -> dict[str, Any]:
        """Validate ``args`` and return their JSON form, as stored in the job (secrets revealed)."""
        model = self.args_model.model_validate(args)
        stored = model.model_dump(mode="json")
        for name in self.secret_fields:
            value = getattr(model, name)
            stored[name] = value.get_secret_value() if isinstance(value, SecretStr) else value
        return stored

    @property
    def secret_fields(self) -> tuple[str, ...]:
        """Parameters typed ``SecretStr``: stored for the worker, masked wherever jobs are shown."""
        return tuple(
            name
            for name, info in self.args_model.model_fields.items()
            if SecretStr in (info.annotation, *typing.get_args(info.annotation))
        )

    def redact(self, args: dict[str, Any]) -> dict[str, Any]:
        """``args`` as they may be shown: secret values replaced."""
        return {name: ("**********" if name in self.secret_fields and value else value) for name, value in args.items()}

    def schema(self) -> dict[str, Any]:
        """JSON Schema (draft 2020-12, as OpenAPI 3.1 uses) of the arguments."""
        return self.args_model.model_json_schema()


class Registry:
    """Tasks by name and by dotted function path."""

    def __init__(self) -> None:
        self._by_name: dict[str, Task] = {}
        self._by_path: dict[str, Task] = {}
        self._loaded = False
        self._lock = threading.Lock()

    def add(self, task_: Task) -> None:
        existing = self._by_name.get(task_.name)
        if existing is not None and existing.func_path != task_.func_path:
            raise TaskDefinitionError(
                f"task name {task_.name!r} is used by both {existing.func_path} and {task_.func_path}"
            )
        self._by_name[task_.name] = task_
        self._by_path[task_.func_path] = task_

    def lookup(self, name: str) -> Task:
        """The task called ``name``; raises ``UnknownTaskError``."""
        self.load()
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownTaskError(f"no task named {name!r}") from None

    def lookup_path(self, func_path: str) -> Task:
        """The task whose function lives at ``func_path``; raises ``UnknownTaskError``."""
        self.load()
        try:
            return self._by_path[func_path]
        except KeyError:
            raise UnknownTaskError(f"{func_path!r} is not a registered task") from None

    def all(self) -> list[Task]:
        self.load()
        return sorted(self._by_name.values(), key=lambda t: t.name)

    def load(self, extra_modules: Iterable[str] | None = None) -> None:
        """Import every module of ``jobs.tasks`` and of ``$OFFLOAD_TASK_MODULES`` once.

        Importing a module runs its ``@task`` decorators, which fill this registry.
        """
        if self._loaded and extra_modules is None:
            return
        with self._lock:
            if self._loaded and extra_modules is None:
                return
            for module_name in _task_modules(extra_modules):
                importlib.import_module(module_name)
            self._loaded = True


def _task_modules(extra_modules: Iterable[str] | None) -> list[str]:
    package = importlib.import_module(TASK_PACKAGE)
    demo = get_settings().demo_tasks
    names = [
        info.name
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{TASK_PACKAGE}.")
        if not info.name.rsplit(".", 1)[-1].startswith("_") and (demo or info.name != DEMO_MODULE)
    ]
    if extra_modules is None:
        extra_modules = get_settings().OFFLOAD_TASK_MODULES
    names.extend(name.strip() for name in extra_modules if name.strip())
    return names


registry = Registry()


def default_queue(queues: tuple[str, ...]) -> str:
    """Where a task that names no queue goes: ``default``, or the first queue if none is so named."""
    return "default" if "default" in queues else queues[0]


def highest_queue() -> str:
    """The app's first queue (``high`` by default): for a built-in task that must not wait."""
    return get_settings().QUEUES[0]


def lowest_queue() -> str:
    """The app's last queue (``low`` by default): for a built-in task that may wait."""
    return get_settings().QUEUES[-1]


def task(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    queue: str | None = None,
    timeout: int = 180,
    retry: RetryPolicy | int = 0,
    result_ttl: int = 24 * 3600,
    failure_ttl: int = 7 * 24 * 3600,
    description: str | None = None,
    cron: str | None = None,
    every: int | None = None,
    unique_on: tuple[str, ...] | list[str] = (),
    isolated: bool = False,
) -> Any:
    """Mark a function as a task. Usable bare (``@task``) or with options.

    ``isolated=True`` runs each job in a forked process of its own (for code that may
    crash the interpreter, leak memory or block signals in C); other tasks run in the
    worker process, which is far cheaper per job.

    The function is returned unchanged, so it can still be called directly.
    """

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        queues = get_settings().QUEUES
        task_queue = queue if queue is not None else default_queue(queues)
        if task_queue not in queues:
            raise TaskDefinitionError(
                f"{fn.__qualname__}: queue must be one of the app's QUEUES {list(queues)}, not {queue!r}"
            )
        if timeout <= 0:
            raise TaskDefinitionError(f"{fn.__qualname__}: timeout must be positive")
        policy = RetryPolicy(max_retries=retry) if isinstance(retry, int) else retry
        task_name = name or _default_name(fn)
        if cron is not None and every is not None:
            raise TaskDefinitionError(f"task {task_name}: give cron or every, not both")
        if cron is not None and not croniter.is_valid(cron):
            raise TaskDefinitionError(f"task {task_name}: {cron!r} is not a valid cron expression")
        if every is not None and every < 1:
            raise TaskDefinitionError(f"task {task_name}: every must be at least 1 second")
        args_model = _args_model(fn)
        unknown = [arg for arg in unique_on if arg not in args_model.model_fields]
        if unknown:
            raise TaskDefinitionError(f"task {task_name}: unique_on names unknown parameters {unknown}")
        if (cron or every) and any(f.is_required() for f in args_model.model_fields.values()):
            raise TaskDefinitionError(f"task {task_name}: a scheduled task needs defaults for all its parameters")
        task_ = Task(
            name=task_name,
            func=fn,
            queue=task_queue,
            timeout=timeout,
            retry=policy,
            result_ttl=result_ttl,
            failure_ttl=failure_ttl,
            description=description or inspect.cleandoc(fn.__doc__ or "").split("\n\n")[0],
            args_model=args_model,
            cron=cron,
            every=every,
            unique_on=tuple(unique_on),
            isolated=isolated,
        )
        registry.add(task_)
        fn.__offload_task__ = task_  # type: ignore[attr-defined]
        return fn

    return register(func) if func is not None else register


def task_of(func: Callable[..., Any]) -> Task:
    """The ``Task`` a decorated function was registered as."""
    try:
        return func.__offload_task__  # type: ignore[attr-defined]
    except AttributeError:
        raise UnknownTaskError(f"{func!r} is not a registered task") from None


def _default_name(fn: Callable[..., Any]) -> str:
    module = fn.__module__
    if module.startswith(f"{TASK_PACKAGE}."):
        module = module[len(TASK_PACKAGE) + 1 :]
    return f"{module}.{fn.__qualname__}"


def _args_model(fn: Callable[..., Any]) -> type[BaseModel]:
    """A pydantic model whose fields are the function's parameters."""
    signature = inspect.signature(fn, eval_str=True)
    fields: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise TaskDefinitionError(
                f"{fn.__qualname__}: parameter {param.name!r} must be an ordinary or keyword-only parameter"
            )
        if param.annotation is inspect.Parameter.empty:
            raise TaskDefinitionError(
                f"{fn.__qualname__}: parameter {param.name!r} needs a type hint (it is the argument schema)"
            )
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (param.annotation, default)
    model_name = "".join(part.capitalize() for part in _default_name(fn).replace("_", ".").split(".")) + "Args"
    return create_model(
        model_name,
        __config__=ConfigDict(extra="forbid", allow_inf_nan=False),
        __doc__=f"Arguments of {fn.__qualname__}.",
        **fields,
    )


__all__ = [
    "RetryPolicy",
    "Task",
    "TaskDefinitionError",
    "UnknownTaskError",
    "ValidationError",
    "registry",
    "task",
    "task_of",
]
