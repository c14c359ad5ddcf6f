"""The worker class the Procfile runs: jobs in the worker process, one round trip per job.

RQ's default worker forks a work-horse per job and spends about twenty Redis round trips
on each one; a no-op job costs ~13 ms of CPU, so two processes drain ~175 jobs/s. This
class keeps RQ's records as RQ writes them (the same job hashes, executions, registries
and results, so rq-dashboard, ``rq info`` and the API read them unchanged) and changes how
they are written:

- **One script per job** (``lua/record_and_take.lua``): it records the last job's success, takes the
  next job from the queues in priority order and starts it, atomically. A job is only ever
  ``queued`` in its queue or ``started`` by a worker that runs it at that moment: never
  taken ahead and held, so a cancel, a delete or ``rq suspend`` always reaches it in time.
- **Run in the process.** No fork: the task runs in the worker process, with RQ's SIGALRM
  timeout; a heartbeat thread keeps the running job alive in Redis. Tasks marked
  ``@task(isolated=True)`` still run in a forked work-horse.
- **Failures, retries, stops, rate-limited jobs and jobs with dependents** take RQ's own path.

A job whose worker dies is recovered by ``jobs.worker.recovery``: it runs again.
"""

from __future__ import annotations

import gc
import json
import signal
import sys
import threading
import time
from base64 import b64encode
from datetime import datetime
from pathlib import Path
from typing import Any, cast
from uuid import uuid4

import hiredis
import rq
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq.command import parse_payload
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT, UNSERIALIZABLE_RETURN_VALUE_PAYLOAD
from rq.exceptions import StopRequested
from rq.executions import Execution, ExecutionRegistry
from rq.job import JobStatus
from rq.results import Result
from rq.suspension import WORKERS_SUSPENDED, is_suspended
from rq.timeouts import JobTimeoutException
from rq.utils import current_timestamp, now, utcformat
from rq.worker.base import WorkerStatus

from jobs.connection import binary
from jobs.fleet import queue_control
from jobs.job import TaskJob
from jobs.records import job_events, job_metrics
from jobs.worker.forking import ForkingWorker, printable
from jobs.worker.placement import keep_to_cpus, lower_priority

# Metric tallies are written at least this often.
FLUSH_AFTER = 0.05
SUSPENSION_CHECK_EVERY = 1.0
# Packed constants are kept for this many queue orders (one with the default strategy).
PACKED_ORDERS_KEPT = 64
# RQ keeps an execution in the job's execution registry this long past its heartbeat TTL
# (ExecutionRegistry.add); record_and_take.lua writes the same score.
RQ_EXECUTION_MARGIN = 60
# RQ's Result.save keeps this many results per job (``xadd(..., maxlen=10)``).
RQ_RESULTS_MAXLEN = 10
# RQ's worker beats with ``job_monitoring_interval + 60`` while a job runs (maintain_heartbeats).
RQ_BUSY_BEAT_MARGIN = 60
_INTERRUPT = signal.SIGUSR1
_LUA = Path(__file__).with_name("lua")


class JobInterrupted(BaseException):  # noqa: N818 - it reads as what happened to the job
    """Raised inside a running task that was asked to stop (or handed back at shutdown).

    A BaseException, so that a task's ``except Exception`` does not swallow the request.
    """


class _Running:
    __slots__ = ("job", "queue", "execution", "has_dependents")

    def __init__(self, job: TaskJob, queue: rq.Queue, execution: Execution, has_dependents: bool) -> None:
        self.job, self.queue, self.execution, self.has_dependents = job, queue, execution, has_dependents


