"""``python -m fascore results``: train or reuse the demo protocol over seeds, write docs/results.md."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _results(args: argparse.Namespace) -> int:
    from fascore.jobs.results import write_results  # start-up cost: torch (~4 s) for every command

    out = Path(args.out)
    cmd = "python -m fascore results " + " ".join(sys.argv[2:])
    fig = write_results(args.preset, tuple(args.seeds), out, cmd)
    print(f"wrote {out} and {fig}")
    return 0


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "results", help="train/reuse the demo protocol over seeds and write docs/results.md"
    )
    p.add_argument("--preset", default="demo")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default="docs/results.md")
    p.set_defaults(func=_results)
