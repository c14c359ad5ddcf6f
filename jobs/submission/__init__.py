"""The one way jobs are created: prepare a call, admit it, write it.

The API, the pages, the CLI, the cron process and ``app.enqueue.enqueue_task`` all come
through here, so every job is JSON, carries its task name, is listed in the job index and
has its first event. Each step raises a domain error and writes nothing when it refuses:
``UnknownTaskError`` and ``InvalidCall`` (``prepare``), ``RefusedError`` (the admission,
checked by the write itself).
"""

from jobs.submission.admission import Admission, RefusedError, Window
from jobs.submission.calls import Call, InvalidCall, prepare
from jobs.submission.writing import enqueue, submit, submit_many, write

__all__ = [
    "Admission",
    "Call",
    "InvalidCall",
    "RefusedError",
    "Window",
    "enqueue",
    "prepare",
    "submit",
    "submit_many",
    "write",
]
