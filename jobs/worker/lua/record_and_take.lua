-- One round trip per job: record the successes not written yet, then take the next job from
-- the queues (in priority order) and start it, atomically, so a job is only ever `queued` in
-- its queue or `started` by a worker that runs it now: never taken ahead and held.
--
-- Arguments are plain strings at fixed places (no JSON to decode on every call); the names
-- below are the ones InProcessWorker gives them (jobs/worker/inprocess.py, STEP_* lists).
-- KEYS: the worker's queue keys, highest priority first.
-- ARGV[1..15]: the worker's constants; ARGV[16..24]: the start of the next job (take = '1'
-- asks for one); ARGV[25..]: 22 fields per success to record (see record_success).
-- Returns {outcome, deferred, lost, taken}: outcome is 'none' (nothing to take was asked),
-- 'started', 'empty' (no job waits) or 'suspended' (`rq suspend` holds: nothing taken);
-- deferred: successes that gained dependents while they ran (RQ's own path records them);
-- lost: successes whose execution is gone (recovery re-queued them while this worker was
-- frozen or cut off: the re-run records the outcome, this one is dropped); taken: the started
-- job as {queue key, id, has dependents, hash as it was queued (flat)}.

local worker_key, worker_execs, worker_name, results_maxlen, suspended_key = unpack(ARGV, 1, 5)
local job_prefix, exec_template, execs_template, wip_template, events_template = unpack(ARGV, 6, 10)
local worker_ttl, interval, margin = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])
local default_events_ttl, events_maxlen = ARGV[14], ARGV[15]
local SUCCESS_AT, SUCCESS_FIELDS = 25, 22

-- A key name from a template RQ's own objects produced at start-up: {job}, {exec}, {queue}.
local function fill(template, vars)
  return (template:gsub('{(%a+)}', function(name) return vars[name] end))
end

-- What RQ writes when a job succeeds (Job._handle_success with its Result, Job.cleanup, the
-- execution's deletion, the worker's counters) and Offload's final event.
local function record_success(n)
  local job_key, job_id, exec_key, exec_id, execs_key, wip_key, finished_key, finished_score = unpack(ARGV, n, n + 7)
  local results_key, ttl, ended_utc, value, started_ts, ended_ts, working = unpack(ARGV, n + 8, n + 14)
  local events_key, event = ARGV[n + 15], ARGV[n + 16]
  ttl = tonumber(ttl)
  redis.call('HSET', job_key, 'status', 'finished', 'ended_at', ended_utc)
  if value ~= '' then
    redis.call('XADD', results_key, 'MAXLEN', '~', results_maxlen, '*', 'type', '1', 'worker_name', worker_name,
               'return_value', value, 'execution_id', exec_id, 'execution_started_at', started_ts,
               'execution_ended_at', ended_ts)
  else
    redis.call('XADD', results_key, 'MAXLEN', '~', results_maxlen, '*', 'type', '1', 'worker_name', worker_name,
               'execution_id', exec_id, 'execution_started_at', started_ts, 'execution_ended_at', ended_ts)
  end
  if ttl == -1 then
    redis.call('PERSIST', results_key)
  else
    redis.call('EXPIRE', results_key, ttl)
  end
  redis.call('ZADD', finished_key, finished_score, job_id)
  if ttl > 0 then
    redis.call('EXPIRE', job_key, ttl)
    redis.call('EXPIRE', ARGV[n + 20], ttl)  -- dependents
    redis.call('EXPIRE', ARGV[n + 21], ttl)  -- dependencies
  end
  local composite = job_id .. ':' .. exec_id
  redis.call('DEL', exec_key)
  redis.call('ZREM', wip_key, composite)
  redis.call('ZREM', execs_key, exec_id)
  redis.call('SREM', worker_execs, composite)
  redis.call('HINCRBY', worker_key, 'successful_job_count', 1)
  redis.call('HINCRBYFLOAT', worker_key, 'total_working_time', working)
  redis.call('XADD', events_key, 'MAXLEN', '~', events_maxlen, '*', 'type', 'status', 'data', event)
  for _, key in ipairs({events_key, ARGV[n + 17], ARGV[n + 18], ARGV[n + 19]}) do  -- Offload's: the job's TTL
    if ttl > 0 then redis.call('EXPIRE', key, ttl) else redis.call('PERSIST', key) end
  end
