"""The sweep's plan launcher on Slurm (``fascore.jobs.launchers.PLAN_LAUNCHERS``).

``slurm_plan`` submits the plan as job arrays, one per dependency level, students ``afterok`` on
their teachers (``SlurmLauncher.submit_plan``), then follows the runs until they end, so the
sweep can write its results table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fascore.config import RunConfig
from fascore.jobs.launchers import PLAN_LAUNCHERS
from fascore.jobs.slurm.launcher import SlurmLauncher
from fascore.jobs.slurm.options import SlurmOptions
from fascore.store.runs import ACTIVE_STATES, Run, RunStore


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
