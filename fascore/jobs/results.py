"""``python -m fascore results``: train (or reuse) the demo protocol's episodes, write
docs/results.md (the page itself is written by ``fascore.eval.results.doc``).

Sweeps over the demo protocol (teacher on ``studio``, students on ``phone``), each planned by
``fascore.jobs.sweep.plan_sweep`` with ``episodes`` independent shot draws per teacher seed (the
same draws for every method) and trained in this process, teachers first (finished runs are
reused, since a config's hash names its run; an interrupted call continues):

- ``main``: every method at k = 5 over ``--episodes`` episodes;
- ``shots``: ``SHOTS_METHODS`` at k = 1 and 20 over ``--shots-episodes`` episodes;
- ``ablation``: ``distill`` with the alignment options of issue 19 switched (train-mode
  features; class-conditional MMD) over ``--ablation-episodes`` episodes;
- ``diagnosis`` (unless ``--no-diagnosis``): the demo's own analysed runs (seed 0, episode 0),
  for the lab's views; trained first.

Nothing is tuned here: the tables are whatever the runs give.
"""

from __future__ import annotations

import time
from pathlib import Path

from fascore.config import RunConfig
from fascore.data.synth.cache import preset_manifest
from fascore.jobs.plan import BUDGETS, DEMO_PROTOCOL, STUDENT_METHODS, demo_configs
from fascore.jobs.sweep import plan_sweep, submit_plan
from fascore.store.runs import Run, RunStore

SHOTS = (1, 20)  # the other k of the shots sweep (k = 5 is the main sweep)
SHOTS_METHODS = ("target_only", "finetune", "distill")
ABLATION = {"train-mode features": {"align_features": "train"},
            "class-conditional MMD": {"mmd_classes": "conditional"}}  # fmt: skip


def base_config(preset: str, epochs: int | None) -> RunConfig:
    budget = dict(BUDGETS.get(preset, BUDGETS["demo"]))
    if epochs:
        budget["epochs"] = epochs
    return RunConfig(data=(str(preset_manifest(preset)),), **DEMO_PROTOCOL, **budget,
                     analysis=False, n_boot=200, experiment=f"synthfas-{preset}-results")  # fmt: skip


def plans(base: RunConfig, args) -> dict[str, list[RunConfig]]:
    """The configs of each sweep (teachers first); shared runs appear in several plans.

    ``args`` holds ``seeds, episodes, shots_episodes, ablation_episodes, preset``."""
    seeds = list(args.seeds)
    main = plan_sweep(base, ["source_only", *STUDENT_METHODS], seeds, [5], args.episodes)
    out = {"main": main}
    if args.shots_episodes:
        out["shots"] = plan_sweep(base, list(SHOTS_METHODS), seeds, list(SHOTS),
                                  args.shots_episodes)  # fmt: skip
    if args.ablation_episodes:
        teachers = [c for c in main if c.method == "source_only"]
        distill = [c for c in main if c.method == "distill" and c.episode < args.ablation_episodes]
        out["ablation"] = teachers + [c.replace(**change) for c in distill
                                      for change in ABLATION.values()]  # fmt: skip
    if not getattr(args, "no_diagnosis", False):
        out = {"diagnosis": demo_configs(args.preset, (0,), epochs=base.epochs), **out}
    return out


def train_all(configs: list[RunConfig], store: RunStore, workers: int = 1) -> list[Run]:
    """Every config once, teachers first, through the ``inprocess`` plan launcher."""
    unique = list({c.run_id(): c for c in configs}.values())
    unique.sort(key=lambda c: c.teacher is not None)
    submit_plan(unique, launcher="inprocess", store=store, report=print, workers=workers)
    return [store.run(c.run_id()) for c in configs]


def write_results(args) -> Path:
    """Train (or reuse) every sweep's runs, then write ``args.out`` and ``results.csv`` beside it.

    ``args`` holds the CLI's flags (``preset, seeds, episodes, shots_episodes,
    ablation_episodes, epochs, out, collect_only``)."""
    from fascore.eval.results.doc import write_doc  # start-up cost: matplotlib, captum

    t0, cpu0 = time.time(), time.process_time()
    base = base_config(args.preset, args.epochs)
    store = RunStore()
    configs = plans(base, args)
    if args.collect_only:  # write the page from the runs finished so far, train nothing
        runs = {k: [store.run(c.run_id()) for c in v] for k, v in configs.items()}
    else:
        runs = {k: train_all(v, store, args.workers) for k, v in configs.items()}
    out = Path(args.out)
    write_doc(out, runs, args, time.time() - t0, time.process_time() - cpu0)
    return out
