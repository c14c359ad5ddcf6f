"""The worker class the Procfile runs: jobs in the worker process, claimed in small batches.

RQ's default worker forks a work-horse per job and spends about twenty Redis round trips
on each one; a no-op job costs ~13 ms of CPU, so two processes drain ~175 jobs/s. This
class keeps RQ's records exactly as RQ writes them (the same job hashes, executions,
registries and results, so rq-dashboard, ``rq info`` and the API read them unchanged) and
changes how they are written:

- **Claim in batches.** One script pops up to ``n`` job ids from the queues in priority
  order; one pipeline reads the jobs; one pipeline starts them all. ``n`` adapts: it is 1
  while jobs take longer than a few milliseconds, so a slow job never holds others back
  (no prefetch starvation), and grows to OFFLOAD_PREFETCH (32) for a stream of short jobs.
- **Run in the process.** No fork: the task runs in the worker process, with RQ's
  SIGALRM timeout. A heartbeat thread keeps the running job (and the claimed ones) alive
  in Redis, so a dead worker's jobs are recovered after OFFLOAD_HEARTBEAT_GRACE as before.
  Tasks marked ``@task(isolated=True)`` still run in a forked work-horse.
- **Write results in batches.** A successful job's bookkeeping goes into a pipeline that is
  sent when the batch ends (at most ``FLUSH_AFTER`` later). Failures, retries, stops and
  jobs with dependents take RQ's own path, written at once.

Stop and shutdown keep their meaning: a stop request interrupts the running task
(``JobInterrupted`` is raised in it), a warm shutdown gives the running job
OFFLOAD_SHUTDOWN_GRACE seconds and then hands it back, and claimed jobs that did not start
go back to the front of their queues.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import threading
import time
from base64 import b64encode
from collections import deque
from pathlib import Path
from typing import Any
from uuid import uuid4

import rq
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT, UNSERIALIZABLE_RETURN_VALUE_PAYLOAD
from rq.exceptions import StopRequested
from rq.executions import Execution, ExecutionRegistry
from rq.job import JobStatus
from rq.results import Result
from rq.timeouts import JobTimeoutException
from rq.utils import current_timestamp, now, utcformat
from rq.worker.base import WorkerStatus

from jobs import events, metrics
from jobs.worker import Worker

PREFETCH_MAX = int(os.environ.get("OFFLOAD_PREFETCH", "64"))
# A batch is sized to take about this long, and its results are sent at least this often.
BATCH_SECONDS = 0.05
FLUSH_AFTER = 0.05
SUSPENSION_CHECK_EVERY = 1.0
# Background work yields the CPU to the web process when they share a machine (make run,
# one dyno): nice 10 by default (0 keeps the normal priority). OFFLOAD_WORKER_NICE=idle runs
# at SCHED_IDLE, which answers the web a little faster still but can starve a job outright
# while anything else keeps the CPU busy (a heartbeat included), so it is not the default.
WORKER_NICE = os.environ.get("OFFLOAD_WORKER_NICE", "10")
# Where workers and the web share a machine, niceness alone still lets CPU-heavy jobs on every
# core delay the web's wake-ups (make bench: /healthz p99 ~2-3x idle); OFFLOAD_WORKER_CPUS=spare
# keeps workers off the first CPU, which make run sets. "all" (the default) uses every CPU.
WORKER_CPUS = os.environ.get("OFFLOAD_WORKER_CPUS", "all")
_INTERRUPT = signal.SIGUSR1

# KEYS: the queue keys in priority order. ARGV: how many at most, the job key prefix.
# Returns, per claimed job: queue key, job id, whether it has dependents, its hash (flat).
_CLAIM = """
local wanted, prefix = tonumber(ARGV[1]), ARGV[2]
local claimed = {}
for _, key in ipairs(KEYS) do
  if wanted <= 0 then break end
  local ids = redis.call('LPOP', key, wanted)
  if ids then
    for _, id in ipairs(ids) do
      local job_key = prefix .. id
      table.insert(claimed, key)
      table.insert(claimed, id)
      table.insert(claimed, redis.call('EXISTS', job_key .. ':dependents'))
      table.insert(claimed, redis.call('HGETALL', job_key))
    end
    wanted = wanted - #ids
  end
