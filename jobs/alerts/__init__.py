"""Alerts: rules over the queues, workers, tasks, cron and Redis (``rules``), evaluated by the cron
process (``evaluation``), told through Offload's own webhook and mail tasks (``notifications``),
and offered to Prometheus users as a rules file (``prometheus_rules``)."""
