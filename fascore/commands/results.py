"""``python -m fascore results``: train or reuse the demo protocol's episodes, write docs/results.md."""

from __future__ import annotations

import argparse


def _results(args: argparse.Namespace) -> int:
    from fascore.jobs.results import write_results  # start-up cost: torch (~4 s) for every command

    out = write_results(args)
    print(f"wrote {out} and {out.with_name('results.csv')}")
    return 0


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "results", help="train/reuse the demo protocol's episodes and write docs/results.md"
    )
    p.add_argument("--preset", default="demo")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="teacher seeds")
    p.add_argument("--episodes", type=int, default=30, help="shot draws per teacher seed at k = 5")
    p.add_argument(
        "--shots-episodes", type=int, default=10,
        help="episodes at k = 1 and 20 (0: skip the shots sweep)",
    )  # fmt: skip
    p.add_argument(
        "--ablation-episodes", type=int, default=10,
        help="episodes of the alignment-option ablation (0: skip it)",
    )  # fmt: skip
    p.add_argument(
        "--no-diagnosis", action="store_true",
        help="skip the analysed demo runs (alignment, Grad-CAM) of the lab's views",
    )  # fmt: skip
    p.add_argument("--workers", type=int, default=1, help="one-thread training processes")
    p.add_argument("--epochs", type=int, help="override the preset's epochs")
    p.add_argument("--out", default="docs/results.md")
    p.add_argument(
        "--collect-only", action="store_true", help="write the page from finished runs only"
    )
    p.set_defaults(func=_results)
