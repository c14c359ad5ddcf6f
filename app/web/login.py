"""/login and /logout: one session for the pages and rq-dashboard, opened with an API token
or the admin password. Failed attempts are rate limited per client (see app.rate_limits)."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, url_for

from app.auth import log_in, log_out, public, safe_next, session_is_valid

bp = Blueprint("login", __name__)
WRONG = "That is neither an API token nor the admin password."


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Response | tuple[str, int]:
    target = safe_next(request.values.get("next"))
    if request.method == "POST":
        if log_in(request.form.get("secret", "")):
            return redirect(target, 303)
        return render_template("login.html", next=target, error=WRONG), 401
    if session_is_valid():
        return redirect(target)
    return render_template("login.html", next=target, error=None), 200


@bp.post("/logout")
@public
def logout() -> Response:
    log_out()
    return redirect(url_for(".login"), 303)
