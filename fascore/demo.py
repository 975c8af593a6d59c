"""The demo experiment: a teacher on SynthFAS's source domain and one student per method on the
application-specific target domain with k shots, end to end from one command.

Protocol (``DEMO_PROTOCOL``): source ``studio`` (a rich, clean capture), target ``phone`` (a new
camera with its own printers and screens), 5 labelled target presentations per class.
"""

from __future__ import annotations

import argparse
import time

from fascore.config import RunConfig
from fascore.methods import METHODS
from fascore.runs import Run, RunStore

DEMO_PROTOCOL = {"source_domains": ("studio",), "target_domain": "phone", "shots": 5}
STUDENT_METHODS = ("target_only", "finetune", "kd", "mmd", "pair", "distill")
#: Per-preset training budget: the demo must finish in about 3 minutes on 2 CPU cores.
BUDGETS = {
    "tiny": {"epochs": 2, "batch_size": 32},
    "demo": {"epochs": 6, "batch_size": 64},
    "full": {"epochs": 12, "batch_size": 64},
}


def teacher_config(data: str, preset: str, seed: int, **overrides) -> RunConfig:
    """The source-only teacher: it sees no target label (shots 0), selected on the source dev."""
    base = {**DEMO_PROTOCOL, **BUDGETS.get(preset, BUDGETS["demo"]), **overrides}
    base.update(method="source_only", shots=0, select="source_dev", seed=seed, data=(data,))
    base.setdefault("experiment", f"synthfas-{preset}")
    return RunConfig.from_dict(base)


def demo_configs(
    preset: str = "demo",
    seeds: tuple[int, ...] = (0,),
    methods: tuple[str, ...] | None = None,
    data: str | None = None,
    **overrides,
) -> list[RunConfig]:
    """Teacher first, then one student per method naming the teacher's run id, for each seed."""
    if data is None:
        from fascore.synth import ensure_synth

        data = str(ensure_synth(preset))
    methods = tuple(methods or STUDENT_METHODS)
    for m in methods:
        METHODS.get(m)  # a clear error for an unknown name
    configs = []
    for seed in seeds:
        teacher = teacher_config(data, preset, seed, **overrides)
        configs.append(teacher)
        for m in methods:
            if m == "source_only":
                continue
            student = teacher.to_dict() | {**DEMO_PROTOCOL, **overrides}
            student.update(method=m, seed=seed, teacher=teacher.run_id(), select="target_dev")
            student.pop("created")
            configs.append(RunConfig.from_dict(student))
    return configs


def run_demo(configs: list[RunConfig], store: RunStore | None = None, progress=True) -> list[Run]:
    """Train the configs in order, in this process (the teacher first)."""
    from fascore.training import train

    runs = []
    for cfg in configs:
        t0 = time.time()
        run = train(cfg, store, progress=progress)
        test = (run.read_json("final") or {}).get("target_test") or {}
        hter = f"HTER {test['hter']:.3f}" if "hter" in test else "no target metrics"
        print(f"{cfg.method:12s} {run.state():9s} {hter}  {time.time() - t0:5.1f}s  {run.id}")
        runs.append(run)
    return runs


def _demo(args: argparse.Namespace) -> int:
    overrides = {"epochs": args.epochs} if args.epochs else {}
    if args.device:
        overrides["device"] = args.device
    configs = demo_configs(
        args.preset, tuple(args.seeds), tuple(args.methods or ()) or None, **overrides
    )
    t0 = time.time()
    runs = run_demo(configs, progress=False)
    print(
        f"{len(runs)} runs in {time.time() - t0:.0f}s; see them with `python -m fascore runs` "
        "or `streamlit run dashboard/app.py`"
    )
    return 0 if all(r.state() == "done" for r in runs) else 1


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the demo experiment on SynthFAS end to end")
    p.add_argument("--preset", default="demo", choices=sorted(BUDGETS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument(
        "--methods", nargs="+", help=f"student methods (default: all of {STUDENT_METHODS})"
    )
    p.add_argument("--epochs", type=int, help="override the preset's epochs")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:1, mps")
    p.set_defaults(func=_demo)
