-- One round trip per job: record the successes not written yet, then take the next job from
-- the queues (in priority order) and start it, atomically, so a job is only ever `queued` in
-- its queue or `started` by a worker that runs it now: never taken ahead and held.
--
-- KEYS: the worker's queue keys, highest priority first.
-- ARGV[1]: {worker_key, worker_execs, worker_name, results_maxlen, take (absent: record only)}
-- ARGV[2..]: one success each (see record_success).
-- Returns {outcome, deferred, lost, taken}: outcome is 'none' (nothing to take was asked),
-- 'started', 'empty' (no job waits) or 'suspended' (`rq suspend` holds: nothing taken);
-- deferred: successes that gained dependents while they ran (RQ's own path records them);
-- lost: successes whose execution is gone (the sweeper re-queued them while this worker was
-- frozen or cut off: the re-run records the outcome, this one is dropped); taken: the started
-- job as {queue key, id, has dependents, hash (flat)}.

-- A key name from a template RQ's own objects produced at start-up: {job}, {exec}, {queue}.
local function fill(template, vars)
  return (template:gsub('{(%a+)}', function(name) return vars[name] end))
end

-- What RQ writes when a job succeeds (Job._handle_success with its Result, Job.cleanup, the
-- execution's deletion, the worker's counters) and Offload's final event. `a`: {job_key,
-- job_id, exec_key, exec_id, execs_key, wip_key, finished_key, finished_score, results_key,
-- ttl, ended_utc, value, started_ts, ended_ts, working, events_key, event, events_maxlen,
-- beside (keys that share the job's TTL), dependents_key, dependencies_key}
local function record_success(w, a)
  redis.call('HSET', a.job_key, 'status', 'finished', 'ended_at', a.ended_utc)
  local fields = {'type', '1', 'worker_name', w.worker_name}
  if a.value ~= '' then
    table.insert(fields, 'return_value')
    table.insert(fields, a.value)
  end
  for _, item in ipairs({'execution_id', a.exec_id, 'execution_started_at', a.started_ts,
                         'execution_ended_at', a.ended_ts}) do
    table.insert(fields, item)
  end
  redis.call('XADD', a.results_key, 'MAXLEN', '~', w.results_maxlen, '*', unpack(fields))
  if a.ttl == -1 then
    redis.call('PERSIST', a.results_key)
  else
    redis.call('EXPIRE', a.results_key, a.ttl)
  end
  redis.call('ZADD', a.finished_key, a.finished_score, a.job_id)
  if a.ttl > 0 then
    for _, key in ipairs({a.job_key, a.dependents_key, a.dependencies_key}) do
      redis.call('EXPIRE', key, a.ttl)
    end
  end
  local composite = a.job_id .. ':' .. a.exec_id
  redis.call('DEL', a.exec_key)
  redis.call('ZREM', a.wip_key, composite)
  redis.call('ZREM', a.execs_key, a.exec_id)
  redis.call('SREM', w.worker_execs, composite)
  redis.call('HINCRBY', w.worker_key, 'successful_job_count', 1)
  redis.call('HINCRBYFLOAT', w.worker_key, 'total_working_time', a.working)
  redis.call('XADD', a.events_key, 'MAXLEN', '~', a.events_maxlen, '*', 'type', 'status', 'data', a.event)
  for _, key in ipairs(a.beside) do
    if a.ttl > 0 then redis.call('EXPIRE', key, a.ttl) else redis.call('PERSIST', key) end
  end
end

-- Start the job `job_id` (popped from `queue_key`): what RQ writes when a worker starts a job
-- (Execution.create, job.prepare_for_execution, Job.heartbeat) and Offload's event.
-- `t`: {job_prefix, mark_busy, worker_ttl, exec_id, interval, margin, now_ts, now_utc, now_int,
-- event, default_events_ttl, events_maxlen, exec_template, execs_template, wip_template,
-- events_template}; templates hold {job}, {exec} and {queue}.
local function start(w, t, queue_key, job_id, job_key, origin)
  -- RQ's Worker.get_heartbeat_ttl: the monitoring interval, or the job's timeout if shorter, plus 60.
  local timeout = tonumber(redis.call('HGET', job_key, 'timeout') or '')
  local ttl = t.interval
  if timeout and timeout > 0 and timeout < ttl then ttl = math.floor(timeout) end
  ttl = ttl + t.margin
  if t.mark_busy then
    redis.call('HSET', w.worker_key, 'state', 'busy', 'last_heartbeat', t.now_utc)
    redis.call('EXPIRE', w.worker_key, t.worker_ttl)
  end
  local composite = job_id .. ':' .. t.exec_id
  local vars = {job = job_id, exec = t.exec_id, queue = origin}
  local exec_key, execs_key = fill(t.exec_template, vars), fill(t.execs_template, vars)
  redis.call('HSET', exec_key, 'id', t.exec_id, 'job_id', job_id, 'created_at', t.now_ts,
             'last_heartbeat', t.now_ts, 'worker_name', w.worker_name)
  redis.call('EXPIRE', exec_key, ttl)
  redis.call('ZADD', execs_key, tonumber(t.now_ts) + ttl + t.margin, t.exec_id)
  redis.call('EXPIRE', execs_key, ttl + t.margin)
  redis.call('ZADD', fill(t.wip_template, vars), t.now_int + ttl, composite)
  redis.call('SADD', w.worker_execs, composite)
  redis.call('EXPIRE', w.worker_execs, ttl + t.margin)
  redis.call('HSET', job_key, 'last_heartbeat', t.now_utc, 'status', 'started', 'started_at', t.now_utc,
             'worker_name', w.worker_name)
  redis.call('PERSIST', job_key)
  local events_key = fill(t.events_template, vars)
  local events_ttl = tonumber(redis.call('HGET', job_key, 'failure_ttl') or '') or t.default_events_ttl
  redis.call('XADD', events_key, 'MAXLEN', '~', t.events_maxlen, '*', 'type', 'status', 'data', t.event)
  redis.call('EXPIRE', events_key, events_ttl)
  return {queue_key, job_id, redis.call('EXISTS', job_key .. ':dependents'), redis.call('HGETALL', job_key)}
end

-- The next job that may start: popped from the queues in order (or the one the worker popped
-- while idle, t.popped), skipping ids whose job is gone or no longer queued.
local function take(w, t)
  if redis.call('EXISTS', t.suspended) == 1 then
    if t.popped then redis.call('LPUSH', t.popped[1], t.popped[2]) end  -- back to the front
    return 'suspended', nil
  end
  local popped = t.popped
  for _ = 1, 100 do
    local queue_key, job_id = nil, nil
    if popped then
      queue_key, job_id = popped[1], popped[2]
      popped = nil
    else
      for _, key in ipairs(KEYS) do
        job_id = redis.call('LPOP', key)
        if job_id then queue_key = key break end
      end
      if not job_id then return 'empty', nil end
    end
    local job_key = t.job_prefix .. job_id
    local fields = redis.call('HMGET', job_key, 'status', 'origin')
    if fields[1] == 'queued' and fields[2] then
      return 'started', start(w, t, queue_key, job_id, job_key, fields[2])
    end
  end
  return 'empty', nil
end

local w = cjson.decode(ARGV[1])
local deferred, lost = {}, {}
for n = 2, #ARGV do
  local a = cjson.decode(ARGV[n])
  if redis.call('EXISTS', a.exec_key) == 0 then
    table.insert(lost, a.job_id)
  elseif redis.call('EXISTS', a.dependents_key) == 1 then
    table.insert(deferred, a.job_id)
  else
    record_success(w, a)
  end
end
local outcome, taken = 'none', false
if w.take then outcome, taken = take(w, w.take) end
return {outcome, deferred, lost, taken or false}
