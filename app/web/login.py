"""/login and /logout: one session for the pages and rq-dashboard, opened with an API token
or the admin password. Failed attempts are rate limited per client (see app.rate_limits)."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app import rate_limits
from app.auth import log_in, log_out, public, safe_next, session_is_valid
from jobs.submission import RefusedError

bp = Blueprint("login", __name__)
WRONG = "That is neither an API token nor the admin password."


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> ResponseReturnValue:
    target = safe_next(request.values.get("next"))
    if request.method == "POST":
        try:
            rate_limits.check_login()
        except RefusedError as refused:
            wait = refused.retry_after or 1
            message = f"Too many failed logins from this address; try again in {wait} s."
            return render_template("login.html", next=target, error=message), 429, {"Retry-After": str(wait)}
        if log_in(request.form.get("secret", "")):
            return redirect(target, 303)
        rate_limits.count_failed_login()
        return render_template("login.html", next=target, error=WRONG), 401
    if session_is_valid():
        return redirect(target)
    return render_template("login.html", next=target, error=None), 200


@bp.post("/logout")
@public
def logout() -> ResponseReturnValue:
    log_out()
    return redirect(url_for(".login"), 303)
