"""The JSON API under /api: one blueprint per area, composed here."""

from flask import Blueprint

from app.api import events, fleet, jobs, openapi, operations, schedules, tasks, trends, uploads

api = Blueprint("api", __name__, url_prefix="/api")
for area in (tasks, operations, jobs, events, uploads, fleet, schedules, trends, openapi):
    api.register_blueprint(area.bp)
