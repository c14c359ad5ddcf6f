"""Security headers on every response."""

from __future__ import annotations

from flask import Flask, Response, request

# rq-dashboard's pages use inline scripts and styles and compile their templates at run time
# (underscore's _.template); everything else is served locally.
_DASHBOARD_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# Offload's own pages: scripts, styles, images and API calls from this origin only; nothing inline.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def register_security_headers(app: Flask) -> None:
    @app.after_request
    def add_headers(response: Response) -> Response:
        csp = _DASHBOARD_CSP if request.blueprint == "rq_dashboard" else _CSP
        response.headers.setdefault("Content-Security-Policy", csp)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        # Same-origin requests carry a Referer (Flask-WTF's CSRF check demands one over HTTPS);
        # no other site ever sees one.
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if app.config.get("APP_ENV") == "production":
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response
