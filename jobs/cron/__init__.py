"""Cron: the table RQ's scheduler reads (``table``) and the scheduler that outlives Redis outages."""
