"""``python -m fascore runs | cancel RUN | resume RUN``: the job queue from a terminal."""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING

from fascore.jobs.slurm.options import add_flags as add_launcher_flags

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ("run", "state", "method", "target", "shots", "seed", "regime", "labels", "HTER", "AUC",
           "HTER(target-dev)", "progress")  # fmt: skip


def _percent(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * float(value):.1f}%"


def _labels(used: object, extra: object) -> str:
    """Labelled target videos the headline used, e.g. ``10`` or ``58 (48 extra)``."""
    if used is None or (isinstance(used, float) and math.isnan(used)):
        return "-"
    return f"{int(used)}" + (f" ({int(extra)} extra)" if extra else "")


def _text_table(df: pd.DataFrame) -> str:
    """Left-aligned columns two spaces apart (run ids and words read best that way)."""
    widths = [max(len(c), int(df[c].str.len().max())) for c in df.columns]
    lines = [list(df.columns), *df.itertuples(index=False)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)  # fmt: skip


def format_runs(table: pd.DataFrame) -> str:
    """The run table as readable text, one block per experiment (HTER, AUC, progress in %)."""
    if table.empty:
        return "no runs yet: start one with `python -m fascore demo` or `python -m fascore train`"
    unreadable = table["state"] == "unreadable"
    shown = table.assign(
        state=table["state"].where(~unreadable, "unreadable: " + table["problem"]),
        HTER=table["hter"].map(_percent),
        AUC=table["auc"].map(_percent),
        progress=table["progress"].map(_percent),
        regime=table["regime"].fillna("-"),
        labels=[
            _labels(u, e)
            for u, e in zip(table["target_labels"], table["extra_labels"], strict=True)
        ],
        **{"HTER(target-dev)": table["hter_target_dev"].map(_percent)},
        shots=table["shots"].map(lambda k: "all" if k is None or k != k else str(int(k))),
        seed=table["seed"].map(lambda s: "-" if s is None or s != s else str(int(s))),
    )
    blocks = []
    for experiment, group in shown.groupby("experiment", sort=True):
        body = _text_table(group.loc[:, list(COLUMNS)].fillna("-").astype(str))
        blocks.append(f"experiment: {experiment or '(none)'}\n{body}")
    return "\n\n".join(blocks)


def _runs(args: argparse.Namespace) -> int:
    from fascore.jobs import control as jobs  # lazy: pandas, not for `runs --help`

    print(format_runs(jobs.list_runs(experiment=args.experiment)))
    return 0


def _cancel(args: argparse.Namespace) -> int:
    # lazy: the job control and the store load pandas, which `cancel --help` does not need
    from fascore.jobs import control as jobs
    from fascore.store.runs import RunStore

    run = jobs.cancel(RunStore().get(args.run), grace_s=args.grace)
    print(f"{run.id}: cancelled")
    return 0


def _resume(args: argparse.Namespace) -> int:
    # lazy: the job control and the store load pandas, which `resume --help` does not need
    from fascore.commands.train import launcher_from_args
    from fascore.jobs import control as jobs
    from fascore.store.runs import RunStore

    store = RunStore()
    launcher = launcher_from_args(args, store) if args.launcher else None
    run = jobs.resume(store.get(args.run), store, launcher)
    status = run.status()
    where = (
        f"Slurm job {status['slurm_job']}"
        if status.get("slurm_job")
        else f"pid {status.get('pid')}"
    )
    print(f"{run.id}: resuming from its last checkpoint ({where})")
    return 0


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="list runs and their states")
    p.add_argument("--experiment", help="show only this experiment's runs")
    p.set_defaults(func=_runs)
    p = sub.add_parser("cancel", help="cancel a queued or running job (stops its process group)")
    p.add_argument("run", help="run id (see `python -m fascore runs`)")
    p.add_argument("--grace", type=float, default=10.0, help="seconds between SIGTERM and SIGKILL")
    p.set_defaults(func=_cancel)
    p = sub.add_parser("resume", help="relaunch an interrupted, failed or cancelled run")
    p.add_argument("run", help="run id (see `python -m fascore runs`)")
    add_launcher_flags(p)  # default: the launcher (and Slurm options) it was submitted with
    p.set_defaults(func=_resume)
