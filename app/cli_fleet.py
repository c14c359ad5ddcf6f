"""`flask offload queues|pause|resume|empty|workers|stop-worker|cron|run-cron`: the fleet from a terminal.

The same services as the queues, workers and cron pages and their API; every change is audited.
"""

from __future__ import annotations

import json
from typing import Any

import click
from flask.cli import AppGroup

from app import auditing
from app.fleet_documents import cron_document, queue_document, worker_document
from app.redis_client import get_redis
from jobs.cron import entries
from jobs.fleet import queue_control, queue_overview, worker_overview
from jobs.fleet.queue_control import UnknownQueueError
from jobs.fleet.worker_overview import UnknownWorkerError
from jobs.registry import UnknownTaskError

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def _fail(error: Exception) -> None:
    raise click.ClickException(str(error))


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def add_fleet_commands(group: AppGroup) -> None:
    @group.command("queues")
    @json_option
    def queues_command(as_json: bool) -> None:
        """Every queue: counts, latency, throughput, workers, paused or not."""
        views = queue_overview.overview(get_redis())
        if as_json:
            return _echo_json([queue_document(view) for view in views])
        for view in views:
            latency = "-" if view.latency_seconds is None else f"{view.latency_seconds:.0f}s"
            flag = " PAUSED" if view.paused else ""
            click.echo(
                f"{view.name}{flag}: queued {view.counts['queued']}, started {view.counts['started']}, "
                f"failed {view.counts['failed']}, oldest waits {latency}, {view.per_minute}/min, "
                f"workers {len(view.workers)}"
            )
        return None

    @group.command("pause")
    @click.argument("name")
    def pause_command(name: str) -> None:
        """Pause a queue: its jobs stay queued and no worker starts them."""
        try:
            changed = queue_control.pause(get_redis(), name)
        except UnknownQueueError as error:
            _fail(error)
        auditing.record("pause queue", filters={"queue": name}, done=int(changed))
        click.echo(f"queue {name} paused" if changed else f"queue {name} was already paused")

    @group.command("resume")
    @click.argument("name")
    def resume_command(name: str) -> None:
        """Resume a paused queue."""
        try:
            changed = queue_control.resume(get_redis(), name)
        except UnknownQueueError as error:
            _fail(error)
        auditing.record("resume queue", filters={"queue": name}, done=int(changed))
        click.echo(f"queue {name} resumed" if changed else f"queue {name} was not paused")

    @group.command("empty")
    @click.argument("name")
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    def empty_command(name: str, yes: bool) -> None:
        """Delete the jobs waiting in a queue."""
        redis = get_redis()
        try:
            waiting = queue_control.waiting(redis, name)
        except UnknownQueueError as error:
            _fail(error)
        if not yes:
            click.confirm(f"Delete the {waiting} job(s) waiting in queue {name}?", abort=True)
        outcome = queue_control.empty(redis, name)
        auditing.record(
            "empty queue", filters={"queue": name}, done=outcome.done, skipped=sum(outcome.skipped.values())
        )
        more = "; more are left: run it again" if outcome.more else ""
        click.echo(f"deleted {outcome.done} job(s) from {name}{more}")

    @group.command("workers")
    @json_option
    def workers_command(as_json: bool) -> None:
        """Every registered worker: host, pid, state, current job, memory, counts; ghosts flagged."""
        found = worker_overview.workers(get_redis())
        if as_json:
            return _echo_json([worker_document(worker) for worker in found])
        for worker in found:
            rss = "-" if worker.rss_bytes is None else f"{worker.rss_bytes / 2**20:.0f} MiB"
            ghost = " GHOST" if worker.ghost else ""
            click.echo(
                f"{worker.name}{ghost}: {worker.state} on {worker.hostname} pid {worker.pid}, "
                f"queues {','.join(worker.queues)}, job {worker.current_job or '-'}, rss {rss}, "
                f"done {worker.successful_jobs}, failed {worker.failed_jobs}"
            )
        return None

    @group.command("stop-worker")
    @click.argument("name")
    def stop_worker_command(name: str) -> None:
        """Stop a worker after its current job."""
        try:
            worker_overview.stop_after_job(get_redis(), name)
        except UnknownWorkerError as error:
            _fail(error)
        auditing.record("stop worker", filters={"worker": name})
        click.echo(f"worker {name} stops after its current job")

    @group.command("cron")
    @json_option
    def cron_command(as_json: bool) -> None:
        """Every cron entry: schedule, next run, last runs; a missed run flagged."""
        found = entries.entries(get_redis())
        if as_json:
            return _echo_json([cron_document(entry) for entry in found])
        for entry in found:
            last = entry.runs[0].status if entry.runs else "never ran"
            missed = f" MISSED: {entry.missed}" if entry.missed else ""
            upcoming = f"{entry.next_run:%Y-%m-%d %H:%M:%S}" if entry.next_run else "-"
            click.echo(f"{entry.name} ({entry.schedule}): next {upcoming}, last {last}{missed}")
        return None

    @group.command("run-cron")
    @click.argument("name")
    def run_cron_command(name: str) -> None:
        """Run a cron entry now, besides its schedule."""
        try:
            job = entries.run_now(get_redis(), name)
        except UnknownTaskError as error:
            _fail(error)
        auditing.record("run cron entry now", job=job.id, filters={"entry": name})
        click.echo(job.id)
