"""gunicorn settings for the Procfile's web process, from the platform's environment."""

import os

bind = f"{os.environ.get('WEB_HOST', '0.0.0.0')}:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Event streams (SSE) hold a connection each for as long as a job runs: gevent keeps
# them cheap (a greenlet each) so the API stays responsive with many open.
worker_class = "gevent"
worker_connections = int(os.environ.get("WEB_CONNECTIONS", "1000"))
# Heroku allows 30 s between SIGTERM and SIGKILL.
graceful_timeout = 25
timeout = 30
accesslog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
control_socket_disable = True  # several web processes may share a machine

if os.environ.get("LOG_FORMAT", "text").lower() == "json":
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
