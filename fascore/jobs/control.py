"""Jobs: every training runs as its own process, started by a launcher, never inside the dashboard.

``submit`` writes a run's config and a ``queued`` status, then a launcher (``local`` here; a
cluster launcher is one more decorated class) starts ``python -m fascore train --run RUN_ID`` in a
new process group (``fascore.jobs.launchers``); the trainer then waits for a device slot
(``fascore.devices.device_slot``). ``cancel`` stops the process group of the run's owner (the
process holding the run's lock, see ``fascore.store.lock``; data-loader workers included) so GPU
memory is freed, after checking with psutil that the recorded pid is still that process;
``resume`` relaunches an interrupted, failed or cancelled run from its last checkpoint. A launch
holds the run's lock while it starts the job, so two launches (or a launch beside a live trainer)
cannot both start one.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pandas as pd

from fascore.config import RunConfig
from fascore.errors import FascoreError
from fascore.jobs.launchers import LAUNCHERS, REPO_ROOT, Launcher
from fascore.jobs.plan import demo_configs, plan_runs

# The cluster launcher registers itself here, where launchers are looked up by name: the slurm
# launcher and state probe (LAUNCHERS, store.runs.STATE_PROBES) and its plan launcher
# (PLAN_LAUNCHERS). submitit itself loads only when a job is submitted or cancelled.
from fascore.jobs.slurm import launcher as _slurm
from fascore.jobs.slurm import plan as _slurm_plan  # noqa: F401
from fascore.jobs.slurm.options import SlurmOptions
from fascore.jobs.submission import LAUNCH_LOCK_WAIT_S, queue_run
from fascore.store.runs import ACTIVE_STATES, RESUMABLE_STATES, RUNS_ENV, Run, RunStore


# -- submit, cancel, resume ----------------------------------------------------------------------
def _impl(launcher: str | Launcher) -> Launcher:
    """A launcher instance: given (with its options), or the registered one by name."""
    return launcher if isinstance(launcher, Launcher) else LAUNCHERS.get(launcher)()


def make_launcher(name: str, slurm: SlurmOptions | None = None) -> str | Launcher:
    """The launcher ``fascore train --launcher NAME`` and the Train page submit through: a name,
    or a Slurm launcher carrying its job options (None: the store's slurm.toml)."""
    LAUNCHERS.get(name)  # a clear error for an unknown name
    return _slurm.SlurmLauncher(slurm) if name == "slurm" else name


def _name(launcher: str | Launcher) -> str:
    return launcher if isinstance(launcher, str) else type(launcher).name


def _launch(
    run: Run,
    store: RunStore,
    launcher: str | Launcher,
    argv: list[str],
    message: str,
    seen: dict | None = None,
) -> Run:
    """Start the job while holding the run's lock (the job takes it over once started), so a
    live trainer or a concurrent launch makes this one refuse instead of overwriting its status.
    ``seen`` is the status the caller decided on: if it changed meanwhile, another process
    launched the run first (check-then-act under the lock); None skips that check."""
    impl = _impl(launcher)
    with run.hold(wait_s=LAUNCH_LOCK_WAIT_S, role="launcher"):
        if seen is not None and run.status() != seen:
            raise FascoreError(
                f"run {run.id} was just started by another process; see `python -m fascore runs`"
            )
        queue_run(run, _name(launcher), message)
        env = dict(os.environ, **{RUNS_ENV: str(store.root.resolve())})
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        try:
            run.update_status(**impl.start(run, argv, env))
        except FascoreError as err:  # e.g. a cluster refused the job: the run says why
            run.update_status(state="failed", message=str(err), finished=time.time())
            raise
    return run


def submit(
    config: RunConfig, store: RunStore | None = None, launcher: str | Launcher = "local"
) -> Run:
    """Queue one training run and start its process; returns the run.

    Idempotent: when the config's run is already queued, running or done, it is returned
    unchanged and nothing is started. A failed, cancelled or interrupted run starts again from
    scratch (use ``resume`` to continue from its checkpoint). ``launcher`` is a registered name
    or an instance carrying its options (e.g. ``SlurmLauncher(options)``).
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


def resume(run: Run, store: RunStore | None = None, launcher: str | Launcher | None = None) -> Run:
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


def launch(
    base: RunConfig,
    methods: list[str],
    seeds: list[int],
    launcher: str | Launcher = "local",
    **kw: Any,
) -> list[Run]:
    """``plan_runs(..., teacher=, store=)`` then submit every run (teachers first) without
    waiting; a launcher with ``submit_plan`` takes the whole plan in one call."""
    store = kw.pop("store", None) or RunStore()
    plan = plan_runs(base, methods, seeds, store=store, **kw)
    impl = _impl(launcher)
    if hasattr(impl, "submit_plan"):  # Slurm: job arrays, students afterok on their teachers
        return impl.submit_plan([(c, [c.teacher] if c.teacher else []) for c in plan], store)
    return [submit(cfg, store, impl) for cfg in plan]  # students wait inside their job


def submit_demo(preset: str = "demo", store: RunStore | None = None) -> list[Run]:
    """Submit the demo experiment (teacher first; its students wait for it in the queue)."""
    return [submit(cfg, store) for cfg in demo_configs(preset)]
