"""Jobs: every training runs as its own process, started by a launcher, never inside the dashboard.

``submit`` writes a run's config and a ``queued`` status, then a launcher (``local`` here; a
cluster launcher is one more decorated class) starts ``python -m fascore train --run RUN_ID`` in a
new process group. The trainer enters ``device_slot`` before training, so at most N jobs use a
device at once: N ``fcntl.flock`` lock files per device under ``<store>/.slots``. The kernel drops
a process's locks when it dies, so a crash never leaks a slot and no queue daemon is needed.
``cancel`` stops the process group of the run's owner (the process holding the run's lock, see
``fascore.runlock``; data-loader workers included) so GPU memory is freed, after checking with
psutil that the recorded pid is still that process; ``resume`` relaunches an interrupted, failed or
cancelled run from its last checkpoint. A launch holds the run's lock while it starts the job, so
two launches (or a launch beside a live trainer) cannot both start one.
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

import pandas as pd

from fascore.config import RunConfig
from fascore.errors import FascoreError
from fascore.jobs.launchers import LAUNCHERS, REPO_ROOT
from fascore.runs import ACTIVE_STATES, RUNS_ENV, CancelRequested, Run, RunStore

SLOTS_DIR = ".slots"
SLOT_ENV = {"cpu": "FASCORE_SLOTS_CPU", "gpu": "FASCORE_SLOTS_GPU"}
#: How often a job waiting for a slot refreshes its heartbeat (seconds).
WAIT_HEARTBEAT_S = 5.0
RESUMABLE_STATES = ("interrupted", "failed", "cancelled")
LAUNCH_LOCK_WAIT_S = 0.5  # a launch waits this long for a viewer's lock probe to pass


# -- submit, cancel, resume ----------------------------------------------------------------------
def _launch(
    run: Run,
    store: RunStore,
    launcher: str,
    argv: list[str],
    message: str,
    seen: dict | None = None,
) -> Run:
    """Start the job while holding the run's lock (the job takes it over once started), so a
    live trainer or a concurrent launch makes this one refuse instead of overwriting its status.
    ``seen`` is the status the caller decided on: if it changed meanwhile, another process
    launched the run first (check-then-act under the lock); None skips that check."""
    impl = LAUNCHERS.get(launcher)()
    with run.hold(wait_s=LAUNCH_LOCK_WAIT_S, role="launcher"):
        if seen is not None and run.status() != seen:
            raise FascoreError(
                f"run {run.id} was just started by another process; see `python -m fascore runs`"
            )
        run.clear_cancel()
        fresh = {"pid": None, "pgid": None, "pid_started": None, "finished": None}
        run.update_status(
            state="queued", message=message, launcher=launcher, submitted=time.time(), **fresh
        )
        env = dict(os.environ, **{RUNS_ENV: str(store.root.resolve())})
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        run.update_status(**impl.start(run, argv, env))
    return run


def submit(config: RunConfig, store: RunStore | None = None, launcher: str = "local") -> Run:
    """Queue one training run and start its process; returns the run.

    Idempotent: when the config's run is already queued, running or done, it is returned
    unchanged and nothing is started. A failed, cancelled or interrupted run starts again from
    scratch (use ``resume`` to continue from its checkpoint).
    """
    config.check()
    store = store or RunStore()
    run = store.run(config.run_id())
    seen = run.status() if run.path.exists() else {"state": "queued"}  # what status() will say
    if run.has("config") and run.state() in (*ACTIVE_STATES, "done"):
        return run
    run.write_config(config.to_dict())
    return _launch(run, store, launcher, ["train", "--run", run.id], "submitted", seen)


def cancel(run: Run, grace_s: float = 10.0) -> Run:
    """Cancel a queued or running job: ask it to stop, then stop its process group for sure.

    The cancel request lets the trainer stop cleanly at its next step; SIGTERM then SIGKILL after
    ``grace_s`` make sure nothing (data-loader workers included) keeps holding the GPU.
    """
    state = run.state()
    if state not in ACTIVE_STATES:
        raise FascoreError(f"run {run.id} is {state}; only queued or running runs can be cancelled")
    run.request_cancel()
    LAUNCHERS.get(run.status().get("launcher", "local"))().stop(run, grace_s)
    run.update_status(state="cancelled", message="cancelled by the user", finished=time.time())
    return run


def resume(run: Run, store: RunStore | None = None, launcher: str | None = None) -> Run:
    """Relaunch an interrupted, failed or cancelled run; it continues from its last checkpoint."""
    seen, state = run.status(), run.state()
    if state not in RESUMABLE_STATES:
        raise FascoreError(
            f"run {run.id} is {state}; only interrupted, failed or cancelled runs can be resumed"
        )
    store = store or RunStore(run.path.parent)
    name = launcher or run.status().get("launcher", "local")
    return _launch(run, store, name, ["train", "--run", run.id, "--resume"], "resuming", seen)


def list_runs(store: RunStore | None = None, experiment: str | None = None) -> pd.DataFrame:
    """The store's run table (newest first), optionally one experiment only."""
    table = (store or RunStore()).table()
    return table[table["experiment"] == experiment].reset_index(drop=True) if experiment else table


