"""The ``slurm`` launcher: a run's process becomes a Slurm batch job, submitted through submitit.

The run folder stays the one source of truth. Submission records the Slurm job id (``slurm_job``)
and the options in the run's status; the job runs the same ``python -m fascore train --run ID
--resume`` a local launcher runs, its output appended to the run's log (so the dashboard shows it
like a local job's). A run's effective state is its status file while that says a final state
(done, failed, cancelled); while it says queued or running, Slurm's view decides (see
``STATE_MAP`` and ``effective_state``). ``stop`` is ``scancel`` through submitit and waits until the
allocation is gone. Timeouts and preemption: submitit sends USR2 ``signal_delay_s`` before the
end, calls ``TrainJob.checkpoint`` and requeues the job, which continues from the run's last
checkpoint. A plan (a sweep) is submitted as one job array per dependency level: teachers first,
students ``afterok`` on their teachers' array tasks.

Requirement: the run store (and this repository and its Python) must sit on a filesystem the
compute nodes share with this machine; ``check_store_visible`` checks it once per store and
partition at the first submission.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from typing import Any

from fascore.config import RunConfig
from fascore.devices import NO_SLOT_ENV
from fascore.errors import FascoreError
from fascore.jobs.launchers import LAUNCHERS, Launcher
from fascore.jobs.slurm.job import TrainJob
from fascore.jobs.slurm.options import SlurmOptions, load_options
from fascore.jobs.submission import prepare_submission
from fascore.store.runs import ACTIVE_STATES, RUNS_ENV, STATE_PROBES, Run, RunStore

#: submitit's folder (sbatch scripts, pickles, Slurm's own stdout/stderr) inside the run store.
SUBMITIT_DIR = ".slurm"
#: Slurm's job states -> the run's state, while the run's status file still says queued/running.
STATE_MAP = {
    **dict.fromkeys(("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD",
                     "SUSPENDED", "CONFIGURING", "POWER_UP_NODE"), "queued"),
    **dict.fromkeys(("RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESIZING"), "running"),
    # The job ended but the trainer never wrote a final state: its process was killed (timeout,
    # preemption, a node failure, out of memory, scancel outside fascore). Resumable.
    **dict.fromkeys(("TIMEOUT", "PREEMPTED", "DEADLINE", "NODE_FAIL", "BOOT_FAIL", "FAILED",
                     "OUT_OF_MEMORY", "COMPLETED", "CANCELLED", "REVOKED"), "interrupted"),
}  # fmt: skip
#: Environment variables a job takes from the submitting process (others come from the node).
PASS_ENV = ("FASCORE_", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "PYTHONPATH", "NUMBA_CACHE_DIR")
VIEW_TTL_S = 2.0
_view_cache: dict[str, Any] = {"at": 0.0, "jobs": {}}


# -- Slurm's view of its jobs ----------------------------------------------------------------------
def _slurm(cmd: list[str], timeout: float = 20.0) -> subprocess.CompletedProcess:
    if shutil.which(cmd[0]) is None:
        raise FascoreError(
            f"{cmd[0]} not found: the slurm launcher needs Slurm's commands (sbatch, squeue, "
            "scancel) on PATH; run fascore on a login node of the cluster, or use --launcher local"
        )
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FascoreError(f"`{' '.join(cmd)}` did not answer in {timeout:.0f} s") from None


def job_views(refresh: bool = False) -> dict[str, tuple[str, str]]:
    """``{job id: (Slurm state, reason)}`` for this user's jobs Slurm still remembers (cached
    ``VIEW_TTL_S`` so a run table asks once); {} when Slurm cannot be asked."""
    if not refresh and time.monotonic() - _view_cache["at"] < VIEW_TTL_S:
        return _view_cache["jobs"]
    jobs: dict[str, tuple[str, str]] = {}
    try:
        out = _slurm(["squeue", "--me", "--states=all", "-r", "-h", "-o", "%i|%T|%r"], 10.0)
    except FascoreError:
        out = None
    if out is not None and out.returncode == 0:
        for line in out.stdout.splitlines():
            job, state, reason = (line.split("|") + ["", ""])[:3]
            jobs[job.strip()] = (state.strip().split()[0] if state.strip() else "", reason)
    _view_cache.update(at=time.monotonic(), jobs=jobs)
    return jobs


def job_view(job_id: str, refresh: bool = False) -> tuple[str, str] | None:
    """Slurm's (state, reason) for one job (array task ids as ``A_i``), or None if unknown."""
    view = job_views(refresh).get(job_id)
    if view is not None:
        return view
    try:  # another user's job, or squeue not allowed: ask for this one
        out = _slurm(["scontrol", "-o", "show", "job", job_id], 10.0)
    except FascoreError:
        return None
    fields = dict(f.split("=", 1) for f in out.stdout.split() if "=" in f)
    return (fields["JobState"], fields.get("Reason", "")) if "JobState" in fields else None


