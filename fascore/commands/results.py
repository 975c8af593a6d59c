"""``python -m fascore results``: train or reuse the demo protocol's sweeps, write docs/results.md."""

from __future__ import annotations

import argparse


def _results(args: argparse.Namespace) -> int:
    from fascore.jobs.results import write_results  # start-up cost: torch (~4 s) for every command

    out = write_results(args)
    print(f"wrote {out} and {out.with_name('results.csv')}")
    return 0


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "results", help="train/reuse the demo protocol's sweeps and write docs/results.md"
    )
    p.add_argument("--preset", default="demo")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--grid-seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument(
        "--shots-seeds", type=int, nargs="*", default=[0, 1, 2],
        help="seeds of the HTER-against-shots sweep (none: skip it)",
    )  # fmt: skip
    p.add_argument("--epochs", type=int, help="override the preset's epochs")
    p.add_argument("--out", default="docs/results.md")
    p.add_argument(
        "--collect-only", action="store_true", help="write the page from finished runs only"
    )
    p.set_defaults(func=_results)
