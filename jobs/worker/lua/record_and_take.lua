-- One round trip per job: record the successes not written yet, then take the next job from
-- the queues (in priority order) and start it, atomically, so a job is only ever `queued` in
-- its queue or `started` by a worker that runs it now: never taken ahead and held.
--
-- Arguments are JSON objects with named fields, built by InProcessWorker
-- (jobs/worker/inprocess.py: _constants, _take_argument, _finish) and decoded here with cjson.
-- Times stay strings: Lua would print a number with 14 digits and lose the microseconds.
-- KEYS: the worker's queue keys, highest priority first.
-- ARGV[1]: the worker's constants (the same for every call). ARGV[2]: how to start the next job,
-- or '' to take nothing. ARGV[3..]: one object per success to record (see record_success).
-- Returns {outcome, deferred, lost, taken}: outcome is 'none' (nothing to take was asked),
-- 'started', 'empty' (no job waits in a queue that is not paused) or 'suspended' (`rq suspend` holds: nothing taken);
-- deferred: successes that gained dependents while they ran (RQ's own path records them);
-- lost: successes whose execution is gone (recovery re-queued them while this worker was
-- frozen or cut off: the re-run records the outcome, this one is dropped); taken: the started
-- job as {queue key, id, has dependents, hash as it was queued (flat)}.

local C = cjson.decode(ARGV[1])

-- A key name from a template RQ's own objects produced at start-up: {job}, {exec}, {queue}.
local function fill(template, vars)
  return (template:gsub('{(%a+)}', function(name) return vars[name] end))
end

-- What RQ writes when a job succeeds (Job._handle_success with its Result, Job.cleanup, the
-- execution's deletion, the worker's counters) and Offload's final event.
local function record_success(done)
  local ttl = tonumber(done.ttl)
  redis.call('HSET', done.job_key, 'status', 'finished', 'ended_at', done.ended_utc)
  local result = {'type', C.success_type, 'worker_name', C.worker_name}
  if done.value ~= '' then
    table.insert(result, 'return_value')
    table.insert(result, done.value)
  end
  for _, field in ipairs({'execution_id', done.exec_id, 'execution_started_at', done.started_ts,
                          'execution_ended_at', done.ended_ts}) do
    table.insert(result, field)
  end
  redis.call('XADD', done.results_key, 'MAXLEN', '~', C.results_maxlen, '*', unpack(result))
  if ttl == -1 then
    redis.call('PERSIST', done.results_key)
  else
    redis.call('EXPIRE', done.results_key, ttl)
  end
  redis.call('ZADD', done.finished_key, done.finished_score, done.job_id)
  if ttl > 0 then
    redis.call('EXPIRE', done.job_key, ttl)
    redis.call('EXPIRE', done.dependents_key, ttl)
    redis.call('EXPIRE', done.dependencies_key, ttl)
  end
  local composite = done.job_id .. ':' .. done.exec_id
  redis.call('DEL', done.exec_key)
  redis.call('ZREM', done.wip_key, composite)
  redis.call('ZREM', done.execs_key, done.exec_id)
  redis.call('SREM', C.worker_execs, composite)
  redis.call('HINCRBY', C.worker_key, 'successful_job_count', 1)
  redis.call('HINCRBYFLOAT', C.worker_key, 'total_working_time', done.working)
  redis.call('XADD', done.events_key, 'MAXLEN', '~', C.events_maxlen, '*', 'type', 'status', 'data', done.event)
  for _, key in ipairs({done.events_key, unpack(done.side_keys)}) do  -- Offload's keys: the job's TTL
    if ttl > 0 then redis.call('EXPIRE', key, ttl) else redis.call('PERSIST', key) end
  end
end

-- Start the job `job_id` (popped from `queue_key`): what RQ writes when a worker starts a job
-- (Execution.create, job.prepare_for_execution, Job.heartbeat) and Offload's event.
local function start(want, queue_key, job_id, job_key, origin)
  local exec_id, now_ts, now_utc = want.exec_id, want.now_ts, want.now_utc
  local queued = redis.call('HGETALL', job_key)
  -- RQ's Worker.get_heartbeat_ttl: the monitoring interval, or the job's timeout if shorter, plus 60.
  local timeout = tonumber(redis.call('HGET', job_key, 'timeout') or '')
  local ttl = C.interval
  if timeout and timeout > 0 and timeout < ttl then ttl = math.floor(timeout) end
  ttl = ttl + C.margin
  if want.mark_busy then
    redis.call('HSET', C.worker_key, 'state', 'busy', 'last_heartbeat', now_utc)
    redis.call('EXPIRE', C.worker_key, C.worker_ttl)
  end
  local composite = job_id .. ':' .. exec_id
  local vars = {job = job_id, exec = exec_id, queue = origin}
  local exec_key, execs_key = fill(C.exec_template, vars), fill(C.execs_template, vars)
  redis.call('HSET', exec_key, 'id', exec_id, 'job_id', job_id, 'created_at', now_ts,
             'last_heartbeat', now_ts, 'worker_name', C.worker_name)
  redis.call('EXPIRE', exec_key, ttl)
  redis.call('ZADD', execs_key, tonumber(now_ts) + ttl + C.margin, exec_id)
  redis.call('EXPIRE', execs_key, ttl + C.margin)
  redis.call('ZADD', fill(C.wip_template, vars), tonumber(want.now_int) + ttl, composite)
  redis.call('SADD', C.worker_execs, composite)
  redis.call('EXPIRE', C.worker_execs, ttl + C.margin)
  redis.call('HSET', job_key, 'last_heartbeat', now_utc, 'status', 'started', 'started_at', now_utc,
             'worker_name', C.worker_name)
  redis.call('PERSIST', job_key)
  local events_key = fill(C.events_template, vars)
  local events_ttl = tonumber(redis.call('HGET', job_key, 'failure_ttl') or '') or C.events_ttl
  redis.call('XADD', events_key, 'MAXLEN', '~', C.events_maxlen, '*', 'type', 'status', 'data', want.event)
  redis.call('EXPIRE', events_key, events_ttl)
  return {queue_key, job_id, redis.call('EXISTS', fill(C.dependents_template, vars)), queued}
end

-- Is the queue with this key paused (jobs.fleet.queue_control)? `any_paused` saves the lookups when none is.
local any_paused = false
local function is_paused(queue_key)
  return any_paused and redis.call('HEXISTS', C.paused_key, queue_key:sub(#C.queue_prefix + 1)) == 1
end

-- The next job that may start: popped from the queues in order (or the one the worker popped
-- while idle), skipping paused queues and ids whose job is gone or no longer queued.
local function take(want)
  local popped_queue, popped_id = want.popped_queue, want.popped_id
  if redis.call('EXISTS', C.suspended_key) == 1 then
    if popped_id ~= '' then redis.call('LPUSH', popped_queue, popped_id) end  -- back to the front
    return 'suspended', nil
  end
  any_paused = redis.call('EXISTS', C.paused_key) == 1
  if popped_id ~= '' and is_paused(popped_queue) then  -- paused while the worker waited on it
    redis.call('LPUSH', popped_queue, popped_id)
    popped_id = ''
  end
  for _ = 1, 100 do
    local queue_key, job_id = nil, nil
    if popped_id ~= '' then
      queue_key, job_id = popped_queue, popped_id
      popped_id = ''
    else
      for _, key in ipairs(KEYS) do
        if not is_paused(key) then
          job_id = redis.call('LPOP', key)
          if job_id then queue_key = key break end
        end
      end
      if not job_id then return 'empty', nil end
    end
    local job_key = C.job_prefix .. job_id
    local fields = redis.call('HMGET', job_key, 'status', 'origin')
    if fields[1] == 'queued' and fields[2] then
      return 'started', start(want, queue_key, job_id, job_key, fields[2])
    end
  end
  return 'empty', nil
end

local deferred, lost = {}, {}
for n = 3, #ARGV do
  local done = cjson.decode(ARGV[n])
  if redis.call('EXISTS', done.exec_key) == 0 then
    table.insert(lost, done.job_id)
  elseif redis.call('EXISTS', done.dependents_key) == 1 then
    table.insert(deferred, done.job_id)
  else
    record_success(done)
  end
end
local outcome, taken = 'none', false
if ARGV[2] ~= '' then outcome, taken = take(cjson.decode(ARGV[2])) end
return {outcome, deferred, lost, taken or false}
