"""``python -m fascore validate MANIFEST``: a readable report, exit status 1 on problems."""

from __future__ import annotations

import argparse


def _handler(args: argparse.Namespace) -> int:
    # lazy: the checks load pandas and PIL, which `validate --help` does not need
    from fascore.data.validate import format_report, validate_manifest

    report = validate_manifest(args.manifest, images=not args.no_images, sample=args.sample)
    print(format_report(report))
    return 0 if report.ok else 1


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check a manifest and print a readable report")
    p.add_argument("manifest", help="manifest.csv or the folder that holds it")
    p.add_argument("--no-images", action="store_true", help="do not open images (faster)")
    p.add_argument("--sample", type=int, default=None, help="decode about N images (default: all)")
    p.set_defaults(func=_handler)
