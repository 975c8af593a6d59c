"""One owner per run: an exclusive ``flock`` on a lock file in the run folder, and process liveness.

The trainer process takes the lock before it resets or resumes anything and holds it for as long
as it trains; the kernel drops it when the process dies (crash, ``kill -9``, reboot), so a held
lock means a live owner and a free one means nobody is training the run, whatever the heartbeat
says. The lock file also records who holds it (pid, process group, start time, host), so
``cancel`` signals that process only after checking, with psutil, that it is still the same
process (a pid can be reused). It works for any launcher because the trainer takes it itself.

On a shared file system whose locks are node-local (some cluster mounts), a lock held on another
host may look free from here; ``fascore.store.runs`` then falls back to the heartbeat for that host.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import psutil

from fascore.errors import FascoreError

#: How long a starting trainer retries a lock held for a moment (by a viewer's probe or by a
#: launcher that is starting it) before it concludes that another trainer owns the run.
ACQUIRE_WAIT_S = 5.0
START_TOLERANCE_S = 1.0  # process start times compare equal within this (clock granularity)


def process_start(pid: int) -> float | None:
    """The process's start time (seconds since the epoch), or None when there is no such process."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, ValueError):
        return None


def process_alive(pid: Any, started: Any = None) -> bool:
    """True when ``pid`` is a live, non-zombie process of this machine and, when ``started`` is
    given, the very process that started then (not a later one that reuses the pid)."""
    try:
        proc = psutil.Process(int(pid))
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if started is not None and abs(proc.create_time() - float(started)) > START_TOLERANCE_S:
            return False
    except psutil.AccessDenied:
        return True  # it exists but is not ours to inspect
    except (psutil.Error, TypeError, ValueError, OverflowError):
        return False
    return True


def group_alive(pgid: int) -> bool:
    """True while any non-zombie process of process group ``pgid`` exists."""
    for proc in psutil.process_iter(["status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) == pgid:
                return True
        except (OSError, psutil.Error):
            continue  # it ended while we looked
    return False


def owner_record(role: str = "trainer") -> dict[str, Any]:
    """Who this process is: role, pid, process group, start time and host."""
    pid = os.getpid()
    return {
        "role": role,
        "pid": pid,
        "pgid": os.getpgrp(),
        "pid_started": process_start(pid),
        "host": socket.gethostname(),
        "since": time.time(),
    }


def _read_record(fh: IO[str]) -> dict[str, Any]:
    fh.seek(0)
    try:
        record = json.loads(fh.read() or "{}")
    except json.JSONDecodeError:
        return {}
    return record if isinstance(record, dict) else {}


def probe(path: Path) -> dict[str, Any] | None:
    """The holder's record when the lock at ``path`` is held (``{}`` if it has not written it
    yet), None when it is free. Raises ``OSError`` when the file system cannot lock at all."""
    try:
        fh = open(path)  # noqa: SIM115 - closed below; read-only: a probe never creates it
    except FileNotFoundError:
        return None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_record(fh)
        fcntl.flock(fh, fcntl.LOCK_UN)
        return None


def _describe(run_id: str, record: dict[str, Any]) -> str:
    if record.get("role") == "launcher":
        return f"run {run_id} is being started by another process; wait a moment and look again"
    who = f"process {record['pid']}" if record.get("pid") else "another process"
    where = f" on {record['host']}" if record.get("host") else ""
    return (
        f"run {run_id} is already being trained by {who}{where}; wait for it to finish, or stop "
        f"it with `python -m fascore cancel {run_id}` (nothing was changed)"
    )


@contextlib.contextmanager
def hold(
    path: Path, run_id: str, wait_s: float = ACQUIRE_WAIT_S, role: str = "trainer"
) -> Iterator[dict[str, Any]]:
    """Hold the run's lock for the block and write this process's record (``role``: the
    ``trainer``, or a ``launcher`` starting one) into it; yields the record. Raises a
    ``FascoreError`` naming the owner when another live process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+")  # noqa: SIM115 - held open for as long as the lock is held
    deadline = time.monotonic() + wait_s
    try:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise FascoreError(_describe(run_id, _read_record(fh))) from None
                time.sleep(0.05)
            except OSError as err:
                if err.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    raise FascoreError(
                        f"the run store at {path.parent.parent} cannot lock files ({err.strerror});"
                        " put it on a local disk or a file system with locking (FASCORE_RUNS_DIR)"
                    ) from None
                raise
        record = owner_record(role)
        fh.seek(0)
        fh.truncate(0)
        fh.write(json.dumps(record))
        fh.flush()
        try:
            yield record
        finally:
            fh.seek(0)
            fh.truncate(0)  # a free lock holds no stale owner
            fcntl.flock(fh, fcntl.LOCK_UN)
    finally:
        fh.close()