def _teacher_for(base: RunConfig, teacher: str, store: RunStore) -> str:
    """Check a chosen teacher run can teach ``base``'s protocol; returns its id."""
    from fascore.train.trainset import check_teacher  # lazy: imports torch

    run = store.get(teacher)
    state = run.state()
    if state in RESUMABLE_STATES:
        raise FascoreError(f"teacher run {teacher} is {state}; resume it first or train a new one")
    check_teacher(base, run)
    return teacher


def plan_runs(
    base: RunConfig,
    methods: list[str],
    seeds: list[int],
    teacher: str | None = None,
    store: RunStore | None = None,
) -> list[RunConfig]:
    """The configs to submit for ``methods`` x ``seeds`` on ``base``'s data and protocol.

    Student methods (``needs_teacher``) learn from ``teacher``; with no teacher, a source-only
    teacher is planned first for each seed (it sees no target label: shots 0, selected on the
    source dev set). Every config is checked before any is submitted.
    """
    from fascore.train.methods import METHODS  # lazy: imports torch

    if not methods or not seeds:
        raise FascoreError("choose at least one method and one seed")
    store = store or RunStore()
    given = _teacher_for(base, teacher, store) if teacher else None
    plan: dict[str, RunConfig] = {}
    for seed in seeds:
        own = base.replace(
            method="source_only", teacher=None, shots=0, select="source_dev", seed=seed
        )
        for method in methods:
            if method == "source_only":
                cfg = own
            elif METHODS.get(method).needs_teacher:
                if given is None:
                    plan.setdefault(own.run_id(), own)
                cfg = base.replace(method=method, seed=seed, teacher=given or own.run_id())
            else:
                cfg = base.replace(method=method, seed=seed, teacher=None)
            plan.setdefault(cfg.run_id(), cfg)
    for cfg in plan.values():
        cfg.check()
    return list(plan.values())


def launch(base: RunConfig, methods: list[str], seeds: list[int], **kw: Any) -> list[Run]:
    """``plan_runs(..., teacher=, store=)`` then ``submit`` each (teachers first)."""
    store = kw.pop("store", None) or RunStore()
    return [submit(cfg, store) for cfg in plan_runs(base, methods, seeds, store=store, **kw)]


def submit_demo(preset: str = "demo", store: RunStore | None = None) -> list[Run]:
    """Submit the demo experiment (teacher first; its students wait for it in the queue)."""
    from fascore.jobs.demo import demo_configs  # lazy: builds or finds the SynthFAS data

    return [submit(cfg, store) for cfg in demo_configs(preset)]


# -- device slots --------------------------------------------------------------------------------
def _has_mps() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda:0', 'mps' or 'cpu' (what is available); 'cuda' -> 'cuda:0'."""
    if device == "auto":
        import torch

        return "cuda:0" if torch.cuda.is_available() else ("mps" if _has_mps() else "cpu")
    return "cuda:0" if device == "cuda" else device


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
    """
    device = resolve_device(device)
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
    import torch

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
    import torch

    out = (_nvidia_smi() or _torch_cuda()) if torch.cuda.is_available() else []
    others = [("mps", "Apple GPU (MPS)")] if _has_mps() else []
    others.append(("cpu", f"CPU ({os.cpu_count()} cores)"))
    out += [{"id": i, "name": n, "free_gb": None, "total_gb": None} for i, n in others]
    for d in out:
        free = d["free_gb"]
        mem = "" if free is None else f" · {free:.1f} of {d['total_gb']:.1f} GB free"
        d["label"] = f"{d['id']} · {d['name']}{mem}"
    return out
