"""`flask offload alerts|alert-rules|test-alert|evaluate-alerts`: the alerts from a terminal."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from app import auditing
from app.redis_client import get_redis
from jobs.alerts import evaluation, notifications, prometheus_rules
from jobs.settings import get_settings


def add_alert_commands(group: AppGroup) -> None:
    @group.command("alerts")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
    def alerts_command(as_json: bool) -> None:
        """Every alert with its state, as the cron process last evaluated it."""
        state = sorted(evaluation.read_state(get_redis()).values(), key=lambda alert: alert.alert)
        if as_json:
            click.echo(json.dumps([alert.as_dict() for alert in state], indent=2))
            return
        if not state:
            click.echo("not evaluated yet: the cron process evaluates the rules every ALERT_CHECK_SECONDS")
        for alert in state:
            click.echo(
                f"{alert.alert}: {alert.state.upper() if alert.state == 'firing' else alert.state} ({alert.summary})"
            )

    @group.command("alert-rules")
    def alert_rules_command() -> None:
        """Print ALERT_RULES as a Prometheus rules file (for Alertmanager users)."""
        click.echo(prometheus_rules.render(get_settings().ALERT_RULES, get_settings().ALERT_CHECK_SECONDS), nl=False)

    @group.command("test-alert")
    def test_alert_command() -> None:
        """Send a test notification through every configured channel."""
        jobs = notifications.send_test(get_redis())
        auditing.record("test notification", done=len(jobs))
        if not jobs:
            raise click.ClickException("no channel is configured: set ALERT_WEBHOOK_URL or ALERT_EMAIL_TO")
        for job in jobs:
            click.echo(job.id)

    @group.command("evaluate-alerts")
    def evaluate_command() -> None:
        """Evaluate the rules once now (the cron process does it every ALERT_CHECK_SECONDS)."""
        for alert in evaluation.evaluate(get_redis()):
            click.echo(f"told: {alert.alert} {alert.state}")
