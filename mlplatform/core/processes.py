"""Whether a process on this machine is still the one that did something at a known time.

A pid alone is not enough: a dead run worker's pid can be handed to a new process, and a killed
child stays in the process table as a zombie until its parent reaps it. Both would make a dead
writer look alive; here they count as gone.
"""

from __future__ import annotations

import os
import socket

HOST = socket.gethostname()


def process_is_alive(pid: int, active_at: float | None = None) -> bool:
    """True when `pid` is a running process (not a zombie) that already existed at `active_at`
    (a Unix time: when the process was seen doing its work). Unknown (no /proc): alive when the
    pid exists, the safe answer for callers that delete what a dead process left."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    stat = _proc_stat(pid)
    if stat is None:
        return True
    state, started_at = stat
    if state in ("Z", "X"):
        return False
    # One second of slack: the start time is in clock ticks since boot, the boot time in seconds.
    return active_at is None or started_at is None or started_at <= active_at + 1.0


def _proc_stat(pid: int) -> tuple[str, float | None] | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After the command name: state is field 3 of stat(5), starttime field 22.
    state, start_ticks = fields[0], int(fields[19])
    boot = _boot_time()
    if boot is None:
        return state, None
    return state, boot + start_ticks / os.sysconf("SC_CLK_TCK")


def _boot_time() -> float | None:
    try:
        with open("/proc/stat") as handle:
            for line in handle:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        return None
    return None