def effective_state(run: Run, status: dict) -> str:
    """A Slurm run's state: the status file's final states stand; while it says queued or
    running, Slurm's view decides (a job Slurm no longer knows, with a stale heartbeat, is
    interrupted). Registered as the ``slurm`` state probe of ``fascore.store.runs``."""
    state = status.get("state", "queued")
    job = status.get("slurm_job")
    if state not in ACTIVE_STATES or not job:
        return state
    view = job_view(str(job))
    if view is None:
        beat = float(status.get("heartbeat") or status.get("submitted") or time.time())
        return "interrupted" if time.time() - beat > 120.0 else state
    return STATE_MAP.get(view[0], state)


STATE_PROBES["slurm"] = effective_state


def wait_gone(job_id: str, timeout_s: float) -> bool:
    """Wait until Slurm no longer runs the job (its allocation is free); True if it is gone."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        view = job_view(job_id, refresh=True)
        if view is None or STATE_MAP.get(view[0]) == "interrupted":
            return True
        time.sleep(0.5)
    return False


# -- submission ------------------------------------------------------------------------------------
def check_sbatch() -> None:
    _slurm(["sbatch", "--version"])


def check_partition(partition: str | None) -> None:
    if partition is None:
        return
    out = _slurm(["sinfo", "-h", "-o", "%R"])
    names = sorted({p.strip() for p in out.stdout.split()})
    if out.returncode != 0:
        raise FascoreError(f"sinfo failed: {out.stderr.strip() or out.stdout.strip()}")
    if partition not in names:
        raise FascoreError(
            f"unknown Slurm partition {partition!r}; this cluster has: {', '.join(names) or 'none'}"
        )


#: srun's own words when it cannot reach the controller or allocate: the probe never ran.
SLURM_REFUSED = re.compile(r"(srun|salloc|sbatch): error: .*(Unable to|Invalid|controller|allocat)")


def check_store_visible(store: RunStore, opts: SlurmOptions, timeout_s: float = 120.0) -> None:
    """Check a compute node of the partition sees the run store and what it writes there is seen
    here (a shared filesystem): a one-task ``srun`` reads a token and writes an answer. Done once
    per store and partition (remembered in the store); skipped with ``check_store = false``."""
    if not opts.check_store:
        return
    folder = store.root.resolve() / SUBMITIT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    seen = folder / f"store-visible-{opts.partition or 'default'}"
    if seen.exists():
        return
    token = folder / f"probe-{uuid.uuid4().hex}"
    token.write_text(token.name)
    cmd = ["srun", "--ntasks=1", "--nodes=1", "--time=2", f"--cpus-per-task={1}",
           *([f"--partition={opts.partition}"] if opts.partition else []),
           "sh", "-c", 'cat "$1" && echo seen > "$1.answer"', "probe", str(token)]  # fmt: skip
    try:
        out = _slurm(cmd, timeout_s)
        answer = token.with_name(token.name + ".answer")
        for _ in range(20 if out.returncode == 0 else 0):  # NFS may show it a moment late
            if answer.exists():
                break
            time.sleep(0.25)
        if out.returncode != 0 or token.name not in out.stdout or not answer.exists():
            why = (out.stderr.strip().splitlines() or ["the token was not read back"])[-1]
            if out.returncode != 0 and SLURM_REFUSED.search(out.stderr):  # the probe never ran
                raise FascoreError(
                    f"Slurm could not run a one-task probe job on partition "
                    f"{opts.partition or '(default)'} ({why}); check that this machine reaches "
                    "the cluster (`sinfo`, `squeue`), or use --launcher local"
                )
            raise FascoreError(
                f"the compute nodes of partition {opts.partition or '(default)'} cannot see the run "
                f"store {store.root.resolve()} ({why}). Put the store on a filesystem the nodes "
                "share (set FASCORE_RUNS_DIR), or set check_store = false in slurm.toml"
            )
        seen.write_text(f"checked {time.ctime()}\n")
    finally:
        for p in (token, token.with_name(token.name + ".answer")):
            p.unlink(missing_ok=True)


def _executor(store: RunStore, opts: SlurmOptions, name: str, dependency: str | None):
    import submitit  # lazy: submitit loads only when a job is submitted or cancelled

    folder = store.root.resolve() / SUBMITIT_DIR
    try:
        ex = submitit.SlurmExecutor(folder=folder, max_num_timeout=opts.max_requeues,
                                    python=opts.python)  # fmt: skip
    except RuntimeError as err:  # submitit: "Could not detect srun"
        raise FascoreError(f"the slurm launcher cannot start: {err}") from None
    extra = opts.sbatch_parameters()
    if dependency:
        extra.update(dependency=dependency, kill_on_invalid_dep="yes")
    params: dict[str, Any] = dict(
        job_name=name, time=opts.time, cpus_per_task=opts.cpus, signal_delay_s=opts.signal_delay_s,
        stderr_to_stdout=True, additional_parameters=extra, setup=list(opts.setup),
    )  # fmt: skip
    if opts.partition:
        params["partition"] = opts.partition
    if opts.gpus:
        params["gpus_per_node"] = opts.gpus
    if opts.mem_gb:
        params["mem"] = f"{int(opts.mem_gb * 1024)}M"
    ex.update_parameters(**params)
    return ex


def _job_env(store: RunStore) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.startswith(PASS_ENV)}
    env[RUNS_ENV] = str(store.root.resolve())
    env[NO_SLOT_ENV] = "1"  # Slurm allocated this job its CPUs/GPUs: no fascore device slots
    return env


def _prepare(run: Run, argv: list[str]) -> list[str]:
    """Forget the run's previous Slurm job; a fresh start is cleaned here, keeping the status,
    so the job itself always runs ``--resume`` (a requeued job continues instead of restarting)."""
    status = {**run.status(), "slurm_job": None}
    if "--resume" not in argv:
        run.reset()
        argv = [*argv, "--resume"]
    run.write_json("status", status)
    return argv


def submit_array(
    store: RunStore, runs: list[tuple[Run, list[str]]], opts: SlurmOptions, after: list[str]
) -> list[str]:
    """Submit ``(run, argv)`` items as one Slurm job array (one job if a single item), each task
    waiting ``afterok`` on the job ids in ``after``; records each run's job id, returns them."""
    import submitit  # lazy: as in _executor

    deps = "afterok:" + ":".join(after) if after else None
    name = "fascore-" + (runs[0][0].id if len(runs) == 1 else f"array{len(runs)}")
    ex = _executor(store, opts, name, deps)
    python = opts.python or sys.executable
    env = _job_env(store)
    calls = [
        TrainJob(str(run.path.resolve()), _prepare(run, argv), env, python) for run, argv in runs
    ]
    try:
        with ex.batch():
            pending = [ex.submit(call) for call in calls]
    except (submitit.core.utils.FailedJobError, subprocess.CalledProcessError, OSError) as err:
        text = str(err).strip().splitlines()
        why = next(
            (ln.strip() for ln in reversed(text) if "error" in ln.lower()), text[-1] if text else ""
        )
        for run, _ in runs:
            run.update_status(state="failed", message=f"Slurm refused the job: {why}",
                              finished=time.time())  # fmt: skip
        raise FascoreError(f"Slurm refused the job: {why}") from None
    ids = []
    for (run, _), job in zip(runs, pending, strict=True):
        run.update_status(slurm_job=job.job_id, slurm_after=after, slurm=opts.to_dict(),
                          message="submitted to Slurm")  # fmt: skip
        where = f"partition {opts.partition}" if opts.partition else "the default partition"
        run.log(f"submitted to Slurm as job {job.job_id} on {where}"
                + (f", after {', '.join(after)}" if after else ""))  # fmt: skip
        ids.append(job.job_id)
    _view_cache["at"] = 0.0
    return ids


