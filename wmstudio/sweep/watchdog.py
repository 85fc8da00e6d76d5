"""A watchdog that makes the processes a driver starts (Ray's, a worker pool's) die with it.

Ray's local instance is a tree of processes (GCS server, raylet, dashboard, log monitor, and the
raylet's dashboard and runtime-env agents and workers); when the driver is killed, even with
``kill -9``, some of them outlive it, re-parented to init. The watchdog is a small separate process
(stdlib only, in its own session so a terminal's Ctrl-C or a ``killpg`` does not take it first) that
every half second records the driver's descendants that appeared since it started (PID and start
time, so a reused PID is never hit). It holds the read end of a pipe whose write end only the driver
has: end of file means the driver is gone, however it died, and then it terminates every recorded
process still alive and its descendants (SIGTERM, SIGKILL after a grace period). ``stop()`` after a
clean shutdown reaps only the recorded processes that no longer descend from the driver (orphans
a shutdown left behind) and ends the watchdog.

Linux only (it reads ``/proc``); elsewhere ``Watchdog.start`` does nothing.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

POLL_SECONDS = 0.5
GRACE_SECONDS = 3.0


def _stat(pid: int) -> tuple[int, int, str] | None:
    """(parent PID, start time in clock ticks, state) of a live process, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "; comm may hold spaces
    return int(fields[1]), int(fields[19]), fields[0]


def _table() -> dict[int, tuple[int, int, str]]:
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                out[int(name)] = st
    return out


def descendants(root: int, table: dict[int, tuple[int, int, str]] | None = None) -> dict[int, int]:
    """Every live descendant of ``root``: PID -> start time."""
    table = _table() if table is None else table
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out: dict[int, int] = {}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        if pid not in out and table[pid][2] != "Z":
            out[pid] = table[pid][1]
            todo.extend(children.get(pid, []))
    return out


def alive(pid: int, started: int) -> bool:
    """The same process (PID and start time) still runs (a zombie counts as gone)."""
    st = _stat(pid)
    return st is not None and st[1] == started and st[2] != "Z"


def _reap(targets: dict[int, int]) -> None:
    """Terminate the target processes and whatever they started since; SIGKILL what outlives the grace."""
    for sig, wait in ((signal.SIGTERM, GRACE_SECONDS), (signal.SIGKILL, 1.0)):
        table = _table()
        now = dict(targets)
        for pid in list(targets):
            if alive(pid, targets[pid]):
                now.update(descendants(pid, table))
        live = {p: s for p, s in now.items() if alive(p, s)}
        for pid in live:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        targets = live
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(alive(p, s) for p, s in targets.items()):
            time.sleep(0.1)


def watch(driver: int) -> None:
    """The watchdog's loop (runs in its own process; stdin is the pipe from the driver)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # only the pipe ends it
    me = os.getpid()
    before = descendants(driver)
    os.write(sys.stdout.fileno(), b"r")  # ready: the driver may start what it wants guarded
    os.close(sys.stdout.fileno())
    known: dict[int, int] = {}
    fd = sys.stdin.fileno()
    while True:
        table = _table()
        for pid, started in descendants(driver, table).items():
            if pid != me and before.get(pid) != started:
                known[pid] = started
        for pid in list(known):  # what the known processes started (also after being re-parented)
            if alive(pid, known[pid]):
                known.update({p: s for p, s in descendants(pid, table).items() if p != me})
            else:
                del known[pid]
        ready, _, _ = select.select([fd], [], [], POLL_SECONDS)
        if ready:
            data = os.read(fd, 64)
            if data.startswith(b"stop"):  # a clean shutdown: only the orphans it left behind
                inside = descendants(driver)
                _reap({p: s for p, s in known.items() if p not in inside})
                return
            if not data:  # end of file: the driver is gone
                _reap(known)
                return


class Watchdog:
    """Start with ``Watchdog.start()`` before starting the processes to guard; ``stop()`` after a clean shutdown."""

    def __init__(self, proc: subprocess.Popen[bytes] | None) -> None:
        self.proc = proc

    @classmethod
    def start(cls) -> Watchdog:
        if not sys.platform.startswith("linux"):
            return cls(None)
        proc = subprocess.Popen([sys.executable, "-S", __file__, str(os.getpid())], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, start_new_session=True, close_fds=True)
        assert proc.stdout is not None
        proc.stdout.read(1)  # it has taken its first look at the tree, before anything it should guard exists
        proc.stdout.close()
        return cls(proc)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(b"stop")
            self.proc.stdin.close()
            self.proc.wait(timeout)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> Watchdog:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    watch(int(sys.argv[1]))
