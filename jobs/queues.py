"""RQ's queues as Offload uses them: JSON jobs of ``TaskJob``, one object per connection and name."""

from __future__ import annotations

from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from jobs.job import TaskJob
from jobs.settings import get_settings
from jobs.vocabulary import REGISTRY_STATES


def queue_for(connection: Redis, name: str) -> Queue:
    """An RQ queue that stores jobs as JSON and runs them as ``TaskJob`` (one per connection and name)."""
    key = (id(connection), name)
    queue = _queues.get(key)
    if queue is None or queue.connection is not connection:
        if len(_queues) >= 64:  # a process has one or two connections; tests make many
            _queues.clear()
        queue = _queues[key] = Queue(name, connection=connection, serializer=JSONSerializer, job_class=TaskJob)
    return queue


# Building a Queue resolves its serializer and job class each time: keep them.
_queues: dict[tuple[int, str], Queue] = {}


def queue_counts(connection: Redis) -> dict[str, dict[str, int]]:
    """Jobs per queue: waiting (``queued``) and in each of RQ's registries, in one round trip."""
    queues = [queue_for(connection, name) for name in get_settings().QUEUES]
    with connection.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.llen(queue.key)
            for state in REGISTRY_STATES:
                pipe.zcard(getattr(queue, f"{state}_job_registry").key)
        counts = iter(pipe.execute())
    return {queue.name: {state: next(counts) for state in ("queued", *REGISTRY_STATES)} for queue in queues}
