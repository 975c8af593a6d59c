"""Launchers: where a job's process runs (``local`` here; a cluster launcher is one more class).

A launcher starts ``python -m fascore ARGV...`` and stops it again. ``LocalLauncher`` starts a
child process in its own session, so ``stop_process`` can stop its whole process group with
everything it started (data-loader workers included), which frees the GPU. It signals only the
run's verified owner (``owner_pid``: the holder of the run's lock, or the launched process with
its start time), so a pid reused by an unrelated process is never signalled, and its group only
when that process leads the group (``leads_group``); otherwise that process alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fascore.errors import FascoreError
from fascore.registry import Registry
from fascore.store.lock import group_alive, process_alive, process_start
from fascore.store.runs import Run

REPO_ROOT = Path(__file__).resolve().parents[2]


class Launcher:
    """Starts and stops ``python -m fascore ARGV...`` somewhere; subclasses say where (a cluster
    launcher submits a batch job, records its job id in the status and cancels it by that id)."""

    name = "local"  # what the run's status records as its launcher

    def start(self, run: Run, argv: list[str], env: dict[str, str]) -> dict[str, Any]:
        """Start the job; returns fields merged into the run's status (e.g. pid, pgid)."""
        raise NotImplementedError

    def stop(self, run: Run, grace_s: float) -> None:
        """Stop the job and everything it started, waiting at most ``grace_s`` before forcing."""
        raise NotImplementedError


LAUNCHERS: Registry[type[Launcher]] = Registry("launcher")
#: Launchers of a whole plan at once (``fascore.jobs.sweep.submit_plan``): name -> function.
PLAN_LAUNCHERS: Registry[Callable[..., list[Run]]] = Registry("plan launcher")


@LAUNCHERS.register("local")
class LocalLauncher(Launcher):
    """A child process of this machine in its own session (so its group can be signalled)."""

    def start(self, run: Run, argv: list[str], env: dict[str, str]) -> dict[str, Any]:
        with open(run.file("log"), "ab") as log:  # the child keeps its own copy of the fd
            proc = subprocess.Popen(
                [sys.executable, "-m", "fascore", *argv],
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        # Reap the child when it exits, so a long-lived parent (the dashboard) collects no zombies.
        threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
        return {"pid": proc.pid, "pgid": proc.pid, "pid_started": process_start(proc.pid)}

    def stop(self, run: Run, grace_s: float) -> None:
        owner = run.owner() or {}
        host = owner.get("host") or run.status().get("host", socket.gethostname())
        if host != socket.gethostname():  # its pid means nothing here: never signal it
            raise FascoreError(
                f"run {run.id} runs on {host}: it was asked to stop at its next step; "
                f"to force it, run `python -m fascore cancel {run.id}` on {host}"
            )
        pid = owner_pid(run)
        if pid is None:
            return  # nobody to stop: the cancel request stops a trainer that starts later
        stop_process(pid, grace_s, group=leads_group(pid))


def owner_pid(run: Run) -> int | None:
    """The pid of the process that owns the run, checked to be that very process: the holder of
    the run's lock, else (a job launched that has not taken the lock yet) the launched process
    recorded with its start time. None when there is none, so a reused pid is never signalled."""
    owner = run.owner()
    for _ in range(20):  # a new owner writes its record right after taking the lock
        if owner != {}:
            break
        time.sleep(0.05)
        owner = run.owner()
    if owner and owner.get("role") == "launcher":
        return None  # the job is being started: its cancel request stops it as it starts
    if owner and process_alive(owner.get("pid"), owner.get("pid_started")):
        return int(owner["pid"])
    status = run.status()
    pid, started = status.get("pid"), status.get("pid_started")
    if owner is None and pid and started is not None and process_alive(pid, started):
        return int(pid)
    return None


def leads_group(pid: int) -> bool:
    """True when ``pid`` leads its own process group (the trainer starts its own session), and
    that group is not ours: only then may its whole group be signalled."""
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return False
    return pgid == pid and pgid != os.getpgrp()


def stop_process(pid: int, grace_s: float = 10.0, group: bool = False) -> None:
    """SIGTERM the process (with ``group``, the process group it leads: pgid = pid), wait up to
    ``grace_s`` for it to exit, then SIGKILL it; the one way fascore stops a local job."""
    send, alive = (os.killpg, group_alive) if group else (os.kill, process_alive)
    what = f"process group {pid}" if group else f"process {pid}"
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            send(pid, sig)
        deadline = time.monotonic() + wait_s
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not alive(pid):
            return
    flag = "-g" if group else "-p"
    raise FascoreError(f"{what} survived SIGKILL; check it with `ps {flag} {pid}`")
