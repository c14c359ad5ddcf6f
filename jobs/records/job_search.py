"""Finding jobs: by text (id, task, arguments, error) and by status, task, queue and time.

Two hashes beside the job index (``jobs.records.job_index``) hold what a search reads that
RQ's job hash cannot give cheaply. ``offload:search`` maps each job to its index member (which
sorts by creation time), task, queue and its id, task and arguments as lowercase JSON, written
with the job (RQ stores the arguments zlib-compressed). ``offload:search:errors`` holds the last
error's type and the first line of its message, written when the job fails and dropped when it
succeeds through RQ's path or is retried (RQ stores the traceback compressed too).

A search with any filter is one read-only Lua script: one pass over the text hash that keeps
the jobs whose task, queue, creation time and text match, then each kept job's status from its
hash, counted per status (so the counts follow every filter but the status one), then the
newest ``limit`` after the cursor. Its cost grows with the jobs retained, not with the page; the
first page without a filter reads the index and RQ's registries instead, as before. Members
whose job has expired are returned for the caller to drop.

Cost: about 250 bytes per job in the text hash (a 60-byte argument list), 100 more per failed
job; searches over 100,000 retained jobs are measured in ``make bench`` (docs/performance.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.commands.core import Script

from jobs.connection import text
from jobs.records.job_index import member

TEXT_KEY = "offload:search"
ERRORS_KEY = "offload:search:errors"
TEXT_MAX = 1024  # characters of a job's searchable text; longer argument lists are cut


def searchable(job_id: str, task: str, args: dict[str, Any]) -> str:
    """What a text search looks in: the id, the task and the arguments, lowercase."""
    return f"{job_id} {task} {json.dumps(args, ensure_ascii=False, sort_keys=True)}".lower()[:TEXT_MAX]


def add(pipe: Pipeline | Redis, job_id: str, created_at: datetime, task: str, queue: str, args: dict[str, Any]) -> None:
    fields = (member(job_id, created_at), task, queue, searchable(job_id, task, args))
    pipe.hset(TEXT_KEY, job_id, "\x1f".join(fields))


def record_error(pipe: Pipeline | Redis, job_id: str, error_type: str, message: str) -> None:
    first_line = (message.strip().splitlines() or [""])[0][:500]
    pipe.hset(ERRORS_KEY, job_id, f"{error_type}\x1f{first_line}")


def clear_error(pipe: Pipeline | Redis, job_id: str) -> None:
    pipe.hdel(ERRORS_KEY, job_id)


def forget(pipe: Pipeline | Redis, *job_ids: str) -> None:
    if job_ids:
        pipe.hdel(TEXT_KEY, *job_ids)
        pipe.hdel(ERRORS_KEY, *job_ids)


def errors_of(redis: Redis, job_ids: list[str]) -> list[tuple[str, str] | None]:
    """The last error (type, first line of the message) of each job, None where it has none."""
    if not job_ids:
        return []
    found: list[Any] = redis.hmget(ERRORS_KEY, job_ids)
    return [tuple(text(raw).split("\x1f", 1)) if raw else None for raw in found]  # type: ignore[misc]


@dataclass(frozen=True)
class Query:
    """What to find. Empty fields match everything; ``text`` is a case-insensitive substring."""

    text: str = ""
    status: str = ""
    task: str = ""
    queue: str = ""
    since: datetime | None = None
    until: datetime | None = None

    def filters(self) -> bool:
        return bool(self.text or self.status or self.task or self.queue or self.since or self.until)


@dataclass
class Found:
    job_ids: list[str]
    next_cursor: str | None
    matches: int
    counts: dict[str, int] = field(default_factory=dict)  # matches per status, the status filter aside


def search(redis: Redis, query: Query, limit: int, cursor: str | None = None, status_keys: Sequence[str] = ()) -> Found:
    """A page of the jobs ``query`` finds, newest first, with how many it finds in all.

    ``status_keys``: per queue, its list and its started, scheduled, deferred, finished, failed and
    canceled registries (``jobs.finding`` names them), read in bulk when many jobs match."""
    upper = "" if query.until is None else f"{_micros(query.until) + 1:020d}"
    lower = "" if query.since is None else f"{_micros(query.since):020d}"
    args: list[str | int] = [
        query.text.lower(),
        query.status,
        query.task,
        query.queue,
        lower,
        upper,
        cursor or "",
        limit,
    ]
    keys = [TEXT_KEY, ERRORS_KEY, *status_keys]
    matches, page, gone, counts, more = _SEARCH(keys=keys, args=args, client=redis)
    if gone:
        forget(redis, *(text(job_id) for job_id in gone))
    members = [text(entry) for entry in page]
    statuses = [text(part) for part in counts]
    return Found(
        job_ids=[entry.split(":", 1)[1] for entry in members],
        next_cursor=members[-1] if members and int(more) else None,
        matches=int(matches),
        counts={statuses[i]: int(statuses[i + 1]) for i in range(0, len(statuses), 2)},
    )


def _micros(moment: datetime) -> int:
    return int(member("", moment).split(":", 1)[0])


# KEYS: texts, errors, then per queue: its list and its started, scheduled, deferred, finished,
# failed and canceled registries. ARGV: text, status, task, queue, lower member bound (inclusive,
# "" for none), upper member bound (exclusive, "" for none), cursor (the last member of the page
# before, or ""), limit. Returns {matches, page members, gone ids, {status, count, ...}, more}.
_SEARCH = Script(
    None,  # type: ignore[arg-type]  # each call names its client
    b"""
