"""``python -m fascore``: one sub-command per feature module.

Each module in ``COMMAND_MODULES`` defines ``add_cli(subparsers)``, which adds its sub-command(s)
and sets ``func`` (taking the parsed args, returning an exit status). A ``FascoreError`` becomes
one readable line on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from fascore.errors import FascoreError

COMMAND_MODULES = [
    "fascore.commands.train",
    "fascore.jobs.demo",
    "fascore.jobs.results",
    "fascore.commands.sweep",
    "fascore.commands.jobs",
    "fascore.data.validate",
    "fascore.commands.import_data",
    "fascore.commands.report",
    "fascore.commands.analyse",
    "fascore.commands.synth",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fascore",
        description="Face anti-spoofing distillation lab: data, training, analysis, reports.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # how a result file names its command
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except FascoreError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
