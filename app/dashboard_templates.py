"""rq-dashboard's templates, read through a loader that escapes every value they show.

rq-dashboard 0.9 renders jobs and workers in the browser with underscore templates, and
interpolates most values with ``<%= %>``, which inserts them as HTML: a job argument, result,
error or call string holding markup ran script in an operator's session. Here every ``<%=``
becomes ``<%-`` (underscore's escaping interpolation), and the two places that escaped by hand
through jQuery are given the plain value so that it is escaped once. Offload's header and status
line sit above rq-dashboard's bar, and its instance selector shows the Redis URL without the
password. tests/test_dashboard.py fails if the templates change shape.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from jinja2 import BaseLoader, Environment

_RAW = "<%="
_ESCAPED = "<%-"
_HAND_ESCAPED = re.compile(r"<%=\s*\$\('<div/>'\)\.text\((?P<value>[^)]+)\)\.html\(\)\s*%>")
_BRAND = '<a class="navbar-brand">RQ-dashboard</a>'
_READ_ONLY = (
    '{% if not config.DASHBOARD_ACTIONS %}<span class="navbar-text" id="read-only">read-only here:'
    " set DASHBOARD_ACTIONS=true to requeue, delete or empty</span>{% endif %}"
)
# Offload's header (with its status line and the way back) above rq-dashboard's own bar.
_NAVBAR = '{% include "rq_dashboard/navbar.html" %}'
_HEADER = '{% include "header.html" %}' + _NAVBAR
_STYLES = "<link href=\"{{ url_for('rq_dashboard.static', filename='css/main.css') }}\" rel=\"stylesheet\">"
_HEADER_STYLES = _STYLES + "\n<link rel=\"stylesheet\" href=\"{{ url_for('static', filename='header.css') }}\">"
# The instance selector showed the Redis URL, password included.
_INSTANCE = "{{ instance }}</option>"
_REDACTED_INSTANCE = "{{ instance | redacted_url }}</option>"
# The buttons that change state besides Delete and Empty (which rq-dashboard hides itself when
# RQ_DASHBOARD_DISABLE_DELETE is set): shown only where DASHBOARD_ACTIONS allows them.
ACTION_BUTTONS = re.compile(
    r'<button id="requeue-job-btn".*?</button>|<a [^>]*id="(?:compact|requeue-all)-btn".*?</a>'
    r'|<a href="#" data-role="requeue-job-btn".*?</a>',
    re.S,
)


def escaped(source: str) -> str:
    """``source`` with every client-side interpolation escaping what it inserts."""
    source = _HAND_ESCAPED.sub(lambda match: f"{_ESCAPED} {match['value']} %>", source)
    source = ACTION_BUTTONS.sub(lambda match: f"{{% if config.DASHBOARD_ACTIONS %}}{match[0]}{{% endif %}}", source)
    source = source.replace(_BRAND, _BRAND + _READ_ONLY).replace(_INSTANCE, _REDACTED_INSTANCE)
    source = source.replace(_NAVBAR, _HEADER).replace(_STYLES, _HEADER_STYLES)
    return source.replace(_RAW, _ESCAPED)


class EscapingLoader(BaseLoader):
    """Another loader's templates, passed through ``escaped``."""

    def __init__(self, inner: BaseLoader) -> None:
        self.inner = inner

    def get_source(self, environment: Environment, template: str) -> tuple[str, str | None, Callable[[], bool] | None]:
        source, filename, uptodate = self.inner.get_source(environment, template)
        return escaped(source), filename, uptodate

    def list_templates(self) -> list[str]:
        return self.inner.list_templates()


def install(blueprint: Any) -> None:
    """Serve ``blueprint``'s templates escaped (rq-dashboard's blueprint)."""
    inner = blueprint.jinja_loader
    if not isinstance(inner, EscapingLoader):
        blueprint.jinja_loader = EscapingLoader(inner)
