"""The JSON API under /api: one blueprint per area, composed here."""

from flask import Blueprint

from app.api import jobs, openapi, system, tasks

api = Blueprint("api", __name__, url_prefix="/api")
for area in (tasks, jobs, system, openapi):
    api.register_blueprint(area.bp)
