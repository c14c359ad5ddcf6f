"""X-Request-ID: taken from the caller (or made up), echoed back, and carried into logs and jobs."""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, g, request

from jobs.logging_config import request_id

HEADER = "X-Request-ID"
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def init_app(app: Flask) -> None:
    @app.before_request
    def assign() -> None:
        given = request.headers.get(HEADER, "")
        g.request_id = given if _ACCEPTABLE.match(given) else uuid.uuid4().hex
        g.request_id_token = request_id.set(g.request_id)

    @app.after_request
    def echo(response: Response) -> Response:
        if "request_id" in g:
            response.headers[HEADER] = g.request_id
        return response

    @app.teardown_request
    def forget(error: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            request_id.reset(token)
