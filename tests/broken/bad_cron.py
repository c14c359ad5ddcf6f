"""A task module with a bad cron expression: loading it must fail, naming the task."""

from jobs import task


@task(cron="every tuesday")
def weekly() -> None:
    """Never registered."""
