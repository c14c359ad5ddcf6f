"""Backpressure (refuse new work before Redis fills up) and configuration from the environment."""

from __future__ import annotations

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from app.config import ConfigError, from_environment
from tests.conftest import AUTH

JOB = {"task": "tests.fixtures.add", "args": {"a": 1, "b": 2}}


def test_a_full_queue_answers_429_with_retry_after(app: Flask, client: FlaskClient, redis_conn: redis.Redis):
    app.config["QUEUE_MAX_LENGTH"] = 2
    assert [client.post("/api/jobs", json=JOB, headers=AUTH).status_code for _ in range(2)] == [202, 202]
    refused = client.post("/api/jobs", json=JOB, headers=AUTH)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "5"
    assert refused.get_json()["type"] == "urn:offload:problem:queue-full"
    assert "'default' holds 2 jobs (limit 2)" in refused.get_json()["detail"]
    assert client.post("/api/jobs", json={**JOB, "queue": "high"}, headers=AUTH).status_code == 202
    batch = client.post("/api/jobs/batch", json=[{**JOB, "queue": "high"}] * 2, headers=AUTH)
    assert batch.status_code == 429
    assert redis_conn.llen("rq:queue:high") == 1


def test_redis_memory_near_its_limit_answers_503(app: Flask, client: FlaskClient, redis_conn: redis.Redis):
    used = int(redis_conn.info("memory")["used_memory"])
    redis_conn.config_set("maxmemory", str(int(used * 1.05)))
    try:
        refused = client.post("/api/jobs", json=JOB, headers=AUTH)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "5"
        assert refused.get_json()["type"] == "urn:offload:problem:memory"
        app.config["REDIS_MEMORY_MAX_RATIO"] = 0
        assert client.post("/api/jobs", json=JOB, headers=AUTH).status_code == 202
    finally:
        redis_conn.config_set("maxmemory", "0")


def test_numeric_settings_from_the_environment_are_typed_and_checked():
    found = from_environment({"SSE_MAX_STREAMS": "5", "REDIS_MEMORY_MAX_RATIO": "0.5", "API_TOKENS": "a,b"})
    assert found == {"SSE_MAX_STREAMS": 5, "REDIS_MEMORY_MAX_RATIO": 0.5, "API_TOKENS": "a,b"}
    with pytest.raises(ConfigError, match="QUEUE_MAX_LENGTH='lots' is not a valid int"):
        from_environment({"QUEUE_MAX_LENGTH": "lots"})


def test_submissions_are_rate_limited_per_token(redis_url: str):
    from app import create_app

    app = create_app({"REDIS_URL": redis_url, "API_TOKENS": "token-one,token-two", "SUBMIT_RATE_LIMIT": "3/minute"})
    client = app.test_client()
    one, two = ({"Authorization": f"Bearer {token}"} for token in ("token-one", "token-two"))
    assert [client.post("/api/jobs", json=JOB, headers=one).status_code for _ in range(3)] == [202] * 3
    limited = client.post("/api/jobs", json=JOB, headers=one)
    assert limited.status_code == 429
    assert limited.mimetype == "application/problem+json"
    assert 0 < int(limited.headers["Retry-After"]) <= 61  # the rest of the minute window
    assert client.post("/api/jobs", json=JOB, headers=two).status_code == 202  # another token, its own budget
    assert client.get("/api/jobs", headers=one).status_code == 200  # reading is not limited
    with redis.Redis.from_url(redis_url) as connection:
        keys = [key.decode() for key in connection.keys("*ratelimit*")]
    assert keys and not any("token-one" in key for key in keys)  # tokens are hashed, never stored


def test_a_refused_submission_writes_nothing(app: Flask, client: FlaskClient, redis_conn: redis.Redis):
    app.config["SUBMIT_RATE_LIMIT"] = "1/minute"
    assert client.post("/api/jobs", json=JOB, headers=AUTH).status_code == 202
    before = sorted(redis_conn.keys("*"))
    refused = client.post("/api/jobs/batch", json=[JOB] * 3, headers=AUTH)
    assert refused.status_code == 429 and refused.get_json()["type"] == "urn:offload:problem:rate-limited"
    # Only the window's own counter moved: no job, queue entry, index entry or event.
    assert sorted(redis_conn.keys("*")) == before
    assert redis_conn.llen("rq:queue:default") == 1


def test_the_queue_cap_holds_under_concurrent_submissions(redis_conn: redis.Redis):
    """The cap is checked in the step that writes: racing submissions never pass it together."""
    import threading

    from jobs import enqueue

    cap, outcomes = 5, []
    start = threading.Barrier(20)

    def submit() -> None:
        call = enqueue.prepare("tests.fixtures.add", {"a": 1, "b": 2})
        start.wait()
        try:
            enqueue.write(redis_conn, [call], enqueue.Admission.of([call], queue_cap=cap))
            outcomes.append("written")
        except enqueue.RefusedError as refused:
            assert refused.reason == "queue-full"
            outcomes.append("refused")

    threads = [threading.Thread(target=submit) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 15 + ["written"] * 5
    assert redis_conn.llen("rq:queue:default") == cap


def test_a_batch_counts_once_against_the_rate_limit(app: Flask, client: FlaskClient):
    app.config["SUBMIT_RATE_LIMIT"] = "2/minute"
    assert client.post("/api/jobs/batch", json=[JOB] * 10, headers=AUTH).status_code == 202
    assert client.post("/api/jobs", json=JOB, headers=AUTH).status_code == 202
    limited = client.post("/api/jobs", json=JOB, headers=AUTH)
    assert limited.status_code == 429
    assert "2 per 1 minute" in limited.get_json()["detail"]
