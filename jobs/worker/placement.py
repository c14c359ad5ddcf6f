"""Where and how eagerly a worker runs: its CPUs and its priority beside the web process."""

from __future__ import annotations

import os
from pathlib import Path

from jobs.settings import get_settings


def keep_to_cpus(setting: str | None = None) -> None:
    """``spare``: every CPU this process may use but the first, so the web always finds one free.

    Where workers and the web share a machine, niceness alone still lets CPU-heavy jobs on every
    core delay the web's wake-ups (make bench: /healthz p99 ~2-3x idle); OFFLOAD_WORKER_CPUS=spare
    keeps workers off the first CPU, which make run sets. ``all`` (the default) uses every CPU.
    """
    setting = setting if setting is not None else get_settings().OFFLOAD_WORKER_CPUS
    if setting == "all" or not hasattr(os, "sched_setaffinity"):
        return
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) > 1:
        os.sched_setaffinity(0, allowed[1:])


def lower_priority(setting: str | None = None) -> None:
    """Yield the CPU to the web process: nice 10 by default (OFFLOAD_WORKER_NICE; 0 keeps the
    normal priority). ``idle`` runs at SCHED_IDLE, which answers the web a little faster still
    but can starve a job outright while anything else keeps the CPU busy, so it is not the default."""
    nice = setting if setting is not None else get_settings().OFFLOAD_WORKER_NICE
    if nice == "idle" and hasattr(os, "sched_setscheduler"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        group_nice = 19
    elif nice != "idle" and int(nice) > 0:
        group_nice = int(nice)
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
