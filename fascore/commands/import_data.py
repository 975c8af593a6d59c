"""``python -m fascore import DATASET SRC --out DIR``: a public PAD data set into a manifest."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from fascore.data.importers import IMPORTERS, ImportOptions, ImportResult, run_import
from fascore.data.importers.base import DETECTORS
from fascore.errors import FascoreError
from fascore.progress import terminal_bar

SHOW = 10  # skipped files listed on the terminal (all of them are in preprocessing.json)


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "import",
        help="import Replay-Attack, CASIA-FASD, MSU-MFSD or OULU-NPU into a manifest",
        description="Decode a public PAD data set as distributed, crop faces, and write "
        "images, manifest.csv and preprocessing.json. Re-running resumes. See docs/datasets.md.",
    )
    p.add_argument("dataset", choices=sorted(IMPORTERS.names()))
    p.add_argument("src", type=Path, help="the data set's folder, as distributed")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    rule = p.add_mutually_exclusive_group()
    rule.add_argument("--frames", type=int, default=10, help="evenly spaced frames per video")
    rule.add_argument("--every", type=int, help="or every K-th frame, from frame 0")
    p.add_argument("--size", type=int, default=128, help="face crop side in pixels")
    p.add_argument("--margin", type=float, default=0.2, help="added on each side of the face")
    p.add_argument("--detector", default="haar", choices=DETECTORS.names())
    p.add_argument(
        "--no-annotations",
        action="store_true",
        help="ignore the data set's face boxes and use the detector everywhere",
    )
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    p.add_argument("--protocol", help="OULU-NPU only: 1, 2, 3_1 ... 3_6, 4_1 ... 4_6")
    p.add_argument("--seed", type=int, default=0, help="seeds the dev carve-out (CASIA, MSU)")
    p.set_defaults(func=handle)


def options(args: argparse.Namespace) -> ImportOptions:
    """The parsed arguments as import options, with readable errors for bad values."""
    if (args.every or args.frames) < 1 or args.size < 16 or not 0 <= args.margin <= 2:
        raise FascoreError("need --frames/--every >= 1, --size >= 16 and 0 <= --margin <= 2")
    if args.workers < 1:
        raise FascoreError("--workers must be at least 1")
    if args.protocol and args.dataset != "oulu-npu":
        raise FascoreError("--protocol applies to oulu-npu only; the others have one protocol")
    return ImportOptions(
        frames=None if args.every else args.frames,
        every=args.every,
        size=args.size,
        margin=args.margin,
        detector=args.detector,
        use_annotations=not args.no_annotations,
        workers=args.workers,
        protocol=args.protocol,
        seed=args.seed,
    )


def summary(result: ImportResult) -> list[str]:
    """Lines for the terminal: what was written, then warnings."""
    rec = result.record
    totals, dropped = rec["totals"], rec["totals"]["frames_dropped"]
    lines = [
        f"imported {totals['videos']} video(s), {totals['frames_kept']} face crop(s) into "
        f"{result.manifest} (details: preprocessing.json beside it)"
    ]
    if result.resumed:
        lines.append(f"{result.resumed} video(s) reused from an earlier run with the same options")
    lines += [f"note: {note}" for note in rec["notes"]]
    if dropped["no_face"] or dropped["not_decoded"]:
        lines.append(
            f"warning: {dropped['no_face']} frame(s) dropped without a face, "
            f"{dropped['not_decoded']} not decodable"
        )
    if result.empty:
        lines.append(f"warning: {len(result.empty)} video(s) gave no face crop at all")
    skipped = rec["skipped"]
    if skipped:
        lines.append(f"warning: {len(skipped)} file(s) skipped:")
        lines += [f"  {s['path']}: {s['reason']}" for s in skipped[:SHOW]]
        if len(skipped) > SHOW:
            lines.append(f"  ... and {len(skipped) - SHOW} more (see preprocessing.json)")
    return lines


def handle(args: argparse.Namespace) -> int:
    opts = options(args)
    with terminal_bar("importing", unit="video") as bar:

        def step(label: str) -> None:
            bar.set_postfix_str(label[-70:], refresh=False)
            bar.update()

        result = run_import(args.dataset, args.src, args.out, opts, on_step=step)
    print("\n".join(summary(result)))
    return 0
