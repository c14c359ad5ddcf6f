"""The pages people use: log in, start a task from a form, watch a job live, browse history.

Server-rendered from the same registry, documents and enqueue path as the API; the
only scripts are local files that follow a job's event stream and call the API.
"""

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, render_template
from werkzeug.exceptions import HTTPException

from app.auth import session_is_valid
from app.redis_client import get_redis
from app.web import fleet, login, operations, pages, trends
from jobs.fleet.status_line import status_line

web = Blueprint("web", __name__)
for area in (login, pages, operations, fleet, trends):
    web.register_blueprint(area.bp)


@web.errorhandler(HTTPException)
def page_error(error: HTTPException) -> tuple[str, int]:
    return render_template("error.html", error=error), error.code or 500


@web.app_context_processor
def signed_in() -> dict[str, Any]:
    valid = session_is_valid()
    return {"signed_in": valid, "status_line": status_line(get_redis()) if valid else None}


def _moment(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@web.app_template_filter("isotime")
def isotime(value: datetime | str) -> str:
    return _moment(value).astimezone(UTC).isoformat().replace("+00:00", "Z")


@web.app_template_filter("fromtimestamp")
def fromtimestamp(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


@web.app_template_filter("shorttime")
def shorttime(value: datetime | str) -> str:
    return _moment(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
