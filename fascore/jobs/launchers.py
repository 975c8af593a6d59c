"""Launchers: where a job's process runs (``local`` here; a cluster launcher is one more class).

A launcher starts ``python -m fascore ARGV...`` and stops it again. ``LocalLauncher`` starts a
child process in its own session, so ``stop_group`` can stop it with everything it started
(data-loader workers included), which frees the GPU.
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
from pathlib import Path
from typing import Any

from fascore.errors import FascoreError
from fascore.registry import Registry
from fascore.runs import Run

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
        return {"pid": proc.pid, "pgid": proc.pid}

    def stop(self, run: Run, grace_s: float) -> None:
        status = run.status()
        host = status.get("host", socket.gethostname())
        if host != socket.gethostname():  # its pid means nothing here: never signal it
            raise FascoreError(
                f"run {run.id} runs on {host}: it was asked to stop at its next step; "
                f"to force it, run `python -m fascore cancel {run.id}` on {host}"
            )
        pgid = status.get("pgid") or status.get("pid")
        if pgid:
            stop_group(int(pgid), grace_s)


def _proc_groups() -> set[int] | None:
    """The process groups with a live (non-zombie) member, from /proc; None without /proc."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return None
    groups: set[int] = set()
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        if fields[0] != "Z":
            groups.add(int(fields[2]))
    return groups


def group_alive(pgid: int) -> bool:
    """True while any non-zombie process of group ``pgid`` exists (``killpg(pgid, 0)`` alone
    counts zombies, which a container without an init process may never reap)."""
    groups = _proc_groups()
    if groups is not None:
        return pgid in groups
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True  # it exists (PermissionError: it exists but is not ours)


def stop_group(pgid: int, grace_s: float = 10.0) -> None:
    """SIGTERM the process group, wait up to ``grace_s`` for it to exit, then SIGKILL it."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        deadline = time.monotonic() + wait_s
        while group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not group_alive(pgid):
            return
    raise FascoreError(f"process group {pgid} survived SIGKILL; check it with `ps -g {pgid}`")
