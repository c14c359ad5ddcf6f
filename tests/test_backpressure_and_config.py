"""Backpressure (refuse new work before Redis fills up) and configuration from the environment."""

from __future__ import annotations

import base64
import re

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from jobs import submission
from jobs.settings import SettingsError, load
from tests.conftest import AUTH

JOB = {"task": "tests.fixtures.add", "args": {"a": 1, "b": 2}}


def test_a_full_queue_answers_429_with_retry_after(app: Flask, client: FlaskClient, redis_conn: redis.Redis):
    app.config["QUEUE_MAX_LENGTH"] = 2
    assert [client.post("/api/jobs", json=JOB, headers=AUTH).status_code for _ in range(2)] == [202, 202]
    refused = client.post("/api/jobs", json=JOB, headers=AUTH)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "5"
    assert refused.get_json()["type"] == "urn:offload:problem:queue-full"
    assert "'default' holds 2 jobs, waiting and scheduled (limit 2)" in refused.get_json()["detail"]
    assert client.post("/api/jobs", json={**JOB, "queue": "high"}, headers=AUTH).status_code == 202
    batch = client.post("/api/jobs/batch", json=[{**JOB, "queue": "high"}] * 2, headers=AUTH)
    assert batch.status_code == 429
    assert redis_conn.llen("rq:queue:high") == 1


def test_scheduled_jobs_count_against_the_queue_cap(app: Flask, client: FlaskClient, redis_conn: redis.Redis):
    app.config["QUEUE_MAX_LENGTH"] = 2
    later = {**JOB, "delay": 3600}
    assert [client.post("/api/jobs", json=later, headers=AUTH).status_code for _ in range(2)] == [202, 202]
    assert redis_conn.zcard("rq:scheduled:default") == 2 and redis_conn.llen("rq:queue:default") == 0
    refused = client.post("/api/jobs", json=JOB, headers=AUTH)
    assert refused.status_code == 429 and refused.get_json()["type"] == "urn:offload:problem:queue-full"


def test_a_job_may_be_scheduled_at_most_a_year_ahead(client: FlaskClient, redis_conn: redis.Redis):
    far = client.post("/api/jobs", json={**JOB, "at": "9999-01-01T00:00:00+00:00"}, headers=AUTH)
    assert far.status_code == 422
    assert far.get_json()["errors"][0]["loc"] == ["at"]
    assert "at most a year ahead" in far.get_json()["detail"]
    assert client.post("/api/jobs", json={**JOB, "delay": 366 * 24 * 3600}, headers=AUTH).status_code == 422
    assert client.post("/api/jobs", json={**JOB, "delay": 364 * 24 * 3600}, headers=AUTH).status_code == 202
    assert redis_conn.zcard("rq:scheduled:default") == 1


def test_a_job_waits_for_at_most_twenty_parents_checked_in_one_round_trip(client: FlaskClient):
    many = client.post("/api/jobs", json={**JOB, "depends_on": [f"missing-{n}" for n in range(21)]}, headers=AUTH)
    assert many.status_code == 422 and many.get_json()["errors"][0]["loc"] == ["depends_on"]
    unknown = client.post("/api/jobs", json={**JOB, "depends_on": [f"missing-{n}" for n in range(20)]}, headers=AUTH)
    assert unknown.status_code == 422
    assert len(unknown.get_json()["errors"]) == 20


def _upload(client: FlaskClient, size: int) -> object:
    data = base64.b64encode(b"x" * size).decode()
    return client.post("/api/uploads", json={"data": data, "filename": "f.bin"}, headers=AUTH)


def test_uploads_count_against_redis_memory(app: Flask, client: FlaskClient, redis_conn: redis.Redis):
    """A 1 MiB upload at a time filled a maxmemory Redis; then every POST answered 503 for a day."""
    used = int(redis_conn.info("memory")["used_memory"])
    redis_conn.config_set("maxmemory", str(int(used * 1.05)))
    try:
        refused = _upload(client, 1024)
        assert refused.status_code == 503 and refused.get_json()["type"] == "urn:offload:problem:memory"
        assert "new uploads are refused" in refused.get_json()["detail"]
    finally:
        redis_conn.config_set("maxmemory", "0")


