"""Train planned configs in order, in this process (``python -m fascore demo``, ``results`` and
``sweep --launcher inprocess``).

The plans themselves (the demo protocol, ``demo_configs``) are in ``fascore.jobs.plan``.
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import torch

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
    configs: list[RunConfig],
    store: RunStore | None = None,
    report=None,
    workers: int = 1,
    threads: int = 1,
) -> list[Run]:
    """Train every config not yet done, teachers first, in this interpreter (``workers`` = 1)
    or in ``workers`` child processes that each train a share of the students in one
    interpreter; a run that fails is reported and the plan goes on. Returns the runs in plan
    order.

    Each process trains with ``threads`` torch threads (default 1): the models are small, and
    on a shared machine two intra-op threads spent ~10x the CPU time per step of one (spinning
    while waiting for each other; docs/benchmarks.md), so several one-thread processes are the
    efficient way to use several cores."""
    store = store or RunStore()
    say = report or print
    torch.set_num_threads(threads)
    needed = {c.teacher for c in configs if c.teacher}
    first = [c for c in configs if c.run_id() in needed]
    rest = [c for c in configs if c.run_id() not in needed]
    _train_list(first, store.root, say)
    if workers <= 1 or len(rest) < 2:
        _train_list(rest, store.root, say)
    else:
        ctx = multiprocessing.get_context("spawn")  # no fork after torch started its threads
        chunks = [[c.to_dict() for c in rest[i::workers]] for i in range(workers)]
        procs = [ctx.Process(target=_worker, args=(ch, str(store.root), threads)) for ch in chunks]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
    return [store.run(c.run_id()) for c in configs]


def _worker(configs: list[dict], root: str, threads: int) -> None:
    """A child process of ``train_in_process``: train its share of the configs in order."""
    torch.set_num_threads(threads)
    _train_list([RunConfig.from_dict(c) for c in configs], Path(root), print)


def _train_list(configs: list[RunConfig], root: Path, say) -> None:
    store = RunStore(root)
    for cfg in configs:
        run = store.run(cfg.run_id())
        if run.state() == "done":
            continue
        if cfg.teacher and store.run(cfg.teacher).state() != "done":
            say(f"skipped   {run.id}: teacher {cfg.teacher} is not done")
            continue
        t0, c0 = time.time(), time.process_time()
        try:
            train(cfg, store, progress=False, analysis=RunAnalysis())
        except FascoreError as err:
            say(f"failed    {run.id}: {err}")
            continue
        say(f"{run.state():9s} {run.id} ({time.process_time() - c0:.0f} s CPU, "
            f"{time.time() - t0:.0f} s)")  # fmt: skip
