"""``python -m fascore synth`` (generate SynthFAS) and ``python -m fascore gallery`` (look at it)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from fascore.data.synth.spec import PRESETS
from fascore.progress import terminal_bar


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="generate the SynthFAS synthetic data set (images + manifest)")
    p.add_argument("--preset", choices=list(PRESETS), default="demo", help="size (default: demo)")
    p.add_argument("--out", type=Path, help="output folder (default: the per-user cache folder)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--workers", type=int, help="processes to use (default: every core)")
    p.set_defaults(func=run_synth)
    g = sub.add_parser("gallery", help="write a labelled grid of samples per domain and species")
    g.add_argument("data", type=Path, help="a manifest.csv or the folder holding it")
    g.add_argument("--out", type=Path, default=Path("docs/gallery.png"), help="PNG to write")
    g.add_argument("--per-cell", type=int, default=2, help="samples per domain and species")
    g.add_argument("--tile", type=int, default=128, help="side of each sample in pixels")
    g.set_defaults(func=run_gallery)


class _Rendering:
    """A tqdm bar on a terminal; a line per tenth in a log (``generate``'s progress callback)."""

    def __init__(self) -> None:
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = terminal_bar("rendering videos", total, unit="video")
        self.bar.update(done - self.bar.n)
        if self.bar.disable and (done == total or done % max(1, total // 10) == 0):
            print(f"rendering videos: {done}/{total}", file=sys.stderr)
        if done == total:
            self.bar.close()


def run_synth(args: argparse.Namespace) -> int:
    # lazy: the renderer and the manifest load pandas and cv2, not for `synth --help`
    from fascore.data.manifest import read_manifest
    from fascore.data.synth.generate import default_data_dir, generate

    out = args.out or default_data_dir(
        args.preset if args.seed == 0 else f"{args.preset}-seed{args.seed}"
    )
    start = time.perf_counter()
    manifest = generate(
        args.preset, out, seed=args.seed, workers=args.workers, progress=_Rendering()
    )
    df = read_manifest(manifest)
    counts = df.pivot_table(
        index="domain", columns="attack", values="path", aggfunc="count", fill_value=0
    )
    print(counts.reindex(index=df["domain"].unique()).to_string())
    print(
        f"{len(df)} images ({(df['label'] == 'live').sum()} live, {(df['label'] == 'spoof').sum()} spoof) "
        f"in {time.perf_counter() - start:.1f} s"
    )
    print(f"manifest: {manifest}")
    print(f"datasheet: {manifest.parent / 'datasheet.md'}")
    return 0


def run_gallery(args: argparse.Namespace) -> int:
    from fascore.data.synth.gallery import make_gallery  # lazy: pandas, not for `gallery --help`

    out = make_gallery(args.data, args.out, per_cell=args.per_cell, tile=args.tile)
    print(f"gallery: {out} ({out.stat().st_size // 1024} KB)")
    return 0