end
return claimed
"""

# What RQ writes when a worker starts jobs (Execution.create, job.prepare_for_execution,
# Job.heartbeat) and Offload's "started" event, for a whole batch in one call. Key names
# come from RQ's own objects (see _start_args); test_fast_worker compares the result with
# what RQ's own worker writes.
_START = """
local worker_key, worker_execs, worker_name = ARGV[1], ARGV[2], ARGV[3]
local now_ts, now_utc, now_int, worker_ttl = ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7]
local longest = 0
redis.call('HSET', worker_key, 'state', 'busy', 'last_heartbeat', now_utc)
redis.call('EXPIRE', worker_key, worker_ttl)
for n = 8, #ARGV, 11 do
  local job_key, job_id, exec_key, exec_id = ARGV[n], ARGV[n+1], ARGV[n+2], ARGV[n+3]
  local execs_key, wip_key = ARGV[n+4], ARGV[n+5]
  local ttl, events_key, event, events_ttl, maxlen = tonumber(ARGV[n+6]), ARGV[n+7], ARGV[n+8], ARGV[n+9], ARGV[n+10]
  local composite = job_id .. ':' .. exec_id
  redis.call('HSET', exec_key, 'id', exec_id, 'job_id', job_id, 'created_at', now_ts, 'last_heartbeat', now_ts,
             'worker_name', worker_name)
  redis.call('EXPIRE', exec_key, ttl)
  redis.call('ZADD', execs_key, tonumber(now_ts) + ttl + 60, exec_id)
  redis.call('EXPIRE', execs_key, ttl + 60)
  redis.call('ZADD', wip_key, now_int + ttl, composite)
  redis.call('SADD', worker_execs, composite)
  redis.call('HSET', job_key, 'last_heartbeat', now_utc, 'status', 'started', 'started_at', now_utc,
             'worker_name', worker_name)
  redis.call('PERSIST', job_key)
  redis.call('XADD', events_key, 'MAXLEN', '~', maxlen, '*', 'type', 'status', 'data', event)
  redis.call('EXPIRE', events_key, events_ttl)
  if ttl > longest then longest = ttl end