end

-- Start the job `job_id` (popped from `queue_key`): what RQ writes when a worker starts a job
-- (Execution.create, job.prepare_for_execution, Job.heartbeat) and Offload's event.
local function start(queue_key, job_id, job_key, origin)
  local mark_busy, exec_id, now_ts, now_utc, now_int, event = unpack(ARGV, 17, 22)
  local queued = redis.call('HGETALL', job_key)
  -- RQ's Worker.get_heartbeat_ttl: the monitoring interval, or the job's timeout if shorter, plus 60.
  local timeout = tonumber(redis.call('HGET', job_key, 'timeout') or '')
  local ttl = interval
  if timeout and timeout > 0 and timeout < ttl then ttl = math.floor(timeout) end
  ttl = ttl + margin
  if mark_busy == '1' then
    redis.call('HSET', worker_key, 'state', 'busy', 'last_heartbeat', now_utc)
    redis.call('EXPIRE', worker_key, worker_ttl)
  end
  local composite = job_id .. ':' .. exec_id
  local vars = {job = job_id, exec = exec_id, queue = origin}
  local exec_key, execs_key = fill(exec_template, vars), fill(execs_template, vars)
  redis.call('HSET', exec_key, 'id', exec_id, 'job_id', job_id, 'created_at', now_ts,
             'last_heartbeat', now_ts, 'worker_name', worker_name)
  redis.call('EXPIRE', exec_key, ttl)
  redis.call('ZADD', execs_key, tonumber(now_ts) + ttl + margin, exec_id)
  redis.call('EXPIRE', execs_key, ttl + margin)
  redis.call('ZADD', fill(wip_template, vars), tonumber(now_int) + ttl, composite)
  redis.call('SADD', worker_execs, composite)
  redis.call('EXPIRE', worker_execs, ttl + margin)
  redis.call('HSET', job_key, 'last_heartbeat', now_utc, 'status', 'started', 'started_at', now_utc,
             'worker_name', worker_name)
  redis.call('PERSIST', job_key)
  local events_key = fill(events_template, vars)
  local events_ttl = tonumber(redis.call('HGET', job_key, 'failure_ttl') or '') or default_events_ttl
  redis.call('XADD', events_key, 'MAXLEN', '~', events_maxlen, '*', 'type', 'status', 'data', event)
  redis.call('EXPIRE', events_key, events_ttl)
  return {queue_key, job_id, redis.call('EXISTS', job_key .. ':dependents'), queued}
end

-- The next job that may start: popped from the queues in order (or the one the worker popped
-- while idle, ARGV[23..24]), skipping ids whose job is gone or no longer queued.
local function take()
  local popped_queue, popped_id = ARGV[23], ARGV[24]
  if redis.call('EXISTS', suspended_key) == 1 then
    if popped_id ~= '' then redis.call('LPUSH', popped_queue, popped_id) end  -- back to the front
    return 'suspended', nil
  end
  for _ = 1, 100 do
    local queue_key, job_id = nil, nil
    if popped_id ~= '' then
      queue_key, job_id = popped_queue, popped_id
      popped_id = ''
    else
      for _, key in ipairs(KEYS) do
        job_id = redis.call('LPOP', key)
        if job_id then queue_key = key break end
      end
      if not job_id then return 'empty', nil end
    end
    local job_key = job_prefix .. job_id
    local fields = redis.call('HMGET', job_key, 'status', 'origin')
    if fields[1] == 'queued' and fields[2] then
      return 'started', start(queue_key, job_id, job_key, fields[2])
    end
  end
  return 'empty', nil
end

local deferred, lost = {}, {}
for n = SUCCESS_AT, #ARGV, SUCCESS_FIELDS do
  local job_id, exec_key = ARGV[n + 1], ARGV[n + 2]
  if redis.call('EXISTS', exec_key) == 0 then
    table.insert(lost, job_id)
  elseif redis.call('EXISTS', ARGV[n + 20]) == 1 then
    table.insert(deferred, job_id)
  else
    record_success(n)
  end
end
local outcome, taken = 'none', false
if ARGV[16] == '1' then outcome, taken = take() end
return {outcome, deferred, lost, taken or false}
