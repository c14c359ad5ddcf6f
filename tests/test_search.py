"""Finding jobs: text over id, task, arguments and error, with status, task, queue and time filters."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis
from flask.testing import FlaskClient

from jobs.records import job_search
from tests.conftest import AUTH


def enqueue(client: FlaskClient, task: str, **args: object) -> str:
    answer = client.post("/api/jobs", json={"task": task, "args": args}, headers=AUTH)
    assert answer.status_code == 202, answer.get_data(as_text=True)
    return answer.get_json()["id"]


def listing(client: FlaskClient, **params: object) -> dict:
    answer = client.get("/api/jobs", query_string=params, headers=AUTH)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()


def ids(page: dict) -> list[str]:
    return [job["id"] for job in page["jobs"]]


@pytest.fixture
def mixed(client: FlaskClient, run_jobs: Callable[..., bool]) -> dict[str, str]:
    """Five jobs: two that fail with different errors, two that finish, one still queued."""
    made = {
        "ada": enqueue(client, "tests.fixtures.account_report", account=7, note="Invoice for Ada Lovelace"),
        "grace": enqueue(client, "tests.fixtures.account_report", account=8, note="invoice for Grace"),
        "timeout": enqueue(client, "tests.fixtures.fail_with", message="upstream TIMEOUT after 30 s"),
        "refused": enqueue(client, "demo.fail", message="card refused"),
    }
    run_jobs()
    made["waiting"] = enqueue(client, "tests.fixtures.add", a=1, b=2)
    return made


def test_text_finds_arguments_task_id_and_error_case_insensitively(client: FlaskClient, mixed: dict[str, str]):
    assert set(ids(listing(client, q="INVOICE"))) == {mixed["ada"], mixed["grace"]}
    assert ids(listing(client, q="lovelace")) == [mixed["ada"]]
    assert ids(listing(client, q="fixtures.add")) == [mixed["waiting"]]
    assert ids(listing(client, q=mixed["refused"][:12])) == [mixed["refused"]]
    assert ids(listing(client, q="timeout after")) == [mixed["timeout"]]  # the error's message
    assert set(ids(listing(client, q="runtimeerror"))) == {mixed["timeout"], mixed["refused"]}  # the error's type


def test_filters_combine_and_counts_follow_them(client: FlaskClient, mixed: dict[str, str]):
    failed = listing(client, status="failed")
    assert set(ids(failed)) == {mixed["timeout"], mixed["refused"]}
    assert failed["matches"] == 2
    assert failed["counts"] == {"failed": 2, "finished": 2, "queued": 1}  # the status filter aside
    narrowed = listing(client, q="invoice", status="finished", task="tests.fixtures.account_report")
    assert narrowed["matches"] == 2 and narrowed["counts"] == {"finished": 2}
    assert listing(client, q="invoice", status="failed") == {
        "jobs": [],
        "next_cursor": None,
        "matches": 0,
        "counts": {"finished": 2},
    }
    assert ids(listing(client, queue="high")) == []


def test_results_are_newest_first_and_page_with_the_count_of_all(client: FlaskClient, mixed: dict[str, str]):
    first = listing(client, limit=2)
    assert first["matches"] == 5 and len(first["jobs"]) == 2 and first["next_cursor"]
    assert first["counts"] == {"failed": 2, "finished": 2, "queued": 1}  # from RQ's registries, no filter
    assert ids(first)[0] == mixed["waiting"]  # the last enqueued
    second = listing(client, limit=2, cursor=first["next_cursor"])
    third = listing(client, limit=2, cursor=second["next_cursor"])
    everything = ids(first) + ids(second) + ids(third)
    searched = listing(client, q="fixtures", limit=1)  # the search's own paging: 4 of the 5 match
    pages = [searched]
    while pages[-1]["next_cursor"]:
        pages.append(listing(client, q="fixtures", limit=1, cursor=pages[-1]["next_cursor"]))
    assert [page["matches"] for page in pages] == [4, 4, 4, 4]
    assert sum((ids(page) for page in pages), []) == [mixed["waiting"], mixed["timeout"], mixed["grace"], mixed["ada"]]
    assert len(everything) == len(set(everything)) == 5 and third["next_cursor"] is None
    created = [job["created_at"] for job in first["jobs"] + second["jobs"] + third["jobs"]]
    assert created == sorted(created, reverse=True)


def test_a_time_range_keeps_the_jobs_created_within_it(client: FlaskClient, mixed: dict[str, str]):
    waiting = client.get(f"/api/jobs/{mixed['waiting']}", headers=AUTH).get_json()
    moment = datetime.fromisoformat(waiting["created_at"].replace("Z", "+00:00"))
    assert ids(listing(client, since=moment.isoformat())) == [mixed["waiting"]]
    assert mixed["waiting"] not in ids(listing(client, until=(moment - timedelta(microseconds=1)).isoformat()))
    assert ids(listing(client, since=moment.isoformat(), until=moment.isoformat())) == [mixed["waiting"]]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert listing(client, since=later)["matches"] == 0


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"q": "x" * 201}, ["query", "q"]),
        ({"since": "2026-01-01T10:00:00"}, ["query", "since"]),  # no offset: which time zone?
        ({"until": "yesterday"}, ["query", "until"]),
        ({"status": "lost"}, ["query", "status"]),
    ],
)
def test_bad_filters_are_a_422_naming_the_parameter(client: FlaskClient, params: dict, loc: list[str]):
    answer = client.get("/api/jobs", query_string=params, headers=AUTH)
    assert answer.status_code == 422 and answer.mimetype == "application/problem+json"
    assert [error["loc"] for error in answer.get_json()["errors"]] == [loc]


def test_a_job_gone_from_redis_leaves_the_search_records_too(
    client: FlaskClient, redis_conn: redis.Redis, mixed: dict[str, str]
):
    redis_conn.delete(f"rq:job:{mixed['ada']}")  # as an expired job's hash goes
    assert mixed["ada"] not in ids(listing(client, q="invoice"))
    assert redis_conn.hget(job_search.TEXT_KEY, mixed["ada"]) is None
    assert redis_conn.hget(job_search.TEXT_KEY, mixed["grace"]) is not None


def test_a_deleted_job_leaves_no_search_record(client: FlaskClient, redis_conn: redis.Redis, mixed: dict[str, str]):
    assert client.delete(f"/api/jobs/{mixed['refused']}", headers=AUTH).status_code == 204
    assert redis_conn.hget(job_search.TEXT_KEY, mixed["refused"]) is None
    assert redis_conn.hget(job_search.ERRORS_KEY, mixed["refused"]) is None


def test_the_history_page_searches_and_its_counts_follow_the_search(client: FlaskClient, mixed: dict[str, str]):
    from tests.test_pages import log_in

    assert log_in(client) == (303, "/")
    page = client.get("/jobs", query_string={"q": "invoice"}).get_data(as_text=True)
    assert "2 matching jobs" in page
    assert mixed["ada"] in page and mixed["grace"] in page and mixed["refused"] not in page
    assert "finished <strong>2</strong>" in page and "failed <strong>0</strong>" in page
    assert "q=invoice" in page  # each count's link keeps the search
    since = client.get("/jobs", query_string={"since": "2999-01-01T00:00:00"}).get_data(as_text=True)
    assert "0 matching jobs" in since  # the form's time, read as UTC
    bad = client.get("/jobs", query_string={"until": "soon"})
    assert bad.status_code == 400 and "until" in bad.get_data(as_text=True)


def test_the_cli_lists_what_a_search_finds(app, mixed: dict[str, str]):
    runner = app.test_cli_runner()
    found = runner.invoke(args=["jobs", "list", "--match", "LOVELACE"])
    assert found.exit_code == 0 and mixed["ada"] in found.output and mixed["grace"] not in found.output
    paged = runner.invoke(args=["jobs", "list", "--limit", "2"])
    assert "(5 matching; showing 2)" in paged.output


def test_pruning_walks_the_whole_index_a_batch_at_a_time(
    client: FlaskClient, redis_conn: redis.Redis, mixed: dict[str, str]
):
    from jobs.records import job_index

    for name in ("ada", "timeout", "waiting"):
        redis_conn.delete(f"rq:job:{mixed[name]}")  # as expired jobs' hashes go
    removed = [job_index.prune(redis_conn, batch=2) for _ in range(3)]
    assert sum(removed) == 3 and redis_conn.get(job_index.PRUNE_CURSOR_KEY) is None  # walked to the end
    left = {member.decode().split(":", 1)[1] for member in redis_conn.zrange(job_index.INDEX_KEY, 0, -1)}
    assert left == {mixed["grace"], mixed["refused"]}
    assert set(redis_conn.hkeys(job_search.TEXT_KEY)) == {mixed["grace"].encode(), mixed["refused"].encode()}
    assert job_index.prune(redis_conn, batch=2) == 0  # a new walk finds nothing more to drop


def test_history_rows_show_the_error_the_duration_and_the_arguments_with_secrets_masked(
    client: FlaskClient, mixed: dict[str, str]
):
    from tests.test_pages import log_in

    secret = enqueue(
        client, "webhooks.deliver", url="http://127.0.0.1:9/hook", payload={"order": 42}, secret="hunter2-secret"
    )
    assert log_in(client) == (303, "/")
    page = client.get("/jobs").get_data(as_text=True)
    row = page[page.index(mixed["timeout"][:8]) :]
    row = row[: row.index("</tr>")]
    assert "<strong>RuntimeError</strong>: upstream TIMEOUT after 30 s" in row
    assert "message=&#34;upstream TIMEOUT after 30 s&#34;" in row
    assert row.count(" s</td>") == 1  # how long it ran
    assert secret[:8] in page and "hunter2" not in page
    assert listing(client, q="hunter2")["matches"] == 0  # nor can a search find a secret by its text