def slurm_job_of(run: Run) -> str | None:
    """The Slurm job id of a run that is still queued or running under Slurm (for afterok)."""
    status = run.status()
    if status.get("launcher") == "slurm" and run.state() in ACTIVE_STATES:
        return status.get("slurm_job")
    return None


def _levels(deps: dict[str, list[str]]) -> dict[str, int]:
    """0 for runs depending on no run of the plan, else 1 + their deepest dependency's level."""
    level: dict[str, int] = {}

    def depth(rid: str, seen: tuple[str, ...] = ()) -> int:
        if rid not in level:
            inside = [d for d in deps.get(rid, []) if d in deps and d not in seen]
            level[rid] = 1 + max((depth(d, (*seen, rid)) for d in inside), default=-1)
        return level[rid]

    for rid in deps:
        depth(rid)
    return level


def submit_arrays(
    items: list[tuple[RunConfig, list[str]]],
    store: RunStore,
    opts: SlurmOptions,
    retry_failed: bool = True,
) -> list[Run]:
    """Submit ``(config, run ids it depends on)`` items as one job array per dependency level;
    returns the plan's runs in plan order. Runs already queued, running or done are left alone;
    an interrupted run with a checkpoint resumes from it; failed and cancelled runs start again
    unless ``retry_failed`` is False (the sweep reports them instead)."""
    runs = {cfg.run_id(): store.run(cfg.run_id()) for cfg, _ in items}
    deps = {cfg.run_id(): list(d) for cfg, d in items}
    before = {rid: run.state() if run.has("config") else "new" for rid, run in runs.items()}
    resume = {r for r, s in before.items() if s == "interrupted" and runs[r].has("checkpoint")}
    skip = set() if retry_failed else {r for r, s in before.items() if s in ("failed", "cancelled")}
    fresh = [cfg for cfg, _ in items if cfg.run_id() not in skip
             and prepare_submission(cfg, store, launcher="slurm")]  # fmt: skip
    level = _levels(deps)
    jobs: dict[str, str] = {}
    for lv in sorted({level[c.run_id()] for c in fresh}):
        todo = [c.run_id() for c in fresh if level[c.run_id()] == lv]
        after = sorted({j for rid in todo for d in deps[rid]
                        if (j := jobs.get(d) or slurm_job_of(store.run(d)))})  # fmt: skip
        argv = [(runs[r], ["train", "--run", r, *(["--resume"] if r in resume else [])])
                for r in todo]  # fmt: skip
        for rid, job in zip(todo, submit_array(store, argv, opts, after), strict=True):
            jobs[rid] = job
    return [runs[cfg.run_id()] for cfg, _ in items]


