"""Train planned configs in order, in this process (``python -m fascore demo`` and ``results``).

The plans themselves (the demo protocol, ``demo_configs``) are in ``fascore.jobs.plan``.
"""

from __future__ import annotations

import time

from fascore.config import RunConfig
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
