"""Devices: which ones a job can train on, the one ``resolve_device``, and per-device job slots.

The trainer enters ``device_slot`` before training, so at most N jobs use a device at once: N
``fcntl.flock`` lock files per device under ``<store>/.slots``. The kernel drops a process's
locks when it dies, so a crash never leaks a slot and no queue daemon is needed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from fascore.errors import FascoreError
from fascore.store.runs import CancelRequested, Run

SLOTS_DIR = ".slots"
SLOT_ENV = {"cpu": "FASCORE_SLOTS_CPU", "gpu": "FASCORE_SLOTS_GPU"}
#: Set in a job a cluster scheduler placed: its allocation is its device slot (no lock files).
NO_SLOT_ENV = "FASCORE_NO_SLOT"
#: How often a job waiting for a slot refreshes its heartbeat (seconds).
WAIT_HEARTBEAT_S = 5.0


def _has_mps() -> bool:
    import torch  # start-up cost (see resolve_device)

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda:0', 'mps' or 'cpu' (what is available); 'cuda' -> 'cuda:0'.

    A CUDA or MPS device that this machine lacks is a clear error, never a silent CPU run.
    """
    import torch  # start-up cost: torch takes ~4 s to import; listing runs must not pay it

    if device == "auto":
        return "cuda:0" if torch.cuda.is_available() else ("mps" if _has_mps() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise FascoreError(
            f"device {device!r} asked for, but CUDA is not available; use --device cpu"
        )
    if device == "mps" and not _has_mps():
        raise FascoreError("device 'mps' asked for, but MPS is not available; use --device cpu")
    return "cuda:0" if device == "cuda" else device


def device_type(device: str) -> str:
    """ "cuda", "mps" or "cpu": the kind of device ``resolve_device`` picks for ``device``; "cpu"
    where it would refuse (its error comes when the run resolves its device)."""
    try:
        return resolve_device(device).split(":")[0]
    except FascoreError:
        return "cpu"


def slot_count(device: str) -> int:
    """Concurrent jobs allowed on one device: 1 by default, or $FASCORE_SLOTS_CPU / _GPU."""
    env = SLOT_ENV["cpu" if device == "cpu" else "gpu"]
    raw = os.environ.get(env, "1")
    if not raw.isdigit() or int(raw) < 1:
        raise FascoreError(f"{env} must be a whole number >= 1, not {raw!r}")
    return int(raw)


def _acquire(paths: list[Path], run: Run) -> tuple[int, IO[str]] | None:
    """The first free slot (index, open locked file), or None when all are held."""
    for i, path in enumerate(paths):
        fh = open(path, "a+")  # noqa: SIM115 - held open for as long as the slot is held
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            continue
        fh.truncate(0)
        fh.write(f"{run.id} pid={os.getpid()}\n")  # who holds it, for a human looking
        fh.flush()
        return i, fh
    return None


@contextlib.contextmanager
def device_slot(run: Run, device: str, *, poll_s: float = 0.5) -> Iterator[int]:
    """Hold one of the device's slots for the duration of the block; yields the slot index.

    While every slot is taken the run stays ``queued`` with the message "waiting for a free
    DEVICE slot", its heartbeat refreshed; a cancel request raises ``CancelRequested`` (and marks
    the run cancelled). The lock is the kernel's, so it is released when the process exits.
    ``device`` is what ``resolve_device`` returned ("cpu", "cuda:0", "mps"). In a job a cluster
    scheduler placed (``$FASCORE_NO_SLOT`` set), the allocation is the slot: no lock files.
    """
    if os.environ.get(NO_SLOT_ENV):
        yield 0
        return
    name = re.sub(r"[^A-Za-z0-9]+", "", device)
    folder = run.path.parent / SLOTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}-{i}.lock" for i in range(slot_count(device))]
    beat = 0.0
    while (got := _acquire(paths, run)) is None:
        if run.cancel_requested():
            run.update_status(state="cancelled", message="cancelled while waiting for a slot")
            raise CancelRequested(f"run {run.id} was cancelled while waiting for a {name} slot")
        if time.monotonic() - beat > WAIT_HEARTBEAT_S:
            run.update_status(state="queued", message=f"waiting for a free {name} slot")
            beat = time.monotonic()
        time.sleep(poll_s)
    index, fh = got
    try:
        yield index
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


# -- devices -------------------------------------------------------------------------------------
def _nvidia_smi() -> list[dict[str, Any]] | None:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    query = [
        exe,
        "--query-gpu=index,name,memory.free,memory.total",
        "--format=csv,noheader,nounits",
    ]
    try:
        out = subprocess.run(query, capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    rows = [line.split(", ") for line in out.strip().splitlines() if line.count(", ") == 3]
    return [
        {"id": f"cuda:{i}", "name": n, "free_gb": int(f) / 1024, "total_gb": int(t) / 1024}
        for i, n, f, t in rows
    ]


def _torch_cuda() -> list[dict[str, Any]]:
    import torch  # start-up cost (see resolve_device)

    out = []
    for i in range(torch.cuda.device_count()):
        free, total = (b / 2**30 for b in torch.cuda.mem_get_info(i))
        name = torch.cuda.get_device_name(i)
        out.append({"id": f"cuda:{i}", "name": name, "free_gb": free, "total_gb": total})
    return out


def devices() -> list[dict[str, Any]]:
    """The devices a job can train on: CUDA GPUs (with free memory), MPS, then the CPU.

    Each is ``{"id", "name", "free_gb", "total_gb", "label"}`` (memory None where unknown).
    nvidia-smi is asked first: ``torch.cuda.mem_get_info`` would create a CUDA context that keeps
    several hundred MB of every GPU for as long as the (long-lived) dashboard process runs.
    """
    import torch  # start-up cost (see resolve_device)

    out = (_nvidia_smi() or _torch_cuda()) if torch.cuda.is_available() else []
    others = [("mps", "Apple GPU (MPS)")] if _has_mps() else []
    others.append(("cpu", f"CPU ({os.cpu_count()} cores)"))
    out += [{"id": i, "name": n, "free_gb": None, "total_gb": None} for i, n in others]
    for d in out:
        free = d["free_gb"]
        mem = "" if free is None else f" · {free:.1f} of {d['total_gb']:.1f} GB free"
        d["label"] = f"{d['id']} · {d['name']}{mem}"
    return out