class InProcessWorker(ForkingWorker):
    """Offload's worker: in-process execution, one scripted round trip per job."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._running: _Running | None = None
        self._interruptible = False
        self._finished: list[str] = []  # the successes not written yet, one JSON object each
        self._finished_jobs: dict[str, tuple[_Running, Any]] = {}
        self._tally = job_metrics.Tally()
        self._tally_written = 0.0
        self._step_source = (_LUA / "record_and_take.lua").read_text()
        self._step_sha = ""
        self._step_connection: Any = None
        self._beats_stop = threading.Event()
        self._execution_id, self._stamp = "", now()
        self._step_constants = [self._constants()]
        self._no_take = [""]
        self._step_packed: dict[tuple[str, ...], tuple[int, bytes]] = {}

    def _constants(self) -> str:
        """record_and_take.lua's ARGV[1]: what stays the same for this worker. Key names and
        formats come from RQ's own objects at start-up, never copied; the three numbers RQ keeps
        as literals (a result stream's length, an execution's margin, the busy beat's margin)
        are fenced by tests/test_worker_guards.py."""
        return json.dumps(
            {
                "worker_key": self.key,
                "worker_execs": self.executions_key,
                "worker_name": self.name,
                "results_maxlen": RQ_RESULTS_MAXLEN,
                "success_type": str(Result.Type.SUCCESSFUL.value),
                "suspended_key": WORKERS_SUSPENDED,
                "paused_key": queue_control.PAUSED_KEY,
                "queue_prefix": self.queue_class.redis_queue_namespace_prefix,
                "job_prefix": self.job_class.redis_job_namespace_prefix,
                "exec_template": Execution("{exec}", "{job}", self.connection).key,
                "execs_template": ExecutionRegistry("{job}", self.connection).key,
                "wip_template": rq.registry.StartedJobRegistry("{queue}", connection=self.connection).key,
                "dependents_template": self.job_class.dependents_key_for("{job}"),
                "events_template": job_events.events_key("{job}"),
                "worker_ttl": self.job_monitoring_interval + RQ_BUSY_BEAT_MARGIN,
                "interval": self.job_monitoring_interval,
                "margin": RQ_EXECUTION_MARGIN,
                "events_ttl": job_events.DEFAULT_TTL,
                "events_maxlen": job_events.EVENTS_MAXLEN,
            }
        )

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

    # The loop: RQ's ``work`` skeleton.

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
        keep_to_cpus()
        lower_priority()  # before the worker registers: a registered worker runs as it will
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
                    with job_metrics.tallied(self._tally):
                        outcome = self._take_next(burst, max_idle_time)
                        if outcome is None:
                            break
                        if outcome == "suspended":  # wait here, visibly, until `rq resume`
                            self.check_for_suspension(burst)
                            checked_suspension = time.monotonic()
                            continue
                        if self._running is not None:
                            self._run(self._running)
                            completed += 1
                    backoff = 1.0
                except (RedisConnectionError, RedisTimeoutError) as error:
                    # As RQ's worker does: wait for Redis and go on. A job this worker could not
                    # record is recovered and runs again.
                    self.log.error("worker %s: cannot reach Redis (%s); retrying in %.0f s", self.name, error, backoff)
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 30.0)
                    self._ensure_registered()
                    continue
                if max_jobs is not None and completed >= max_jobs:
                    self.log.info("Worker %s: finished executing %d jobs, quitting", self.name, completed)
                    break
        except StopRequested:
            pass
        except SystemExit:
            raise
        except Exception:
            self.log.exception("worker %s: unhandled error, quitting", self.name)
        finally:
            try:
                self._flush()
                self._write_tally()
            except RedisError:
                self.log.exception("worker %s: could not record its last jobs; they will be recovered", self.name)
            self._beats_stop.set()
            if self._step_connection is not None:
                self._step_connection.disconnect()
            self.teardown()
        return bool(completed)

    def _take_next(self, burst: bool, max_idle_time: int | None) -> str | None:
        """Take and start the next job (it is then ``self._running``): 'started', 'suspended',
        or None when the worker should stop (burst mode and nothing to do, idle too long)."""
        keys = [queue.key for queue in self._ordered_queues]
        outcome = self._step(keys)
        while outcome == "empty":
            self._write_tally()
            if self._state != WorkerStatus.IDLE:  # as RQ's worker shows itself between jobs
                self.set_state(WorkerStatus.IDLE)
            if burst:
                self.log.info("Worker %s: done, quitting", self.name)
                return None
            self.procline(f"Listening on {','.join(self.queue_names())}")
            popped = self._wait_for_job(keys, max_idle_time)
            if popped is None:
                return None
            outcome = self._step(keys, popped=[part.decode() for part in popped])
        return outcome

    def _wait_for_job(self, keys: list[str], max_idle_time: int | None) -> tuple[bytes, bytes] | None:
        """Block until a job arrives. BLPOP takes it out of its queue; record_and_take.lua then starts it at
        once, or pushes it back if RQ was suspended meanwhile (the sweeper finds it should the
        worker die in between)."""
        idle_since = time.monotonic()
        every_key = keys
        while not self._stop_requested:
            self.heartbeat()
            if self.should_run_maintenance_tasks:
                self.run_maintenance_tasks()
            if is_suspended(self.connection):  # nothing is taken while suspended: wait, visibly
                self.check_for_suspension(False)
                continue
            timeout = self.dequeue_timeout
            paused = queue_control.paused(self.connection)
            if paused:  # wait on the other queues, and look again soon for a resume
                timeout = queue_control.PAUSE_CHECK_EVERY
                open_keys = [queue.key for queue in self._ordered_queues if queue.name not in paused]
                if not open_keys:
                    self._stopped_wait(queue_control.PAUSE_CHECK_EVERY)
                    if max_idle_time is not None and time.monotonic() - idle_since >= max_idle_time:
                        return None
                    continue
                keys = open_keys
            else:
                keys = every_key
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
                self._ensure_registered()
                continue
            if popped is not None:
                key, value = popped
                return binary(key), binary(value)
        return None

    def _stopped_wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``, waking early when a stop is requested."""
        deadline = time.monotonic() + seconds
        while not self._stop_requested and time.monotonic() < deadline:
            time.sleep(0.05)

    def _step(self, keys: list[str], popped: list[str] | None = None) -> str:
        """One call of record_and_take.lua: the successes not written yet, then (with ``keys``) take and
        start the next job. A direct call, not a pipeline: redis-py checks a pipeline's scripts
        with SCRIPT EXISTS first, a second round trip for every job."""
        finished, jobs = self._finished, self._finished_jobs
        take = self._take_argument(popped) if keys else self._no_take
        outcome, deferred, lost, taken = self._call_step(keys, [*take, *finished])
        self._finished, self._finished_jobs = [], {}  # on an error they stay pending, for the next try
        if jobs:
            self._after_finish(jobs, deferred, lost)
        if time.monotonic() - self._tally_written > FLUSH_AFTER:
            self._write_tally()
        outcome = outcome.decode()
        if outcome == "started":
            self._started(taken)
        return outcome

    def _call_step(self, keys: list[str], args: list[str]) -> Any:
        """EVALSHA on a connection of its own, the command packed here: redis-py's pool and
        retry wrapper cost ~40 us a call and its packer ~30 us for record_and_take.lua's ~60 arguments,
        together a third of a no-op job's time (one script call per job makes that count).
        What stays the same (the script, the queue keys, the worker's constants) is packed
        once."""
        if self._step_connection is None:
            self._step_connection = self.connection.connection_pool.make_connection()
            self._step_sha = self.connection.script_load(self._step_source)
            self._step_packed.clear()
        connection = self._step_connection
        fixed = self._step_packed.get(tuple(keys))
        if fixed is None:
            if len(self._step_packed) >= PACKED_ORDERS_KEPT:  # --dequeue-strategy random: orders vary
                self._step_packed.clear()
            fixed = self._step_packed[tuple(keys)] = _arguments(
                ["EVALSHA", self._step_sha, str(len(keys)), *keys, *self._step_constants]
            )
        count, fixed_part = fixed
        count_more, more = _arguments(args)
        try:
            connection.send_packed_command(
                [b"*%d\r\n%b%b" % (count + count_more, fixed_part, more)], check_health=False
            )
            return connection.read_response()
        except NoScriptError:  # Redis restarted without its scripts
            self._step_sha = self.connection.script_load(self._step_source)
            self._step_packed.clear()
            return self._call_step(keys, args)
        except (RedisConnectionError, RedisTimeoutError):
            connection.disconnect()
            raise

    def _take_argument(self, popped: list[str] | None) -> list[str]:
        """record_and_take.lua's ARGV[2]: what it needs to start a job. The execution id and
        start time are kept for ``_started``."""
        stamp = self._stamp = now()
        self._execution_id = uuid4().hex
        queue, job_id = popped or ("", "")
        return [
            json.dumps(
                {
                    "mark_busy": self._state != WorkerStatus.BUSY,
                    "exec_id": self._execution_id,
                    "now_ts": repr(stamp.timestamp()),
                    "now_utc": utcformat(stamp),
                    "now_int": str(current_timestamp()),
                    "event": json.dumps({"status": "started", "at": time.time(), "worker": self.name}),
                    "popped_queue": queue,
                    "popped_id": job_id,
                }
            )
        ]

    def _started(self, taken: list[Any]) -> None:
        """The job record_and_take.lua started, as this process runs it."""
        key, job_id, has_dependents, raw = taken
        queue = next(queue for queue in self._ordered_queues if queue.key == key.decode())
        self.reorder_queues(reference_queue=queue)  # --dequeue-strategy round_robin / random, as RQ does
        stamp = self._stamp
        self._state = WorkerStatus.BUSY
        # The worker runs TaskJob's own steps (allowlist, queue wait, end record): --job-class jobs.job.TaskJob.
        job = cast(TaskJob, self.job_class(job_id.decode(), connection=self.connection, serializer=self.serializer))
        execution = Execution(self._execution_id, job.id, self.connection, self.name)
        execution.created_at = execution.last_heartbeat = stamp
        execution._job = job
        running = _Running(job, queue, execution, bool(has_dependents))
        try:
            fields = dict(zip(raw[::2], raw[1::2], strict=True))
            # RQ parses its dates with strptime (~8 us each); fromisoformat reads the same text.
            created, enqueued = fields.pop(b"created_at", None), fields.pop(b"enqueued_at", None)
            job.restore(fields)
            job.created_at = _utc(created) or job.created_at
            job.enqueued_at = _utc(enqueued)
        except Exception as error:  # noqa: BLE001 - a job hash nobody can read fails alone
            job.origin = queue.name
            self.log.error("worker %s: job %s cannot be read (%s); failing it", self.name, job.id, error)
            reason = f"{type(error).__name__}: the job's record cannot be read: {printable(str(error))}"
            self.handle_job_failure(job, queue, exc_string=reason, execution=execution)
            return
        job.redis_server_version = self.get_redis_server_version()
        job.worker_name, job.started_at, job.last_heartbeat = self.name, stamp, stamp
        job._status = JobStatus.STARTED
        job.observe_queue_wait()
        self._running = running

    # One job.

    def _run(self, running: _Running) -> None:
        job, queue, execution = running.job, running.queue, running.execution
        if _isolated(job):
            # Its own work-horse, as RQ's forking worker runs it: give up this execution.
            self._running = None
            self._flush()
            with self.connection.pipeline() as pipe:
                self.cleanup_execution(job, pipe, execution)
                pipe.execute()
            super().execute_job(job, queue)
            return
        self.executions.clear()
        self.execution = execution
        self.procline(f"Processing {job.id} from {job.origin} since {time.time()}")
        try:
            try:
                job.started_at = now()
                timeout = job.timeout or self.queue_class.DEFAULT_TIMEOUT
                with self.death_penalty_class(timeout, JobTimeoutException, job_id=job.id):
                    self._interruptible = True
                    result = job.perform()
                    self._interruptible = False
                job.refuse_callbacks()  # a callback forged into Redis fails the job, as RQ's own path would
            except BaseException:
                self._interruptible = False
                self._running = None
                self._flush()
                self._record(running, lambda: self._finalize_failure(job, queue, execution, sys.exc_info()))
            else:
                self._running = None
                plain = not (
                    running.has_dependents or isinstance(result, rq.Retry) or job.repeats_left or job.rate_limit_key
                )
                if not plain or job.get_result_ttl(self.default_result_ttl) == 0:
                    self._flush()
                    self._record(running, lambda: self._finalize_success(job, queue, execution, result))
                else:
                    self._record(running, lambda: self._finish(running, result))
        finally:
            self._interruptible = False
            self._running = None
            self.execution = None
            self.executions.clear()

    def _record(self, running: _Running, record: Any) -> None:
        """Record a job's outcome; if that fails for any reason but Redis being away, the job
        fails with that reason instead of taking the worker down."""
        try:
            record()
        except (RedisConnectionError, RedisTimeoutError):
            raise
        except Exception as error:  # noqa: BLE001 - one job's bad data must not stop the worker
            self.log.exception("worker %s: could not record the outcome of job %s", self.name, running.job.id)
            reason = f"{type(error).__name__}: the job's outcome could not be recorded: {printable(str(error))}"
            try:
                self.handle_job_failure(running.job, running.queue, exc_string=reason, execution=running.execution)
            except (RedisConnectionError, RedisTimeoutError):
                raise
            except Exception:  # noqa: BLE001 - left started: recovery runs it again
                self.log.exception("worker %s: could not fail job %s either", self.name, running.job.id)

    def _finish(self, running: _Running, result: Any) -> None:
        """Record a success as RQ does, with the next round trip."""
        job, execution = running.job, running.execution
        job.ended_at = ended = now()
        started = job.started_at or ended  # set by _started before the job ran
        job._result = result
        job._status = JobStatus.FINISHED
        ttl = job.get_result_ttl(self.default_result_ttl)
        try:
            value = "" if result is None else b64encode(self.serializer.dumps(result)).decode()
        except Exception:  # noqa: BLE001 - RQ stores the same placeholder for what it cannot serialize
            value = b64encode(self.serializer.dumps(UNSERIALIZABLE_RETURN_VALUE_PAYLOAD)).decode()
        self._finished.append(  # one success for record_and_take.lua to record
            json.dumps(
                {
                    "job_key": job.key,
                    "job_id": job.id,
                    "exec_key": execution.key,
                    "exec_id": execution.id,
                    "execs_key": ExecutionRegistry(job.id, job.connection).key,
                    "wip_key": job.started_job_registry.key,
                    "finished_key": job.finished_job_registry.key,
                    "finished_score": "+inf" if ttl == -1 else str(current_timestamp() + ttl),
                    "results_key": Result.get_key(job.id),
                    "ttl": ttl,
                    "ended_utc": utcformat(ended),
                    "value": value,
                    "started_ts": repr(execution.created_at.timestamp()),
                    "ended_ts": repr(ended.timestamp()),
                    "working": repr((ended - started).total_seconds()),
                    "events_key": job_events.events_key(job.id),
                    "event": json.dumps({"status": "finished", "at": time.time()}),
                    "side_keys": job_events.keys_of(job.id)[1:],
                    "dependents_key": job.dependents_key,
                    "dependencies_key": job.dependencies_key,
                }
            )
        )
        self._finished_jobs[job.id] = (running, result)

    def _flush(self) -> None:
        if self._finished:
            self._step([])

    def _after_finish(
        self, jobs: dict[str, tuple[_Running, Any]], deferred_ids: list[bytes], lost_ids: list[bytes]
    ) -> None:
        deferred = {job_id.decode() for job_id in deferred_ids}
        lost = {job_id.decode() for job_id in lost_ids}
        with job_metrics.tallied(self._tally):  # counted with the next write
            for job_id, (running, result) in jobs.items():
                if job_id in lost:
                    self.log.warning(
                        "worker %s: job %s finished after it was recovered (this worker was unreachable); "
                        "its re-run records the outcome",
                        self.name,
                        job_id,
                    )
                elif job_id in deferred:
                    running.job.ended_at = None
                    self._record(
                        running, lambda r=running, v=result: self._finalize_success(r.job, r.queue, r.execution, v)
                    )  # noqa: E501
                else:
                    running.job.record_end("finished")

    def _write_tally(self) -> None:
        self._tally_written = time.monotonic()
        if self._tally.increments or self._tally.sums:
            with self.connection.pipeline(transaction=False) as pipe:
                self._tally.write(pipe)
                pipe.execute()

    # Stop, shutdown and heartbeats.

    def kill_horse(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """A stop request or a shutdown's end: interrupt the task running in this process, or
        the isolated task's work-horse. With neither there is nothing to stop."""
        if self._running is not None:
            signal.pthread_kill(threading.main_thread().ident, _INTERRUPT)  # type: ignore[arg-type]
        else:
            super().kill_horse(sig)

    def handle_payload(self, message: Any) -> None:
        """RQ's commands, with ``kill-horse`` reaching a task that runs in this process: RQ's
        handler only acts when there is a work-horse pid. The job then fails as it would
        when its horse is killed."""
        payload = parse_payload(message)
        if payload.get("command") == "kill-horse" and self._running is not None and not self.horse_pid:
            self.log.info("Worker %s: kill horse command: interrupting job %s", self.name, self._running.job.id)
            self.kill_horse()
            return
        super().handle_payload(message)

    def _interrupt_running_job(self, signum: int, frame: Any) -> None:
        if self._running is not None and self._interruptible:
            raise JobInterrupted(f"job {self._running.job.id} interrupted on request")

    def request_force_stop(self, signum: int, frame: Any) -> None:
        if self._running is not None and self._interruptible:
            if (now() - self._shutdown_requested_date).total_seconds() < 1:  # type: ignore[operator]
                self.log.debug("Worker %s: shutdown signal ignored, received twice in less than 1 second", self.name)
                return
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

    def _start_heartbeats(self) -> None:
        """Keep the worker and its running job alive in Redis while the main thread runs a task."""

        def beat() -> None:
            while not self._beats_stop.wait(self.job_monitoring_interval):
                running = self._running
                if running is None:
                    continue
                try:
                    self._ensure_registered()
                    with self.connection.pipeline() as pipe:
                        self.heartbeat(self.job_monitoring_interval + RQ_BUSY_BEAT_MARGIN, pipeline=pipe)
                        started = running.job.started_at
                        working = (now() - started).total_seconds() if started else 0.0
                        ttl = int(self.get_heartbeat_ttl(running.job, working_time=working))
                        running.execution.heartbeat(running.job.started_job_registry, ttl, pipeline=pipe)
                        pipe.execute()
                except Exception:  # noqa: BLE001 - the next beat tries again; recovery covers a dead worker
                    self.log.warning("worker %s: a heartbeat failed", self.name, exc_info=True)

        threading.Thread(target=beat, name="offload-heartbeats", daemon=True).start()


def _utc(text: bytes | None) -> datetime | None:
    """A date as RQ writes it (``utcformat``: ISO 8601 in UTC, ``Z``), read as RQ's ``utcparse``
    reads it."""
    return datetime.fromisoformat(text.decode()) if text else None


def _arguments(args: list[str]) -> tuple[int, bytes]:
    """``args`` as RESP bulk strings, without the array header: (how many, bytes)."""
    packed = hiredis.pack_command(tuple(args))  # type: ignore[arg-type]  # its stub types the argument a 1-tuple
    return len(args), packed[packed.index(b"\r\n") + 2 :]


def _isolated(job: TaskJob) -> bool:
    try:
        return job.task.isolated
    except Exception:  # noqa: BLE001 - unknown task, unreadable payload: performing it fails the job visibly
        return False
