"""``python -m fascore import DATASET SRC --out DIR``: a public PAD data set into a manifest."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from fascore.data.importers import DETECTORS, IMPORTERS, ImportOptions, ImportResult, run_import
from fascore.data.importers.celeba_spoof import parse_where
from fascore.errors import FascoreError
from fascore.progress import terminal_bar

if TYPE_CHECKING:
    from tqdm import tqdm

SHOW = 10  # skipped files listed on the terminal (all of them are in preprocessing.json)
DEFAULTS = ImportOptions()  # detector: the better on real faces (docs/benchmarks.md)


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "import",
        help="import Replay-Attack, CASIA-FASD, MSU-MFSD, OULU-NPU or CelebA-Spoof",
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
    p.add_argument(
        "--detector",
        default=DEFAULTS.detector,
        choices=DETECTORS.names(),
        help="face detector where the data set ships no box (default %(default)s)",
    )
    p.add_argument(
        "--fallback",
        default=DEFAULTS.fallback,
        choices=[*DETECTORS.names(), "none"],
        help="detector tried on a video where --detector found no face in any frame",
    )
    p.add_argument(
        "--retry-frames",
        type=int,
        default=DEFAULTS.retry_frames,
        help="frames tried (first with --detector) on a video that gave no face crop",
    )
    p.add_argument(
        "--faces",
        type=Path,
        help="folder of bob-style face-location files (DIR/<video path>.face: frame x y w h)",
    )
    p.add_argument(
        "--max-lost",
        type=float,
        default=DEFAULTS.max_lost,
        help="fail (exit 1, after writing everything) when a split loses a larger share of "
        "its videos without any face crop (default %(default)s)",
    )
    p.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="KEY=VALUES",
        help="celeba-spoof only: keep spoof images taken under these conditions "
        "(environment=indoor,outdoor; illumination=normal,strong,back,dark) as their own domain",
    )
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
    if args.where and args.dataset != "celeba-spoof":
        raise FascoreError("--where applies to celeba-spoof only (its spoof conditions)")
    if args.retry_frames < 1 or not 0 <= args.max_lost <= 1:
        raise FascoreError("need --retry-frames >= 1 and 0 <= --max-lost <= 1")
    return ImportOptions(
        frames=None if args.every else args.frames,
        every=args.every,
        size=args.size,
        margin=args.margin,
        detector=args.detector,
        fallback=None if args.fallback == "none" else args.fallback,
        retry_frames=args.retry_frames,
        use_annotations=not args.no_annotations,
        faces=str(args.faces) if args.faces else None,
        max_lost=args.max_lost,
        where=parse_where(args.where),
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
    if rec["totals"]["retried"]:
        lines.append(f"{rec['totals']['retried']} video(s) needed a retry to give a face crop")
    if result.lost:
        lines.append(f"warning: {len(result.lost)} video(s) lost, no face crop at all:")
        lines += [f"  {v['video']} ({v['split']}): {v['reason']}" for v in result.lost]
    skipped = rec["skipped"]
    if skipped:
        lines.append(f"warning: {len(skipped)} file(s) skipped:")
        lines += [f"  {s['path']}: {s['reason']}" for s in skipped[:SHOW]]
        if len(skipped) > SHOW:
            lines.append(f"  ... and {len(skipped) - SHOW} more (see preprocessing.json)")
    return lines


def video_steps(bar: tqdm) -> Callable[[str, int], None]:
    """The import's ``on_step``: one tick of ``bar`` (with rate and ETA) per finished video."""

    def step(label: str, total: int) -> None:
        bar.total = total  # known once the scan is done, before the first video finishes
        bar.set_postfix_str(label[-40:], refresh=False)
        bar.update(1)

    return step


def handle(args: argparse.Namespace) -> int:
    opts = options(args)
    bar = terminal_bar("importing", unit="video")  # silent unless stderr is a terminal
    try:
        result = run_import(args.dataset, args.src, args.out, opts, on_step=video_steps(bar))
    finally:
        bar.close()
    print("\n".join(summary(result)))
    for split in result.over_limit:
        share = result.record["lost_by_split"][split]
        sys.stderr.write(
            f"error: split {split} lost {share['lost']} of {share['videos']} video(s), more "
            f"than --max-lost {args.max_lost:g}; everything was written, the list is above. "
            "Point --faces at face-location files, or raise --max-lost to accept it.\n"
        )
    return 1 if result.over_limit else 0
