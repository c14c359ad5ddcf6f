"""``flask tasks`` and ``flask jobs ...``: the registry and the jobs from a terminal.

Human-readable by default, JSON with ``--json``; bad input prints what is wrong and
exits non-zero. Run as ``flask --app app jobs list`` (``make run`` is not needed, only
REDIS_URL).
"""

from __future__ import annotations

import json
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from redis.exceptions import RedisError

from app import submitting
from app.api.tasks import task_info
from app.cli_actions import add_action_commands
from app.cli_alerts import add_alert_commands
from app.cli_fleet import add_fleet_commands
from app.documents import job_document
from app.flask_settings import api_tokens
from app.redis_client import get_redis
from jobs import finding, lifecycle, readiness
from jobs.connection import redacted
from jobs.job import TaskJob
from jobs.records.job_search import Query
from jobs.registry import UnknownTaskError, registry
from jobs.settings import get_settings
from jobs.submission import InvalidCall, RefusedError
from jobs.vocabulary import STATUSES

jobs_cli = AppGroup("jobs", help="Enqueue, inspect, cancel and retry jobs.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def _echo(value: Any, as_json: bool, text: str) -> None:
    click.echo(json.dumps(value, indent=2, default=str) if as_json else text)


def parse_assignment(assignment: str) -> tuple[str, Any]:
    """``key=value``; the value is read as JSON when it parses (numbers, true, lists), else as text."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key:
        raise click.UsageError(f"arguments are key=value pairs; got {assignment!r}")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def _fetch(job_id: str) -> TaskJob:
    try:
        return lifecycle.find(get_redis(), job_id)
    except lifecycle.UnknownJobError as error:
        raise click.ClickException(str(error)) from None


def _field(loc: list[Any]) -> str:
    """A field as the command line names it: ``seconds`` for the argument, ``--queue`` for an option."""
    if loc[:1] == ["args"]:
        return ".".join(map(str, loc[1:])) or "arguments"
    return f"--{loc[0]}" if loc else "arguments"


def _summary(document: dict[str, Any]) -> str:
    percent = document["progress"]["percent"]
    progress = f" {percent:.0f}%" if percent is not None else ""
    return f"{document['id']}  {document['status']:<9}{progress}  {document['task']}  ({document['queue']})"


def _details(document: dict[str, Any]) -> str:
    lines = [_summary(document), f"  args:     {json.dumps(document['args'])}"]
    for field in ("created_at", "started_at", "ended_at"):
        if document[field]:
            lines.append(f"  {field + ':':<10}{document[field]}")
    if document["progress"]["message"]:
        lines.append(f"  progress: {document['progress']['message']}")
    if document["result"] is not None:
        lines.append(f"  result:   {json.dumps(document['result'])}")
    if document["error"]:
        lines.append(f"  error:    {document['error']['type']}: {document['error']['message']}")
    return "\n".join(lines)


@jobs_cli.command("enqueue")
@click.argument("task")
@click.argument("assignments", nargs=-1)
@click.option("--queue", type=click.Choice(get_settings().QUEUES), help="Override the task's queue.")
@click.option("--delay", type=click.FloatRange(min=0), help="Run after this many seconds.")
@json_option
def enqueue_command(
    task: str, assignments: tuple[str, ...], queue: str | None, delay: float | None, as_json: bool
) -> None:
    """Enqueue TASK with key=value arguments, e.g. `flask jobs enqueue demo.sleep seconds=3`."""
    args = dict(parse_assignment(item) for item in assignments)
    body = {"task": task, "args": args, "queue": queue, "delay": delay}
    try:
        [job] = submitting.submit([submitting.call_from(body)], limited=False)
    except UnknownTaskError:
        raise click.UsageError(f"no task named {task!r}; `flask tasks` lists them") from None
    except InvalidCall as error:
        problems = "\n".join(f"  {_field(e['loc'])}: {e['msg']}" for e in error.errors)
        raise click.UsageError(f"invalid arguments for {task}:\n{problems}") from None
    except RefusedError as refused:
        raise click.ClickException(f"refused: {refused.detail}") from None
    document = job_document(job)
    _echo(document, as_json, _summary(document))


@jobs_cli.command("show")
@click.argument("job_id")
@json_option
def show_command(job_id: str, as_json: bool) -> None:
    """Show one job."""
    document = job_document(_fetch(job_id))
    _echo(document, as_json, _details(document))


@jobs_cli.command("list")
@click.option(
    "--status",
    type=click.Choice(STATUSES),
)
@click.option("--task", "task_filter", help="Only jobs of this task.")
@click.option("--queue", type=click.Choice(get_settings().QUEUES))
@click.option("--match", "text", default="", help="Only jobs with this text in their id, task, arguments or error.")
@click.option("--limit", type=click.IntRange(1, 200), default=20, show_default=True)
@json_option
def list_command(
    status: str | None, task_filter: str | None, queue: str | None, text: str, limit: int, as_json: bool
) -> None:
    """List jobs, newest first."""
    query = Query(text=text, status=status or "", task=task_filter or "", queue=queue or "")
    jobs, found = finding.find(get_redis(), query, limit)
    documents = [job_document(job) for job in jobs]
    more = f"\n({found.matches} matching; showing {len(documents)})" if found.matches > len(documents) else ""
    _echo(documents, as_json, ("\n".join(_summary(d) for d in documents) or "no jobs") + more)


@click.command("tasks")
@json_option
def tasks_command(as_json: bool) -> None:
    """List the registered tasks."""
    infos = [task_info(task) for task in registry.all()]
    text = "\n".join(
        f"{info['name']:<28} {info['queue']:<8} {info['schedule'] or '':<16} {info['description']}" for info in infos
    )
    _echo(infos, as_json, text)


offload_cli = AppGroup("offload", help="Operate Offload.")


@offload_cli.command("doctor")
@json_option
def doctor_command(as_json: bool) -> None:
    """Print the configuration, Redis, queues and workers, and the problems found; exit 1 if any."""
    config = current_app.config
    report: dict[str, Any] = {
        "config": {
            "APP_ENV": config["APP_ENV"],
            "REDIS_URL": redacted(config["REDIS_URL"]),
            "API_TOKENS": f"{len(api_tokens())} configured",
            "SECRET_KEY": "set" if config.get("SECRET_KEY") else "missing",
            "tasks": len(registry.all()),
        },
        "problems": [],
        "advice": [],
    }
    try:
        info = get_redis().info()
        report["redis"] = {
            "version": info.get("valkey_version") or info.get("redis_version"),
            "used_memory": info.get("used_memory_human"),
            "maxmemory_policy": info.get("maxmemory_policy"),
        }
        if info.get("maxmemory_policy") not in (None, "noeviction"):
            report["problems"].append(
                f"Redis evicts keys under memory pressure ({info['maxmemory_policy']}): jobs can vanish; use noeviction"
            )
        node_bytes = _stream_node_max_bytes()
        if node_bytes > 1024:
            report["advice"].append(
                f"stream-node-max-bytes is {node_bytes}: set 512 and each job's event and result streams take"
                " about a quarter of the memory (docs/operations.md, Redis)"
            )
        body = readiness.check(get_redis())
        report["queues"] = body.get("queues", {})
        report["workers"] = body.get("workers", 0)
        report["problems"].extend(body["problems"])
    except RedisError as error:
        report["problems"].append(f"Redis unreachable: {error}")
    if not config.get("SECRET_KEY"):
        report["problems"].append("SECRET_KEY is not set")
    if not api_tokens():
        report["problems"].append("API_TOKENS is empty: nobody can use the API")
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        for section in ("config", "redis", "queues"):
            click.echo(f"{section}:")
            for key, value in report.get(section, {}).items():
                click.echo(f"  {key}: {value}")
        click.echo(f"workers: {report.get('workers', 0)}")
        click.echo("problems:" if report["problems"] else "no problems found")
        for problem in report["problems"]:
            click.echo(f"  - {problem}")
        for advice in report["advice"]:
            click.echo(f"advice: {advice}")
    if report["problems"]:
        raise SystemExit(1)


def _stream_node_max_bytes() -> int:
    """The server's stream node size; 0 when it may not be read (managed services refuse CONFIG)."""
    try:
        found = get_redis().config_get("stream-node-max-bytes")
        return int(found.get("stream-node-max-bytes") or 0)
    except (RedisError, ValueError):
        return 0


def register_commands(app: Flask) -> None:
    add_action_commands(jobs_cli)
    add_fleet_commands(offload_cli)
    add_alert_commands(offload_cli)
    app.cli.add_command(jobs_cli)
    app.cli.add_command(tasks_command)
    app.cli.add_command(offload_cli)
