"""Whether a process on this machine is still the one that did something at a known time.

A pid alone is not enough: a dead run worker's pid can be handed to a new process, and a killed
child stays in the process table as a zombie until its parent reaps it. Both would make a dead
writer look alive; here they count as gone.
"""

from __future__ import annotations

import contextlib
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


# A dead run worker is noticed within this long by the steps it left behind.
ORPHAN_POLL_SECONDS = 1.0
# What an orphaned step exits with (EX_SOFTWARE): nobody waits for it, but `ps` and a test can tell.
ORPHAN_EXIT_CODE = 70


def end_forks_with(pid: int) -> None:
    """Every process forked from this one from now on ends itself, and everything it started, once
    `pid` is gone.

    A forkserver's steps are children of the forkserver, not of the run worker that asked for them:
    when the worker is killed outright (SIGKILL, the OOM killer), nothing tells them, and a step
    trains on and writes for a run already marked failed, beside the retry of its own day. Run
    monitoring takes longer than `ORPHAN_POLL_SECONDS` to fail the run and free its slots, so a
    step ends before anything of its run can be started again. The watch is a thread in the child,
    started after the fork: the forking process itself stays single-threaded.
    """
    import time

    seen_at = time.time()
    os.register_at_fork(after_in_child=lambda: _watch(pid, seen_at))


def _watch(pid: int, seen_at: float) -> None:
    import threading

    def watch() -> None:
        import time

        while process_is_alive(pid, seen_at):
            time.sleep(ORPHAN_POLL_SECONDS)
        _end_orphan(pid)

    threading.Thread(target=watch, name="mlplatform-orphan-watch", daemon=True).start()


def _end_orphan(pid: int) -> None:
    import sys

    import psutil

    me = psutil.Process()
    sys.stderr.write(
        f"mlplatform: the process that launched this step (pid {pid}) is gone; "
        f"ending step process {me.pid} and its children\n"
    )
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    # The forkserver this step came from served only the dead process: it goes too.
    try:
        parent = me.parent()
        if parent is not None and "forkserver" in " ".join(parent.cmdline()):
            parent.kill()
    except psutil.Error:
        pass
    os._exit(ORPHAN_EXIT_CODE)