end
redis.call('EXPIRE', worker_execs, longest + 60)
return 1
"""

# What RQ writes when a job succeeds (Job._handle_success with its Result, Job.cleanup,
# the execution's deletion, the worker's counters) and Offload's final event.
_FINISH = """
local worker_key, worker_execs, worker_name = ARGV[1], ARGV[2], ARGV[3]
local deferred = {}
for n = 4, #ARGV, 22 do
  local job_key, job_id, exec_key, exec_id = ARGV[n], ARGV[n+1], ARGV[n+2], ARGV[n+3]
  local execs_key, wip_key = ARGV[n+4], ARGV[n+5]
  local finished_key, finished_score, results_key, ttl = ARGV[n+6], ARGV[n+7], ARGV[n+8], tonumber(ARGV[n+9])
  local ended_utc, value, started_ts, ended_ts, working = ARGV[n+10], ARGV[n+11], ARGV[n+12], ARGV[n+13], ARGV[n+14]
  local events_key, event, maxlen = ARGV[n+15], ARGV[n+16], ARGV[n+17]
  local beside = {events_key, ARGV[n+18], ARGV[n+19], ARGV[n+20]}
  local dependents_key, dependencies_key = string.match(ARGV[n+21], '^(%S+) (%S+)$')
  if redis.call('EXISTS', dependents_key) == 1 then
    -- A job was made to depend on this one while it ran: RQ's own path releases it.
    table.insert(deferred, job_id)
  else
    redis.call('HSET', job_key, 'status', 'finished', 'ended_at', ended_utc)
    local fields = {'type', '1', 'worker_name', worker_name}
    if value ~= '' then
      table.insert(fields, 'return_value')
      table.insert(fields, value)
    end
    local execution = {'execution_id', exec_id, 'execution_started_at', started_ts, 'execution_ended_at', ended_ts}
    for _, item in ipairs(execution) do table.insert(fields, item) end
    redis.call('XADD', results_key, 'MAXLEN', '~', 10, '*', unpack(fields))
    if ttl == -1 then
      redis.call('PERSIST', results_key)
    else
      redis.call('EXPIRE', results_key, ttl)
    end
    redis.call('ZADD', finished_key, finished_score, job_id)
    if ttl > 0 then
      for _, key in ipairs({job_key, dependents_key, dependencies_key}) do redis.call('EXPIRE', key, ttl) end
    end
    redis.call('DEL', exec_key)
    redis.call('ZREM', wip_key, job_id .. ':' .. exec_id)
    redis.call('ZREM', execs_key, exec_id)
    redis.call('SREM', worker_execs, job_id .. ':' .. exec_id)
    redis.call('HINCRBY', worker_key, 'successful_job_count', 1)
    redis.call('HINCRBYFLOAT', worker_key, 'total_working_time', working)
    redis.call('XADD', events_key, 'MAXLEN', '~', maxlen, '*', 'type', 'status', 'data', event)
    for _, key in ipairs(beside) do
      if ttl > 0 then redis.call('EXPIRE', key, ttl) else redis.call('PERSIST', key) end
    end
  end
