"""`flask jobs cancel|retry|delete`: one job by its id, or every job a filter or a failure group finds.

Each action is recorded in the audit log, as the API's and the pages' are.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click
from flask.cli import AppGroup, with_appcontext

from app import auditing
from app.redis_client import get_redis
from jobs import bulk, lifecycle
from jobs.records.job_search import Query
from jobs.settings import get_settings
from jobs.vocabulary import STATUSES

_DONE = {"cancel": "canceled or stopping", "retry": "queued again", "delete": "deleted"}


def _filter_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("--status", type=click.Choice(STATUSES), help="Only jobs in this status."),
            click.option("--task", "task_name", help="Only jobs of this task."),
            click.option("--queue", type=click.Choice(get_settings().QUEUES), help="Only jobs of this queue."),
            click.option("--match", "text", help="Only jobs with this text in their id, task, arguments or error."),
            click.option("--since", type=click.DateTime(), help="Created at or after (UTC)."),
            click.option("--until", type=click.DateTime(), help="Created at or before (UTC)."),
            click.option("--group", help="Every job of this failure group (GET /api/failures)."),
        ]
    ):
        command = option(command)
    return command


def _action(name: str, help_text: str) -> click.Command:
    @click.command(name, help=help_text)
    @with_appcontext
    @click.argument("job_id", required=False)
    @_filter_options
    def command(job_id: str | None, group: str | None, **filters: Any) -> None:
        given = {key: value for key, value in filters.items() if value is not None}
        if job_id is not None and (given or group):
            raise click.UsageError("give a job id or filters, not both")
        if job_id is not None:
            _one(name, job_id)
        elif given or group:
            _many(name, given, group)
        else:
            raise click.UsageError("give a job id, or at least one filter (--status, --task, --match, ...) or --group")

    return command


def _one(action: str, job_id: str) -> None:
    redis = get_redis()
    try:
        job = lifecycle.find(redis, job_id)
        outcome = bulk.ACTIONS[action](redis, job)
    except (lifecycle.UnknownJobError, lifecycle.JobStateError) as error:
        raise click.ClickException(str(error)) from None
    auditing.record(action, job=job_id, done=1)
    click.echo(f"{job_id}: {outcome if isinstance(outcome, str) else _DONE[action]}")


def _many(action: str, given: dict[str, Any], group: str | None) -> None:
    times = {key: _utc(given.get(key)) for key in ("since", "until")}
    query = Query(given.get("text") or "", given.get("status") or "", given.get("task_name") or "",
                  given.get("queue") or "", times["since"], times["until"])  # fmt: skip
    outcome = bulk.act(get_redis(), action, None if group else query, group)
    described = {key: str(value) for key, value in given.items()} | ({"group": group} if group else {})
    skipped = sum(outcome.skipped.values())
    auditing.record(action, filters=described, done=outcome.done, skipped=skipped)
    click.echo(f"{action}: {outcome.matched} matched, {outcome.done} done, {skipped} skipped")
    for reason, count in outcome.skipped.items():
        click.echo(f"  skipped {count}: {reason}")
    if outcome.more:
        click.echo(f"  more remain (BULK_MAX_JOBS is {get_settings().BULK_MAX_JOBS}): run it again")


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(tzinfo=UTC)


def add_action_commands(group: AppGroup) -> None:
    group.add_command(_action("cancel", "Cancel a waiting job or stop a running one; or every job a filter finds."))
    group.add_command(_action("retry", "Run a failed, stopped or canceled job again; or every job a filter finds."))
    group.add_command(_action("delete", "Delete an ended job; or every ended job a filter finds."))
