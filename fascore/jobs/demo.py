"""Train planned configs in order, in this process (``python -m fascore demo``, ``results`` and
``sweep --launcher inprocess``).

The plans themselves (the demo protocol, ``demo_configs``) are in ``fascore.jobs.plan``.
"""

from __future__ import annotations

import time

from fascore.config import RunConfig
from fascore.errors import FascoreError
from fascore.eval.analysis.hooks import RunAnalysis
from fascore.store.runs import Run, RunStore
from fascore.train.loop import train


def run_demo(configs: list[RunConfig], store: RunStore | None = None, progress=True) -> list[Run]:
    """Train the configs in order, in this process (the teacher first)."""
    runs = []
    for cfg in configs:
        t0 = time.time()
        run = train(cfg, store, progress=progress, analysis=RunAnalysis())
        test = (run.read_json("final") or {}).get("target_test") or {}
        hter = f"HTER {test['hter']:.3f}" if "hter" in test else "no target metrics"
        print(f"{cfg.method:12s} {run.state():9s} {hter}  {time.time() - t0:5.1f}s  {run.id}")
        runs.append(run)
    return runs


def train_in_process(
    configs: list[RunConfig], store: RunStore | None = None, report=None
) -> list[Run]:
    """Train every config not yet done, in order (teachers first), in this interpreter; a run
    that fails is reported and the plan goes on (its students are skipped). Returns the runs
    in plan order."""
    store = store or RunStore()
    say = report or (lambda _msg: None)
    failed: set[str] = set()
    runs = []
    for cfg in configs:
        run = store.run(cfg.run_id())
        if run.state() != "done" and cfg.teacher in failed:
            say(f"skipped   {run.id}: teacher {cfg.teacher} failed")
        elif run.state() != "done":
            try:
                train(cfg, store, progress=False, analysis=RunAnalysis())
            except FascoreError as err:
                failed.add(run.id)
                say(f"failed    {run.id}: {err}")
        say(f"{run.state():9s} {run.id}")
        runs.append(run)
    return runs
