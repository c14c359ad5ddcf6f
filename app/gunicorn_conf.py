"""gunicorn settings for the Procfile's web process, from Offload's settings model."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jobs.settings import SettingsError, get_settings  # noqa: E402

try:
    _settings = get_settings()
except SettingsError as error:
    raise SystemExit(str(error)) from None

bind = f"{_settings.WEB_HOST}:{_settings.PORT}"
workers = _settings.WEB_CONCURRENCY
# Event streams (SSE) hold a connection each for as long as a job runs: gevent keeps
# them cheap (a greenlet each) so the API stays responsive with many open.
worker_class = "gevent"
worker_connections = _settings.WEB_CONNECTIONS
# Heroku allows 30 s between SIGTERM and SIGKILL.
graceful_timeout = 25
timeout = 30
accesslog = "-"
forwarded_allow_ips = _settings.FORWARDED_ALLOW_IPS
control_socket_disable = True  # several web processes may share a machine

if _settings.LOG_FORMAT == "json":
    # gunicorn's own and access lines as JSON too, like the app, the worker and cron.
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            }
        },
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "loggers": {
            "gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "gunicorn.access": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        },
    }


def post_worker_init(worker: object) -> None:
    """What loading the app built (the registry, the schemas, the templates) lives as long as the
    process: keep it out of every garbage collection, which otherwise walks it again and again."""
    import gc

    gc.collect()
    gc.freeze()
