"""Whether the processes Tuneline started still run, asked of psutil rather than parsed from /proc.

A zombie (exited, its status not yet collected by its parent) or a dead process is not alive, and
neither is one we may not signal: it cannot be ours.
"""

from __future__ import annotations

import os

import psutil

_GONE = (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)


def alive(pid: int, command_contains: str = "") -> bool:
    """Whether pid runs; with `command_contains`, also that its command line has it (pid not reused).

    An empty command line passes: a launcher that re-executes itself (the JVM's) has none for a moment.
    """
    try:
        proc = psutil.Process(pid)
        if proc.status() in _GONE:
            return False
        os.kill(pid, 0)  # raises PermissionError for another user's process
        cmdline = proc.cmdline() if command_contains else []
    except (psutil.Error, OSError):
        return False
    return not cmdline or any(command_contains in arg for arg in cmdline)


def group_members(pgid: int) -> list[int]:
    """The live processes of a process group."""
    members = []
    for proc in psutil.process_iter():
        try:
            # psutil has no process-group accessor; getpgid is the system call, not a /proc parse.
            if os.getpgid(proc.pid) == pgid and proc.status() not in _GONE:
                members.append(proc.pid)
        except (psutil.Error, OSError):
            continue
    return members