def test_a_write_redis_refuses_at_its_memory_limit_is_a_503_not_a_500(
    app: Flask, client: FlaskClient, redis_conn: redis.Redis
):
    app.config["REDIS_MEMORY_MAX_RATIO"] = 0  # the headroom check off: Redis itself refuses
    used = int(redis_conn.info("memory")["used_memory"])
    redis_conn.config_set("maxmemory-policy", "noeviction")
    redis_conn.config_set("maxmemory", str(used + 64 * 1024))
    try:
        answers = {_upload(client, 256 * 1024).status_code for _ in range(3)}
        assert answers == {503}
    finally:
        redis_conn.config_set("maxmemory", "0")


def test_uploads_have_a_quota_per_credential_and_can_be_deleted(app: Flask, client: FlaskClient):
    app.config["UPLOAD_QUOTA_BYTES"] = 3000
    first = _upload(client, 2000)
    assert first.status_code == 201
    over = _upload(client, 2000)
    assert over.status_code == 429 and over.get_json()["type"] == "urn:offload:problem:upload-quota"
    assert int(over.headers["Retry-After"]) > 0
    upload_id = first.get_json()["id"]
    assert client.delete(f"/api/uploads/{upload_id}", headers=AUTH).status_code == 204
    assert client.delete(f"/api/uploads/{upload_id}", headers=AUTH).status_code == 404
    assert _upload(client, 2000).status_code == 201  # the deleted bytes came back to the quota


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


def test_settings_from_the_environment_are_typed_and_checked(monkeypatch: pytest.MonkeyPatch):
    for name, value in {"SSE_MAX_STREAMS": "5", "REDIS_MEMORY_MAX_RATIO": "0.5", "API_TOKENS": "a, b"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("QUEUES", "urgent, default")
    monkeypatch.setenv("DASHBOARD_ACTIONS", "on")
    found = load()
    assert (found.SSE_MAX_STREAMS, found.REDIS_MEMORY_MAX_RATIO, found.api_tokens) == (5, 0.5, ["a", "b"])
    assert (found.QUEUES, found.DASHBOARD_ACTIONS) == (("urgent", "default"), True)
    for name, value, message in [
        ("QUEUE_MAX_LENGTH", "lots", "QUEUE_MAX_LENGTH='lots': Input should be a valid integer"),
        ("OFFLOAD_SHUTDOWN_GRACE", "-1", "OFFLOAD_SHUTDOWN_GRACE='-1': Input should be greater than or equal to 0"),
        ("DASHBOARD_ACTIONS", "maybe", "DASHBOARD_ACTIONS='maybe': Input should be a valid boolean"),
        ("QUEUES", "high,high", "QUEUES='high,high': a queue is named twice"),
        ("QUEUES", "a b", "QUEUES='a b': queue names are 1 to 64 letters"),
    ]:
        with monkeypatch.context() as patch:
            patch.setenv(name, value)
            with pytest.raises(SettingsError, match=f"^{re.escape(message)}"):
                load()


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


def test_by_default_a_busy_client_is_never_throttled_and_the_queue_cap_is_the_backpressure(
    app: Flask, client: FlaskClient, redis_conn: redis.Redis
):
    """The old default (50/second;1000/minute) refused 150 of a harness's 200 quick posts."""
    assert app.config["SUBMIT_RATE_LIMIT"] == "off"
    statuses = [client.post("/api/jobs", json=JOB, headers=AUTH).status_code for _ in range(200)]
    assert statuses == [202] * 200
    assert redis_conn.keys("*ratelimit:submit*") == []  # nothing counted
    app.config["QUEUE_MAX_LENGTH"] = 200
    refused = client.post("/api/jobs", json=JOB, headers=AUTH)
    assert refused.status_code == 429 and refused.get_json()["type"] == "urn:offload:problem:queue-full"


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

    cap, outcomes = 5, []
    start = threading.Barrier(20)

    def submit() -> None:
        call = submission.prepare("tests.fixtures.add", {"a": 1, "b": 2})
        start.wait()
        try:
            submission.write(redis_conn, [call], submission.Admission.of([call], queue_cap=cap))
            outcomes.append("written")
        except submission.RefusedError as refused:
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
