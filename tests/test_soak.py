"""The soak at CI size: jobs submitted over HTTP while workers are SIGKILLed and
SIGTERMed and Redis restarts; every accepted job finishes (a killed worker's job runs
again), none is lost or fails, no effect doubles.
The full run is `scripts/soak.py` (figures in docs/performance.md)."""

from __future__ import annotations

import pytest

from scripts.soak import run

pytestmark = pytest.mark.slow


def test_nothing_accepted_is_lost_or_duplicated_under_chaos():
    figures = run(jobs=200, concurrency=16, kills=10, stops=2, workers=4, settle=200)
    print(figures)
    assert figures["accepted"] == 200
    assert figures["worker_kills"] == 10 and figures["worker_stops"] == 2 and figures["redis_restarts"] == 1
    assert figures["lost"] == 0, figures["lost_ids"]
    assert figures["duplicated"] == 0
    assert figures["effects_missing"] == 0
    assert figures["failed_by_type"] == {}  # the task never raises: any failure is the queue's
    assert figures["finished"] == 200
    assert figures["recovered"] >= 1  # ten kills of four busy workers cut off running jobs
    assert figures["recoveries"] >= figures["recovered"]