@LAUNCHERS.register("slurm")
class SlurmLauncher(Launcher):
    """Runs each job as a Slurm batch job through submitit (see the module docstring)."""

    name = "slurm"

    def __init__(self, options: SlurmOptions | None = None) -> None:
        self.options = options

    def _options(self, run: Run) -> SlurmOptions:
        if self.options is not None:
            return self.options
        kept = run.status().get("slurm")  # a resume reuses what the run was submitted with
        if kept:
            return SlurmOptions.from_dict(kept, where=f"run {run.id}'s status")
        return load_options(run.path.parent)

    def check(self, store: RunStore, opts: SlurmOptions) -> None:
        """Everything that can be known before a submission: sbatch, partition, shared store."""
        check_sbatch()
        check_partition(opts.partition)
        check_store_visible(store, opts)

    def start(self, run: Run, argv: list[str], env: dict[str, str]) -> dict[str, Any]:
        store, opts = RunStore(run.path.parent), self._options(run)
        self.check(store, opts)
        teacher = RunConfig.from_dict(run.config()).teacher if run.has("config") else None
        after = [j for j in [slurm_job_of(store.run(teacher))] if j] if teacher else []
        submit_array(store, [(run, argv)], opts, after)
        return {"pid": None, "pgid": None}

    def stop(self, run: Run, grace_s: float) -> None:
        import submitit  # lazy: as in _executor

        job = run.status().get("slurm_job")
        if not job:
            return
        folder = run.path.parent.resolve() / SUBMITIT_DIR
        try:
            submitit.SlurmJob(folder=folder, job_id=str(job)).cancel(check=True)
        except (subprocess.CalledProcessError, OSError) as err:
            raise FascoreError(f"scancel {job} failed: {err}") from None
        if not wait_gone(str(job), max(grace_s, 5.0) + 30.0):
            raise FascoreError(
                f"Slurm job {job} is still running after scancel; see `squeue -j {job}`"
            )

    @staticmethod
    def describe(run: Run) -> str | None:
        """One line for the dashboard: the run's Slurm job and what Slurm says of it (None for
        runs not submitted to Slurm)."""
        status = run.status()
        job = status.get("slurm_job")
        if status.get("launcher") != "slurm" or not job:
            return None
        view = job_view(str(job))
        said = (
            ""
            if view is None
            else f"Slurm: {view[0].lower()}"
            + (f" ({view[1]})" if view[1] not in ("", "None") else "")
        )
        after = status.get("slurm_after") or []
        part = (status.get("slurm") or {}).get("partition") or "default partition"
        return (f"Slurm job {job} on {part} · {said if view else 'Slurm no longer lists it'}"
                + (f" · after {', '.join(after)}" if after else ""))  # fmt: skip

    def submit_plan(
        self, items: list[tuple[RunConfig, list[str]]], store: RunStore, **kw: Any
    ) -> list[Run]:
        """A plan as job arrays with ``afterok`` dependencies (see ``fascore.jobs.slurm.plan``)."""
        opts = self.options or load_options(store.root)
        self.check(store, opts)
        return submit_arrays(items, store, opts, **kw)
