"""The pages without a browser: login, sessions, CSRF, forms from schemas, history.

What only a browser shows (live progress, the buttons, the CSP) is in test_browser.py.
"""

from __future__ import annotations

import io
import re
from typing import Annotated, Literal

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from pydantic import BaseModel, Field
from werkzeug.datastructures import FileStorage, MultiDict

from app import create_app
from app.web.forms import args_from_form, field_errors, fields_of
from tests.conftest import AUTH, TOKEN, close_app

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(client: FlaskClient, path: str = "/login") -> str:
    page = client.get(path, follow_redirects=True).get_data(as_text=True)
    found = _CSRF.search(page)
    assert found, page
    return found.group(1)


def log_in(client: FlaskClient, secret: str = TOKEN, next_: str = "/") -> tuple[int, str | None]:
    response = client.post("/login", data={"secret": secret, "next": next_, "csrf_token": csrf_of(client)})
    return response.status_code, response.headers.get("Location")


@pytest.fixture
def session_client(client: FlaskClient) -> FlaskClient:
    assert log_in(client) == (303, "/")
    return client


def test_pages_and_dashboard_send_strangers_to_the_login_page(client: FlaskClient):
    for path in ("/", "/jobs", "/jobs/abc", "/tasks/demo.sleep", "/rq/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.location == f"/login?next={path}"
    page = client.get("/login")
    assert page.status_code == 200
    assert 'type="password"' in page.get_data(as_text=True)


def test_a_token_opens_a_signed_httponly_samesite_session(client: FlaskClient):
    assert log_in(client, next_="/jobs?status=failed") == (303, "/jobs?status=failed")
    cookie = client.get_cookie("offload_session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    assert TOKEN not in cookie.value  # only a keyed fingerprint of it
    assert client.get("/").status_code == 200
    assert client.get("/rq/").status_code == 200


def test_wrong_credentials_show_a_message_and_open_nothing(client: FlaskClient):
    response = client.post("/login", data={"secret": "nope", "csrf_token": csrf_of(client)})
    assert response.status_code == 401
    assert "neither an API token nor the admin password" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_failed_logins_are_rate_limited_per_client(client: FlaskClient):
    token = csrf_of(client)
    answers = [client.post("/login", data={"secret": "guess", "csrf_token": token}).status_code for _ in range(6)]
    assert answers == [401] * 5 + [429]
    limited = client.post("/login", data={"secret": TOKEN, "csrf_token": token})
    assert limited.status_code == 429  # even the right token waits until the window passes
    assert int(limited.headers["Retry-After"]) >= 1
    assert "Too many failed logins" in limited.get_data(as_text=True)


def test_successful_logins_do_not_count_against_the_limit(client: FlaskClient):
    for _ in range(8):
        assert log_in(client)[0] == 303


def test_the_admin_password_logs_in_when_configured(redis_url: str):
    app = create_app({"REDIS_URL": redis_url, "API_TOKENS": TOKEN, "SECRET_KEY": "s", "ADMIN_PASSWORD": "hunter22"})
    client = app.test_client()
    assert log_in(client, "hunter22") == (303, "/")
    assert client.get("/jobs").status_code == 200
    close_app(app)


def test_a_login_is_refused_without_the_csrf_token(client: FlaskClient):
    response = client.post("/login", data={"secret": TOKEN})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)


def test_removing_a_token_ends_the_sessions_it_opened(app: Flask, session_client: FlaskClient):
    assert session_client.get("/").status_code == 200
    app.config["API_TOKENS"] = "another-token"
    assert session_client.get("/").status_code == 302


def test_logout_ends_the_session(session_client: FlaskClient):
    token = csrf_of(session_client, "/")
    assert session_client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert session_client.get("/").status_code == 302


def test_login_never_redirects_off_site(client: FlaskClient):
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        assert log_in(client, next_=target) == (303, "/")


def test_the_api_takes_a_session_but_state_changes_need_the_csrf_header(session_client: FlaskClient):
    assert session_client.get("/api/tasks").status_code == 200
    body = {"task": "demo.noop"}
    refused = session_client.post("/api/jobs", json=body)
    assert refused.status_code == 400
    assert refused.mimetype == "application/problem+json"
    assert "CSRF" in refused.get_json()["detail"]
    token = csrf_of(session_client, "/")
    assert session_client.post("/api/jobs", json=body, headers={"X-CSRFToken": token}).status_code == 202


def test_pages_satisfy_a_strict_content_security_policy(session_client: FlaskClient):
    response = session_client.get("/")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "style-src 'self';" in policy and "unsafe-inline" not in policy
    page = response.get_data(as_text=True)
    assert "<script>" not in page and " style=" not in page and "<style" not in page


def test_the_tasks_page_lists_every_registered_task_with_its_recent_runs(session_client: FlaskClient):
    headers = {"X-CSRFToken": csrf_of(session_client, "/")}
    created = session_client.post("/api/jobs", json={"task": "demo.sleep"}, headers=headers).get_json()
    page = session_client.get("/").get_data(as_text=True)
    for name in ("demo.sleep", "images.thumbnail", "mail.send", "webhooks.deliver"):
        assert f'href="/tasks/{name}"' in page
    assert f'href="/jobs/{created["id"]}"' in page
    assert "every " in page or "* *" in page or "on demand" in page


class Nested(BaseModel):
    city: str = Field(max_length=50)
    zip: int | None = None


class Everything(BaseModel):
    name: Annotated[str, Field(min_length=2, max_length=20)]
    count: Annotated[int, Field(ge=1, le=10)] = 3
    ratio: float = 0.5
    loud: bool = False
    colour: Literal["red", "green"] = "red"
    tags: list[str] = []
    sizes: list[int] = [8]
    extra: dict[str, int] | None = None
    address: Nested | None = None
    note: str = ""


def test_a_schema_becomes_fields_with_client_hints():
    fields = {item.name: item for item in fields_of(Everything.model_json_schema())}
    assert fields["name"].kind == "text" and fields["name"].required
    assert fields["name"].attrs == {"minlength": "2", "maxlength": "20"}
    assert fields["count"].kind == "integer" and fields["count"].attrs == {"step": "1", "min": "1", "max": "10"}
    assert fields["ratio"].kind == "number" and fields["loud"].kind == "checkbox"
    assert fields["colour"].kind == "select" and fields["colour"].choices == ["red", "green"]
    assert (fields["tags"].kind, fields["sizes"].item_kind) == ("lines", "integer")
    assert fields["extra"].kind == "json"
    assert fields["address"].kind == "group"
    assert [child.name for child in fields["address"].children] == ["address.city", "address.zip"]
    assert fields["note"].kind == "textarea"


def test_a_form_becomes_arguments_the_schema_accepts():
    fields = fields_of(Everything.model_json_schema())
    form = MultiDict(
        {
            "name": "ada",
            "count": "4",
            "ratio": "",
            "loud": "on",
            "colour": "green",
            "tags": "a\n\n b \n",
            "sizes": "16\n32",
            "extra": '{"x": 1}',
            "address.city": "Paris",
            "address.zip": "",
        }
    )
    submission = args_from_form(fields, form, {}, lambda _: "unused")
    assert submission.errors == {}
    assert submission.args == {
        "name": "ada",
        "count": 4,
        "loud": True,
        "colour": "green",
        "tags": ["a", "b"],
        "sizes": [16, 32],
        "extra": {"x": 1},
        "address": {"city": "Paris"},
    }
    assert Everything.model_validate(submission.args).ratio == 0.5  # left empty: the default


def test_bad_json_is_named_on_its_field_before_validation():
    fields = fields_of(Everything.model_json_schema())
    submission = args_from_form(fields, MultiDict({"name": "ada", "extra": "{nope"}), {}, lambda _: "unused")
    assert list(submission.errors) == ["extra"]
    assert "not valid JSON" in submission.errors["extra"][0]


def test_api_errors_land_on_the_fields_they_name():
    fields = fields_of(Everything.model_json_schema())
    placed = field_errors(
        [
            {"loc": ["args", "sizes", 1], "msg": "Input should be a valid integer"},
            {"loc": ["args", "address", "city"], "msg": "Field required"},
            {"loc": ["at"], "msg": "must be in the future"},
            {"loc": ["args"], "msg": "something general"},
        ],
        fields,
    )
    assert placed == {
        "sizes": ["item 2: Input should be a valid integer"],
        "address.city": ["Field required"],
        "_at": ["must be in the future"],
        "": ["something general"],
    }


def test_an_invalid_form_answers_422_with_each_error_beside_its_field(session_client: FlaskClient):
    token = csrf_of(session_client, "/tasks/mail.send")
    form = {"csrf_token": token, "to": "ok@example.com\nnot-an-address", "subject": "", "body": "hi"}
    form["max_attempts"] = "99"
    response = session_client.post("/tasks/mail.send", data=form)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    for name in ("to", "subject", "max_attempts"):
        assert f'id="error-{name}"' in page, name
        assert f'aria-describedby="hint-{name} error-{name}"' in page or f'aria-describedby="error-{name}"' in page
    assert re.search(r'id="error-to">item 2: value is not a valid email address', page)
    assert "ok@example.com\nnot-an-address</textarea>" in page  # what was typed stays
    assert session_client.get("/api/jobs").get_json()["jobs"] == []  # nothing was enqueued


def test_a_valid_form_enqueues_through_the_api_path_and_shows_the_job(session_client: FlaskClient):
    token = csrf_of(session_client, "/tasks/demo.sleep")
    response = session_client.post(
        "/tasks/demo.sleep", data={"csrf_token": token, "seconds": "2", "steps": "4", "_queue": "low", "_delay": "60"}
    )
    assert response.status_code == 303
    job_id = response.location.rsplit("/", 1)[1]
    document = session_client.get(f"/api/jobs/{job_id}").get_json()
    assert (document["args"], document["queue"], document["status"]) == (
        {"seconds": 2.0, "steps": 4},
        "low",
        "scheduled",
    )
    page = session_client.get(response.location).get_data(as_text=True)
    assert 'id="status" class="badge badge-scheduled"' in page


def test_options_errors_land_beside_the_options(session_client: FlaskClient):
    token = csrf_of(session_client, "/tasks/demo.noop")
    response = session_client.post(
        "/tasks/demo.noop", data={"csrf_token": token, "_delay": "5", "_at": "2020-01-01T10:00"}
    )
    assert response.status_code == 422
    assert 'id="error-_at">cannot be combined with delay' in response.get_data(as_text=True)


def test_a_file_input_uploads_the_file_for_the_task(session_client: FlaskClient):
    page = session_client.get("/tasks/images.thumbnail").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in page and 'type="file"' in page and 'accept="image/*"' in page
    png = io.BytesIO()
    Image.new("RGB", (40, 30), "red").save(png, "PNG")
    form = {
        "csrf_token": csrf_of(session_client, "/tasks/images.thumbnail"),
        "image": FileStorage(io.BytesIO(png.getvalue()), "red.png", content_type="image/png"),
        "sizes": "16",
    }
    response = session_client.post("/tasks/images.thumbnail", data=form, content_type="multipart/form-data")
    assert response.status_code == 303
    document = session_client.get(f"/api{response.location}").get_json()
    assert re.fullmatch(r"[0-9a-f]{32}", document["args"]["image"])
    assert document["args"]["sizes"] == [16]


def test_unknown_tasks_and_jobs_are_readable_404_pages(session_client: FlaskClient):
    for path in ("/tasks/no.such", "/jobs/nosuchjob"):
        response = session_client.get(path)
        assert response.status_code == 404
        assert response.mimetype == "text/html"
        assert "No " in response.get_data(as_text=True)


def test_history_filters_pages_and_counts(session_client: FlaskClient):
    token = csrf_of(session_client, "/")
    for index in range(30):
        task = "demo.noop" if index % 3 else "demo.sleep"
        session_client.post("/api/jobs", json={"task": task}, headers={"X-CSRFToken": token})
    first = session_client.get("/jobs").get_data(as_text=True)
    assert first.count('href="/jobs/') == 25
    assert re.search(r"queued <strong>30</strong>", first)
    older = re.search(r'rel="next" href="([^"]+)"', first)
    assert older
    second = session_client.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert second.count('href="/jobs/') == 5
    only_sleep = session_client.get("/jobs?task=demo.sleep").get_data(as_text=True)
    assert only_sleep.count('href="/jobs/') == 10
    bad = session_client.get("/jobs?status=bogus")
    assert bad.status_code == 400 and "status" in bad.get_data(as_text=True)


def test_form_submissions_share_the_submission_rate_limit(app: Flask, session_client: FlaskClient):
    app.config["SUBMIT_RATE_LIMIT"] = "2/minute"
    token = csrf_of(session_client, "/tasks/demo.noop")
    answers = [session_client.post("/tasks/demo.noop", data={"csrf_token": token}).status_code for _ in range(3)]
    assert answers == [303, 303, 429]
    assert session_client.get("/api/jobs", headers=AUTH).status_code == 200


def _proxied(app_config: dict, redis_url: str) -> FlaskClient:
    from app import create_app

    return create_app({"REDIS_URL": redis_url, "API_TOKENS": TOKEN, **app_config}).test_client()


def test_behind_a_trusted_proxy_failed_logins_count_per_real_client(redis_url: str):
    client = _proxied({"TRUSTED_PROXIES": 1}, redis_url)
    token = csrf_of(client)

    def attempt(address: str) -> int:
        data = {"secret": "guess", "csrf_token": token}
        return client.post("/login", data=data, headers={"X-Forwarded-For": address}).status_code

    assert [attempt("203.0.113.7") for _ in range(6)] == [401] * 5 + [429]
    assert attempt("198.51.100.9") == 401  # another client behind the same proxy is not locked out


def test_without_trusted_proxies_a_forwarded_address_is_ignored(redis_url: str):
    client = _proxied({}, redis_url)
    token = csrf_of(client)
    answers = [
        client.post(
            "/login", data={"secret": "guess", "csrf_token": token}, headers={"X-Forwarded-For": f"192.0.2.{n}"}
        ).status_code
        for n in range(6)
    ]
    assert answers == [401] * 5 + [429]  # a spoofed X-Forwarded-For does not evade the limit


def test_login_works_behind_a_tls_terminating_proxy(redis_url: str):
    """The pages sent no-referrer while Flask-WTF demands a same-origin Referer over HTTPS."""
    client = _proxied({"TRUSTED_PROXIES": 1}, redis_url)
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "offload.example"}
    page = client.get("/login", headers=https)
    assert page.headers["Referrer-Policy"] == "same-origin"  # the browser sends the Referer below
    token = _CSRF.search(page.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    response = client.post(
        "/login",
        data={"secret": TOKEN, "next": "/", "csrf_token": token},
        headers={**https, "Referer": "https://offload.example/login"},
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:300]


def test_a_negative_proxy_count_is_refused(redis_url: str):
    from jobs.settings import SettingsError

    with pytest.raises(SettingsError, match="TRUSTED_PROXIES=-1: Input should be greater than or equal to 0"):
        _proxied({"TRUSTED_PROXIES": -1}, redis_url)


def test_a_session_cookie_replayed_after_logout_opens_nothing(app: Flask, session_client: FlaskClient):
    cookie = session_client.get_cookie("offload_session")
    assert cookie is not None
    token = csrf_of(session_client, "/")
    assert session_client.post("/logout", data={"csrf_token": token}).status_code == 303
    replay = app.test_client()
    replay.set_cookie("offload_session", cookie.value)
    assert replay.get("/").status_code == 302
    assert replay.get("/api/tasks").status_code == 401


def test_an_invalid_bearer_token_is_refused_even_beside_a_valid_session(session_client: FlaskClient):
    assert session_client.get("/api/tasks").status_code == 200
    response = session_client.get("/api/tasks", headers={"Authorization": "Bearer not-a-real-token"})
    assert response.status_code == 401
    assert "invalid_token" in response.headers["WWW-Authenticate"]


def test_idempotency_keys_are_scoped_per_credential(app: Flask, redis_url: str):
    app.config["API_TOKENS"] = f"{TOKEN},second-token-of-the-team"
    first, second = app.test_client(), app.test_client()
    assert log_in(first) == (303, "/")
    assert log_in(second, secret="second-token-of-the-team") == (303, "/")
    body = {"task": "tests.fixtures.add", "args": {"a": 1, "b": 2}}
    ids = []
    for client in (first, second):
        headers = {"Idempotency-Key": "same-key", "X-CSRFToken": csrf_of(client, "/")}
        response = client.post("/api/jobs", json=body, headers=headers)
        assert response.status_code == 202, response.get_data(as_text=True)
        ids.append(response.get_json()["id"])
    assert ids[0] != ids[1]  # two callers' keys never meet


def test_labels_are_plain_words_and_an_upload_of_the_wrong_type_never_becomes_a_job(
    session_client: FlaskClient, redis_conn: redis.Redis
):
    webhook = session_client.get("/tasks/webhooks.deliver").get_data(as_text=True)
    assert 'for="f-url">URL' in webhook and ">Url" not in webhook
    mail = session_client.get("/tasks/mail.send").get_data(as_text=True)
    assert 'for="f-html">HTML' in mail and ">Html" not in mail
    token = csrf_of(session_client, "/tasks/images.thumbnail")
    answer = session_client.post(
        "/tasks/images.thumbnail",
        data={"csrf_token": token, "image": (io.BytesIO(b"just some text"), "notes.txt", "text/plain")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 422
    assert "choose a file of type image/* (this one is text/plain)" in answer.get_data(as_text=True)
    assert redis_conn.keys("offload:upload*") == [] and redis_conn.zcard("offload:jobs") == 0
