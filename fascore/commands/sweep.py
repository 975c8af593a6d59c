"""``python -m fascore sweep``: methods x seeds x shots on any manifest, then the results table.

Example: ``python -m fascore sweep --data DIR/manifest.csv --source-domains studio
--target-domain phone --methods finetune distill --seeds 0 1 2 --shots 1 5 --out exp/k``.
Every ``train`` flag (``--epochs``, ``--w-mmd`` ...) applies to every run. Rerunning the same
command continues an interrupted sweep (see ``fascore.jobs.sweep``).
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from fascore.commands.train import add_config_flags
from fascore.config import RunConfig
from fascore.errors import FascoreError
from fascore.jobs.slurm.options import add_flags as add_launcher_flags

PER_RUN = ("method", "seed", "shots", "teacher", "episode")


def _shots(text: str) -> int | None:
    if text.lower() == "all":
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"shots must be whole numbers or 'all', not {text!r}")
    return int(text)


def base_config(args: argparse.Namespace) -> RunConfig:
    """The config every run of the sweep shares (its method, seed and shots set per run)."""
    values = {k[4:]: tuple(v) if isinstance(v, list) else v
              for k, v in vars(args).items() if k.startswith("cfg_")}  # fmt: skip
    values.setdefault("experiment", Path(args.out).name)
    return RunConfig.from_dict(values)


def _sweep(args: argparse.Namespace) -> int:
    # lazy: the sweep and the store load pandas, which `sweep --help` does not need
    from fascore.jobs import sweep
    from fascore.store.runs import RunStore

    sweep.check_launcher(args.launcher)  # before plan.json is written
    base = base_config(args)
    configs = sweep.plan_sweep(base, args.methods, args.seeds, args.shots, args.episodes)
    baseline = args.baseline or next(
        (m for m in ("finetune", *args.methods) if m in args.methods and m != "source_only"),
        "source_only",
    )
    if baseline not in (*args.methods, "source_only"):
        raise FascoreError(f"baseline {baseline!r} is not one of the sweep's methods")
    out = Path(args.out)
    command = "python -m fascore " + shlex.join(args.argv)
    sweep.write_plan(out, configs, command)
    if args.launcher == "inprocess":
        print("training in this process, in plan order")
    print(f"sweep: {len(configs)} runs into {RunStore().root} (teachers first)")
    kw = {"workers": args.workers} if args.launcher == "inprocess" else {}
    if args.launcher == "slurm":  # job options: flags over <store>/slurm.toml
        from fascore.jobs.slurm.options import options_from_args

        kw["options"] = options_from_args(args, RunStore().root)
    runs = sweep.submit_plan(configs, launcher=args.launcher, report=print, **kw)
    df = sweep.write_results(out, runs, baseline, command)
    done = sum(r.state() == "done" for r in runs)
    print(f"{done}/{len(runs)} runs done; wrote {out / 'results.csv'} ({len(df)} rows) and "
          f"{out / 'results.md'}")  # fmt: skip
    return 0 if done == len(runs) else 1


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="train methods x seeds x shots on any manifest and aggregate the results",
        description=__doc__.split("\n\n")[1],
    )
    p.add_argument("--methods", nargs="+", required=True, help="method names (see `train --help`)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="seeds (default: 0)")
    p.add_argument("--shots", nargs="+", type=_shots, default=[5], help="k values or 'all'")
    p.add_argument(
        "--episodes", type=int, default=1,
        help="independent shot draws per teacher seed, the same for every method (default: 1)",
    )  # fmt: skip
    p.add_argument("--out", required=True, help="folder for results.csv, results.md, the figure")
    p.add_argument("--baseline", help="method the others are compared with (default: finetune)")
    p.add_argument(
        "--launcher", default="local",
        help="job launcher (default: local; inprocess: every run in this process, in order)",
    )  # fmt: skip
    p.add_argument(
        "--workers", type=int, default=1,
        help="with --launcher inprocess: one-thread worker processes for the students",
    )  # fmt: skip
    add_launcher_flags(p, launcher=False)  # --partition, --gpus ... for --launcher slurm
    add_config_flags(p, skip=PER_RUN)
    p.set_defaults(func=_sweep)
