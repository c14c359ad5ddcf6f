"""Offload's workers, in their parts.

- ``inprocess``: ``InProcessWorker``, what the Procfile runs: jobs in the worker process,
  one scripted round trip per job (``lua/record_and_take.lua``).
- ``forking``: ``ForkingWorker``, RQ's forking worker made safe (its base too): a stop never
  signals the worker's own group, a work-horse never outlives it.
- ``shutdown``: a running job gets a grace period at shutdown, then goes back to its queue.
- ``guards``: the RQ version and job class a worker needs, checked before it starts.
- ``recovery``, ``sweeper``: what a dead worker held runs again.
- ``liveness``: a worker is alive by the age of its heartbeat.
- ``placement``: priority and CPUs, so the web keeps a CPU of its own.
"""