end
return deferred
"""


class JobInterrupted(BaseException):  # noqa: N818 - it reads as what happened to the job
    """Raised inside a running task that was asked to stop (or handed back at shutdown).

    A BaseException, so that a task's ``except Exception`` does not swallow the request.
    """


class _Claimed:
    __slots__ = ("job", "queue", "execution", "has_dependents")

    def __init__(self, job: rq.job.Job, queue: rq.Queue, execution: Execution, has_dependents: bool) -> None:
        self.job, self.queue, self.execution, self.has_dependents = job, queue, execution, has_dependents


class FastWorker(Worker):
    """Offload's worker: in-process execution, batched claims and pipelined bookkeeping."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._claimed: deque[_Claimed] = deque()
        self._running: _Claimed | None = None
        self._finished: list[Any] = []  # _FINISH arguments of jobs whose success is not written yet
        self._finished_jobs: dict[str, tuple[_Claimed, Any]] = {}
        self._tally = metrics.Tally()
        self._pending_since = 0.0
        self._batch_size = 1
        self._claim_script = self.connection.register_script(_CLAIM)
        self._start_script = self.connection.register_script(_START)
        self._finish_script = self.connection.register_script(_FINISH)
        self._beats_stop = threading.Event()

    def unsubscribe(self) -> None:
        """RQ's, with the listening thread told to stop first. In RQ's order the reply to
        UNSUBSCRIBE could wake the thread before it was told, it went back to a 60 s wait, and
        the worker waited out RQ's one-second join: every other burst exit in `make bench`
        took a second longer than its work."""
        thread = self.pubsub_thread
        if thread is None:
            return
        self.log.info("Worker %s: unsubscribing from channel %s", self.name, self.pubsub_channel_name)
        thread.stop()
        try:
            self.pubsub.unsubscribe()  # its reply wakes the thread, which now sees it must stop
        except RedisError:
            pass  # the thread, woken by some other message, stopped and closed the connection first
        thread.join(timeout=1)
        self.pubsub.close()

    # The loop: RQ's ``work`` skeleton, a batch at a time.

    def work(
        self,
        burst: bool = False,
        logging_level: str | None = None,
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
        max_jobs: int | None = None,
        max_idle_time: int | None = None,
        with_scheduler: bool = False,
        dequeue_strategy: Any = None,
    ) -> bool:
        _keep_to_cpus(WORKER_CPUS)
        _lower_priority()  # before the worker registers: a registered worker runs as it will
        self.bootstrap(logging_level, date_format, log_format)
        self._dequeue_strategy = dequeue_strategy
        if with_scheduler:
            self._start_scheduler(burst, logging_level, date_format, log_format)
        self._install_signal_handlers()
        signal.signal(_INTERRUPT, self._interrupt_running_job)
        gc.freeze()  # what start-up built lives as long as the worker: keep it out of every collection
        self._start_heartbeats()
        completed = 0
        checked_suspension = 0.0
        backoff = 1.0
        try:
            while not self._stop_requested:
                try:
                    if time.monotonic() - checked_suspension > SUSPENSION_CHECK_EVERY:
                        self.check_for_suspension(burst)
                        checked_suspension = time.monotonic()
                    if self.should_run_maintenance_tasks:
                        self.run_maintenance_tasks()
                    with metrics.tallied(self._tally):
                        if not self._claim(burst, max_idle_time):
                            break
                        completed += self._run_claimed(max_jobs, completed)
                    backoff = 1.0
                except (RedisConnectionError, RedisTimeoutError) as error:
                    # As RQ's worker does: wait for Redis and go on. Jobs claimed before the outage
                    # are still started in Redis and are recovered as abandoned if they never finish.
                    self.log.error("worker %s: cannot reach Redis (%s); retrying in %.0f s", self.name, error, backoff)
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 30.0)
                    continue
                if max_jobs is not None and completed >= max_jobs:
                    break
        except StopRequested:
            pass
        except SystemExit:
            raise
        except Exception:
            self.log.exception("worker %s: unhandled error, quitting", self.name)
        finally:
            try:
                self._hand_back_claimed()
                self._flush()
                self._write_tally()
            except RedisError:
                self.log.exception("worker %s: could not record its last jobs; they will be recovered", self.name)
            self._beats_stop.set()
            self.teardown()
        return bool(completed)

    def _claim(self, burst: bool, max_idle_time: int | None) -> bool:
        """Claim a batch of jobs; False when there is nothing to do (burst) or the worker stops."""
        keys = [queue.key for queue in self._ordered_queues]
        found = self._claim_script(keys=keys, args=[self._batch_size, self.job_class.redis_job_namespace_prefix])
        if not found:
            self._flush()
            if burst:
                return False
            self.set_state(WorkerStatus.IDLE)
            self.procline(f"Listening on {','.join(self.queue_names())}")
            popped = self._wait_for_job(keys, max_idle_time)
            if popped is None:
                return False
            key, job_id = popped
            job_key = self.job_class.key_for(job_id.decode())
            with self.connection.pipeline(transaction=False) as pipe:
                pipe.exists(f"{job_key}:dependents")
                pipe.hgetall(job_key)
                has_dependents, raw = pipe.execute()
            found = [key, job_id, has_dependents, raw]
        self._start(found)
        return True

    def _wait_for_job(self, keys: list[str], max_idle_time: int | None) -> tuple[bytes, bytes] | None:
        idle_since = time.monotonic()
        while not self._stop_requested:
            self.heartbeat()
            if self.should_run_maintenance_tasks:
                self.run_maintenance_tasks()
            timeout = self.dequeue_timeout
            if max_idle_time is not None:
                left = max_idle_time - (time.monotonic() - idle_since)
                if left <= 0:
                    return None
                timeout = max(1, min(timeout, int(left)))
            try:
                popped = self.connection.blpop(keys, timeout)
            except RedisError as error:  # Redis went away: wait and try again, as RQ's worker does
                self.log.error("worker %s: cannot reach Redis (%s); retrying in 1 s", self.name, error)
                time.sleep(1)
                continue
            if popped is not None:
                return popped
        return None

    def _start(self, found: list[Any]) -> None:
        """Start every claimed job in one call: RQ's records, Offload's events and metrics."""
        queues = {queue.key: queue for queue in self._ordered_queues}
        stamp = now()
        self._state = WorkerStatus.BUSY  # _START writes it to Redis; a stop request reads this copy
        args: list[Any] = [
            self.key,
            self.executions_key,
            self.name,
            stamp.timestamp(),
            utcformat(stamp),
            current_timestamp(),
            self.job_monitoring_interval + 60,
        ]
        for index in range(0, len(found), 4):
            key, job_id, has_dependents, raw = found[index : index + 4]
            if not raw:
                continue  # deleted while it waited: nothing to run
            raw = dict(zip(raw[::2], raw[1::2], strict=True)) if isinstance(raw, list) else raw
            job = self.job_class(job_id.decode(), connection=self.connection, serializer=self.serializer)
            job.restore(raw)
            job.redis_server_version = self.get_redis_server_version()
            job.worker_name, job.started_at, job.last_heartbeat = self.name, stamp, stamp
            job._status = JobStatus.STARTED
            ttl = self.get_heartbeat_ttl(job)
            execution = Execution(uuid4().hex, job.id, self.connection, self.name)
            execution.created_at = execution.last_heartbeat = stamp
            execution._job = job
            event = json.dumps({"status": "started", "at": time.time(), "worker": self.name})
            args += [
                *_execution_keys(job, execution),
                ttl,
                events.events_key(job.id),
                event,
                job.failure_ttl or events.DEFAULT_TTL,
                events.EVENTS_MAXLEN,
            ]
            job.observe_queue_wait()
            self._claimed.append(_Claimed(job, queues[key.decode()], execution, bool(has_dependents)))
        self._start_script(args=args)

    def _run_claimed(self, max_jobs: int | None, completed: int) -> int:
        ran = 0
        started = time.perf_counter()
        while self._claimed and not self._stop_requested:
            if max_jobs is not None and completed + ran >= max_jobs:
                break
            claimed = self._claimed.popleft()
            self._run(claimed)
            ran += 1
            if self._finished and time.perf_counter() - self._pending_since > FLUSH_AFTER:
                self._flush()
        if ran:
            per_job = (time.perf_counter() - started) / ran
            self._batch_size = max(1, min(PREFETCH_MAX, int(BATCH_SECONDS / max(per_job, 1e-6))))
        return ran

    # One job.

    def _run(self, claimed: _Claimed) -> None:
        job, queue, execution = claimed.job, claimed.queue, claimed.execution
        if _isolated(job):
            # Its own work-horse, as RQ's forking worker runs it: give up the claim's execution.
            self._flush()
            with self.connection.pipeline() as pipe:
                self.cleanup_execution(job, pipe, execution)
                pipe.execute()
            super().execute_job(job, queue)
            return
        self.executions.clear()
        self.execution = execution
        self._running = claimed
        self.procline(f"Processing {job.id} from {job.origin} since {time.time()}")
        try:
            job.started_at = now()
            timeout = job.timeout or self.queue_class.DEFAULT_TIMEOUT
            with self.death_penalty_class(timeout, JobTimeoutException, job_id=job.id):
                result = job.perform()
            job.refuse_callbacks()  # a callback forged into Redis fails the job, as RQ's own path would
        except BaseException:
            self._running = None
            self._flush()
            self._finalize_failure(job, queue, execution, sys.exc_info())
        else:
            self._running = None
            plain = not (claimed.has_dependents or isinstance(result, rq.Retry) or job.repeats_left)
            if not plain or job.get_result_ttl(self.default_result_ttl) == 0:
                self._flush()
                self._finalize_success(job, queue, execution, result)
            else:
                self._finish(claimed, result)
        finally:
            self.executions.clear()

    def _finish(self, claimed: _Claimed, result: Any) -> None:
        """Record a success as RQ does, with the batch's next write."""
        job, execution = claimed.job, claimed.execution
        self._finished_jobs[job.id] = (claimed, result)
        job.ended_at = now()
        job._result = result
        job._status = JobStatus.FINISHED
        ttl = job.get_result_ttl(self.default_result_ttl)
        try:
            value = "" if result is None else b64encode(self.serializer.dumps(result)).decode()
        except Exception:  # noqa: BLE001 - RQ stores the same placeholder for what it cannot serialize
            value = b64encode(self.serializer.dumps(UNSERIALIZABLE_RETURN_VALUE_PAYLOAD)).decode()
        if not self._finished:
            self._pending_since = time.perf_counter()
        self._finished += [
            *_execution_keys(job, execution),
            job.finished_job_registry.key,
            "+inf" if ttl == -1 else current_timestamp() + ttl,
            Result.get_key(job.id),
            ttl,
            utcformat(job.ended_at),
            value,
            execution.created_at.timestamp(),
            job.ended_at.timestamp(),
            (job.ended_at - job.started_at).total_seconds(),
            events.events_key(job.id),
            json.dumps({"status": "finished", "at": time.time()}),
            events.EVENTS_MAXLEN,
            *events.keys_of(job.id)[1:],
            f"{job.dependents_key} {job.dependencies_key}",
        ]

    def _flush(self) -> None:
        finished, jobs = self._finished, self._finished_jobs
        if not finished and not (self._tally.increments or self._tally.sums):
            return
        with self.connection.pipeline(transaction=False) as pipe:
            if finished:
                self._finish_script(args=[self.key, self.executions_key, self.name, *finished], client=pipe)
            self._tally.write(pipe)
            answers = pipe.execute()  # on an error, the results stay pending for the next try
        self._finished, self._finished_jobs = [], {}
        deferred = {job_id.decode() for job_id in answers[0]} if finished else set()
        with metrics.tallied(self._tally):  # counted with the next write
            for job_id, (claimed, result) in jobs.items():
                if job_id in deferred:
                    claimed.job.ended_at = None
                    self._finalize_success(claimed.job, claimed.queue, claimed.execution, result)
                else:
                    claimed.job.record_end("finished")

    def _write_tally(self) -> None:
        if self._tally.increments or self._tally.sums:
            with self.connection.pipeline(transaction=False) as pipe:
                self._tally.write(pipe)
                pipe.execute()

    # Stop, shutdown and heartbeats.

    def kill_horse(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """A stop request or a shutdown's end: interrupt the task running in this process."""
        if self._running is not None:
            signal.pthread_kill(threading.main_thread().ident, _INTERRUPT)
        else:
            super().kill_horse(sig)

    def _interrupt_running_job(self, signum: int, frame: Any) -> None:
        if self._running is not None:
            raise JobInterrupted(f"job {self._running.job.id} interrupted on request")

    def request_force_stop(self, signum: int, frame: Any) -> None:
        if self._running is not None:
            self._handing_back = self._running.job.id
            self._stop_requested = True
            raise JobInterrupted("the worker is stopping now")
        super().request_force_stop(signum, frame)

    def _stop_horse_for_hand_back(self, job_id: str) -> None:
        if self._running is not None and self._running.job.id == job_id:
            self._handing_back = job_id
            self.kill_horse()
        else:
            super()._stop_horse_for_hand_back(job_id)

    def _hand_back_claimed(self) -> None:
        """Claimed jobs that never started go back to the front of their queues, in order."""
        while self._claimed:
            claimed = self._claimed.pop()
            try:
                self._hand_back(claimed.job, claimed.execution)
            except Exception:
                self.log.exception("could not hand back job %s; the sweeper will", claimed.job.id)

    def _start_heartbeats(self) -> None:
        """Keep the running and claimed jobs alive in Redis while the main thread runs a task."""

        def beat() -> None:
            while not self._beats_stop.wait(self.job_monitoring_interval):
                holding = [claim for claim in (self._running, *list(self._claimed)) if claim is not None]
                if not holding:
                    continue
                try:
                    with self.connection.pipeline() as pipe:
                        self.heartbeat(self.job_monitoring_interval + 60, pipeline=pipe)
                        for claim in holding:
                            started = claim.job.started_at
                            working = (now() - started).total_seconds() if started else 0.0
                            ttl = int(self.get_heartbeat_ttl(claim.job, working_time=working))
                            claim.execution.heartbeat(claim.job.started_job_registry, ttl, pipeline=pipe)
                        pipe.execute()
                except Exception:  # noqa: BLE001 - the next beat tries again; recovery covers a dead worker
                    self.log.warning("worker %s: a heartbeat failed", self.name, exc_info=True)

        threading.Thread(target=beat, name="offload-heartbeats", daemon=True).start()


def _isolated(job: rq.job.Job) -> bool:
    try:
        return job.task.isolated
    except Exception:  # noqa: BLE001 - unknown task, unreadable payload: performing it fails the job visibly
        return False


def _keep_to_cpus(setting: str) -> None:
    """``spare``: every CPU this process may use but the first, so the web always finds one free."""
    if setting not in ("all", "spare"):
        raise SystemExit(f"OFFLOAD_WORKER_CPUS must be 'all' or 'spare', not {setting!r}")
    if setting == "all" or not hasattr(os, "sched_setaffinity"):
        return
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) > 1:
        os.sched_setaffinity(0, allowed[1:])


