"""``python -m fascore demo``: the demo experiment on SynthFAS, end to end in this process."""

from __future__ import annotations

import argparse
import time

from fascore.jobs.plan import BUDGETS, STUDENT_METHODS, demo_configs


def _demo(args: argparse.Namespace) -> int:
    overrides = {"epochs": args.epochs} if args.epochs else {}
    if args.device:
        overrides["device"] = args.device
    configs = demo_configs(
        args.preset, tuple(args.seeds), tuple(args.methods or ()) or None, **overrides
    )
    from fascore.jobs.demo import run_demo  # start-up cost: torch (~4 s) for every CLI command

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
