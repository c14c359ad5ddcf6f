"""Trends over time: per-task and per-queue series kept in Redis (``series``), for the pages, API and alerts."""