def _lower_priority() -> None:
    if WORKER_NICE != "idle" and not (WORKER_NICE.isdigit() and int(WORKER_NICE) <= 19):
        raise SystemExit(f"OFFLOAD_WORKER_NICE must be 'idle' or a whole number from 0 to 19, not {WORKER_NICE!r}")
    if WORKER_NICE == "idle" and hasattr(os, "sched_setscheduler"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        group_nice = 19
    elif WORKER_NICE != "idle" and int(WORKER_NICE) > 0:
        group_nice = int(WORKER_NICE)
        os.nice(group_nice)
    else:
        return
    # Linux's autogroup (on by default) first shares the CPU between sessions, and honcho,
    # make run, and most supervisors start each process in a session of its own: there a
    # nice worker still gets as much CPU as the web, and niceness alone changed nothing
    # (make bench: /healthz p99 8 ms under two burning workers at nice 10 or SCHED_IDLE,
    # 1.8 ms idle; with the group lowered 5 ms at nice 10 and 2.3-4 ms at SCHED_IDLE, as with
    # bare busy loops at SCHED_IDLE).
    # Lower the session's group too, but only when the session holds this worker alone.
    if _alone_in_session():
        try:
            Path("/proc/self/autogroup").write_text(str(group_nice))
        except OSError:
            pass  # no autogroup here (not Linux, or a kernel without it)


def _alone_in_session() -> bool:
    """True when no process but this one (and the ``sh -c`` leading its session) is in its session."""
    session, mine = os.getsid(0), {os.getpid(), os.getppid()}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after the name: state, ppid, pgrp, session
        except OSError:
            continue
        if int(fields[3]) == session and int(stat.parent.name) not in mine:
            return False
    if session == os.getpid():
        return True
    try:  # led by the parent: only a non-interactive `sh -c` that exits with this worker will do
        argv = Path(f"/proc/{session}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return session == os.getppid() and len(argv) > 1 and argv[1] == b"-c"


def _execution_keys(job: rq.job.Job, execution: Execution) -> list[str]:
    """The first six arguments of _START and _FINISH for one job: names from RQ's own objects."""
    return [
        job.key,
        job.id,
        execution.key,
        execution.id,
        ExecutionRegistry(job.id, job.connection).key,
        job.started_job_registry.key,
    ]
