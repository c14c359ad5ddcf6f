"""Offload's own records in Redis beside RQ's: events, logs, the job index, artifacts, uploads, metrics."""