local q, status, task, queue, lower, upper = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local cursor, limit = ARGV[7], tonumber(ARGV[8])
-- The jobs whose error matches: few (failed jobs only), found first.
local by_error = {}
local any_error = false
if q ~= '' then
  local flat = redis.call('HGETALL', KEYS[2])
  for i = 1, #flat, 2 do
    if string.find(string.lower(flat[i + 1]), q, 1, true) then by_error[flat[i]] = true any_error = true end
  end
end
-- One pass over the text records ("<member>\31<task>\31<queue>\31<text>", the member starting with
-- 20 digits of creation time, so the record compares with a time bound as its member does): what
-- every filter but the status keeps. The cheap tests come first; a text hit is checked again past
-- the member, task and queue, where digits of the time would match a number.
local task_field = '\\31' .. task .. '\\31'
local queue_field = '\\31' .. queue .. '\\31'
local candidates = {}
for _, value in ipairs(redis.call('HVALS', KEYS[1])) do
  if (lower == '' or value >= lower) and (upper == '' or value < upper) then
    local a = string.find(value, '\\31', 1, true)
    local keep = task == '' or string.sub(value, a, a + #task_field - 1) == task_field
    if keep and (queue ~= '' or q ~= '') then
      local b = string.find(value, '\\31', a + 1, true)
      keep = queue == '' or string.sub(value, b, b + #queue_field - 1) == queue_field
      if keep and q ~= '' then
        local c = string.find(value, '\\31', b + 1, true)
        keep = string.find(value, q, c + 1, true) ~= nil
        if not keep and any_error then
          local colon = string.find(value, ':', 1, true)
          keep = by_error[string.sub(value, colon + 1, a - 1)] == true
        end
      end
    end
    if keep then candidates[#candidates + 1] = value end
  end
end
-- Their statuses: from RQ's queues and registries when there are many (bulk reads), else one
-- read each. A failed registry holds stopped jobs too: those are read one by one.
local known = {}
if #candidates > 500 then
  local states = {'queued', 'started', 'scheduled', 'deferred', 'finished', 'failed', 'canceled'}
  for k = 3, #KEYS, 7 do
    for _, member in ipairs(redis.call('LRANGE', KEYS[k], 0, -1)) do known[member] = 'queued' end
    for offset = 2, 7 do
      local state = states[offset]
      if state ~= 'failed' then
        for _, member in ipairs(redis.call('ZRANGE', KEYS[k + offset - 1], 0, -1)) do
          if state == 'started' then
            local colon = string.find(member, ':', 1, true)
            if colon then member = string.sub(member, 1, colon - 1) end
          end
          known[member] = state
        end
      end
    end
  end
end
local as_queued = {created = true, rate_limited = true, ready_to_enqueue = true}
-- Count them per status, and keep the newest ``limit`` after the cursor (no full sort).
local page, gone, counts, matches, after = {}, {}, {}, 0, 0
for _, value in ipairs(candidates) do
  local id = string.sub(value, 22, string.find(value, '\\31', 22, true) - 1)
  local state = known[id]
  if not state then
    state = redis.call('HGET', 'rq:job:' .. id, 'status')
    if state and as_queued[state] then state = 'queued' end
  end
  if not state then
    table.insert(gone, id)
  else
    counts[state] = (counts[state] or 0) + 1
    if status == '' or state == status then
      matches = matches + 1
      -- A record sorts as its member does (it starts with it); past the cursor means below it.
      if cursor == '' or value < cursor then
        after = after + 1
        if #page < limit or value > page[#page] then
          local at = #page + 1
          while at > 1 and page[at - 1] < value do at = at - 1 end
          table.insert(page, at, value)
          if #page > limit then table.remove(page) end
        end
      end
    end
  end
end
local more = after > #page and 1 or 0
for i, value in ipairs(page) do page[i] = string.sub(value, 1, string.find(value, '\\31', 1, true) - 1) end
local flat_counts = {}
for state, count in pairs(counts) do
  table.insert(flat_counts, state)
  table.insert(flat_counts, count)
end
return {matches, page, gone, flat_counts, more}
""",
)
