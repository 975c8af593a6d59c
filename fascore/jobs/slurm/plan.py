"""A plan of runs (a sweep, or the Train page's methods x seeds) on Slurm: job arrays.

Each dependency level of the plan becomes one Slurm job array: the teachers (runs that depend on
no run of the plan) first, then the students, submitted with ``--dependency=afterok:<the teacher
tasks they need>`` (and ``--kill-on-invalid-dep=yes``, so Slurm cancels them if a teacher fails).
A teacher already done is no dependency; one still queued or running under Slurm from an earlier
submission is waited for by its job id. ``slurm_plan`` is the sweep's plan launcher
(``fascore.jobs.sweep.PLAN_LAUNCHERS``): it submits, then follows the runs until they end, so
the sweep can write its results table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fascore.config import RunConfig
from fascore.jobs.control import prepare_submission
from fascore.jobs.slurm.launcher import SlurmLauncher, _slurm_job_of, submit_array
from fascore.jobs.slurm.options import SlurmOptions
from fascore.jobs.sweep import PLAN_LAUNCHERS
from fascore.store.runs import ACTIVE_STATES, Run, RunStore


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


def submit_plan(
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
             and prepare_submission(cfg, store, launcher=SlurmLauncher.name)]  # fmt: skip
    level = _levels(deps)
    jobs: dict[str, str] = {}
    for lv in sorted({level[c.run_id()] for c in fresh}):
        todo = [c.run_id() for c in fresh if level[c.run_id()] == lv]
        after = sorted({j for rid in todo for d in deps[rid]
                        if (j := jobs.get(d) or _slurm_job_of(store.run(d)))})  # fmt: skip
        argv = [(runs[r], ["train", "--run", r, *(["--resume"] if r in resume else [])])
                for r in todo]  # fmt: skip
        for rid, job in zip(todo, submit_array(store, argv, opts, after), strict=True):
            jobs[rid] = job
    return [runs[cfg.run_id()] for cfg, _ in items]


@PLAN_LAUNCHERS.register("slurm")
def slurm_plan(
    configs: list[RunConfig],
    store: RunStore,
    options: SlurmOptions | None = None,
    report: Callable[[str], None] | None = None,
    poll_s: float = 5.0,
    wait: bool = True,
    **_: Any,
) -> list[Run]:
    """The sweep's plan launcher: submit the plan as job arrays, then (``wait``) report each
    run's state changes until every run has ended. Interrupting the wait leaves the jobs on the
    cluster; running the same sweep again waits for them (nothing is submitted twice)."""
    items = [(c, [c.teacher] if c.teacher else []) for c in configs]
    runs = SlurmLauncher(options).submit_plan(items, store, retry_failed=False)
    say = report or (lambda _msg: None)
    for run in runs:
        say(f"{run.state():9s} {run.id} (Slurm job {run.status().get('slurm_job') or '-'})")
    last = {r.id: r.state() for r in runs}
    while wait and any(s in ACTIVE_STATES for s in last.values()):
        time.sleep(poll_s)
        for run in runs:
            if (state := run.state()) != last[run.id]:
                say(f"{state:9s} {run.id}")
                last[run.id] = state
    return runs
