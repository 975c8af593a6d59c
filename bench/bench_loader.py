"""Loader benchmark: images/s of one training epoch (augmented batches) through four pipelines.

(a) ``ManifestDataset`` + ``DataLoader(num_workers=2)``: PIL decode and torchvision transforms per
item; (b) ``load_images`` cold: decode everything once and write the ``.npy`` cache (and, for
reference, the warm reload that memory-maps it); (c) ``FaceBatches`` from the cached uint8 array:
gather, float conversion, batch augmentation and normalisation; (d) the same epoch from float
tensors already in memory (the ceiling: no uint8 conversion, no mmap).

    python -m bench.bench_loader [--manifest M] [--n 2000] [--size 64] [--repeat 3] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import DataLoader

from bench._report import write_section
from fascore.data.images import (
    Augment,
    FaceBatches,
    ImageArray,
    ManifestDataset,
    augment_batch,
    load_images,
    normalize,
)
from fascore.data.manifest import read_manifest, write_manifest


def make_manifest(root: Path, n: int, size: int, seed: int = 0) -> Path:
    """n random face-sized PNGs (smooth blobs plus grain, so they compress like photos)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        low = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        img = np.asarray(low.resize((size, size), Image.Resampling.BICUBIC), dtype=np.int16)
        img = np.clip(img + rng.integers(-12, 13, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / f"{i:05d}.png")
        video = i // 10  # 10 frames a video, 2 videos (one live, one spoof) a subject
        label, attack = (("live", "none"), ("spoof", "print"))[video % 2]
        rows.append(
            (f"{i:05d}.png", label, attack, "bench", f"s{video // 2}", f"v{video}", "train")
        )
    cols = ["path", "label", "attack", "domain", "subject", "video", "split"]
    return write_manifest(pd.DataFrame(rows, columns=cols), root)


def timed(fn: Callable[[int], int], repeat: int) -> tuple[float, int]:
    """(best seconds, images) over ``repeat`` calls of ``fn(i)``, which returns an image count."""
    best, n = float("inf"), 0
    for i in range(repeat):
        t0 = time.perf_counter()
        n = fn(i)
        best = min(best, time.perf_counter() - t0)
    return best, n


def epoch_dataloader(df: pd.DataFrame, size: int, batch: int) -> int:
    ds = ManifestDataset(df, size, augment=True)
    loader = DataLoader(ds, batch_size=batch, shuffle=True, num_workers=2)
    return sum(len(x) for x, _, _ in loader)


def epoch_batches(arr: ImageArray, y: np.ndarray, batch: int) -> int:
    return sum(len(x) for x, _, _ in FaceBatches(arr, y, batch_size=batch, augment=True))


def epoch_float(images: torch.Tensor, batch: int) -> int:
    """The same epoch from float [0, 1] images already in memory."""
    gen = torch.Generator().manual_seed(0)
    aug, n = Augment(), 0
    for pos in torch.randperm(len(images), generator=gen).split(batch):
        n += len(normalize(augment_batch(images[pos], aug, gen)))
    return n


def run(
    df: pd.DataFrame, size: int, batch: int, cache: Path, repeat: int
) -> list[tuple[str, float, int]]:
    """(pipeline, seconds, images) for each pipeline, in the order of the module docstring."""

    def load(where: Path) -> ImageArray:
        return load_images(df, size, cache_dir=where, log=lambda _: None)

    arr, y = load(cache), df["y"].to_numpy()
    floats = arr.images.float() / 255
    steps: list[tuple[str, Callable[[int], int]]] = [
        (
            "(a) ManifestDataset + DataLoader(num_workers=2)",
            lambda _: epoch_dataloader(df, size, batch),
        ),
        ("(b) load_images, cold (decode + write cache)", lambda i: len(load(cache / f"cold{i}"))),
        ("(b') load_images, warm (mmap the cache)", lambda _: len(load(cache))),
        ("(c) FaceBatches from the cached uint8 array", lambda _: epoch_batches(arr, y, batch)),
        ("(d) the same epoch from in-memory float tensors", lambda _: epoch_float(floats, batch)),
    ]
    return [(name, *timed(fn, repeat)) for name, fn in steps]


def table(results: list[tuple[str, float, int]], n: int, size: int, batch: int, repeat: int) -> str:
    lines = [
        f"{n} images of {size}x{size} px, batches of {batch}, train-time augmentation on; "
        f"torch uses {torch.get_num_threads()} threads; best of {repeat} runs each; load "
        f"average {os.getloadavg()[0]:.1f} at the end. The warm load is lazy (mmap): its pages "
        "are read during the first epoch.\n",
        "| pipeline | seconds | images/s |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {sec:.2f} | {count / sec:,.0f} |" for name, sec, count in results]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", help="benchmark this manifest instead of random PNGs")
    parser.add_argument("--n", type=int, default=2000, help="random images to generate")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3, help="report the best of N epochs")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs alone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fascore-bench-") as tmp:
        root = Path(tmp)
        source = args.manifest or make_manifest(root, args.n, args.size)
        df = read_manifest(source)
        results = run(df, args.size, args.batch_size, root / "cache", args.repeat)
    body = table(results, len(df), args.size, args.batch_size, args.repeat)
    print(body)
    if not args.no_write:
        command = "python -m bench.bench_loader" + (" --manifest M" if args.manifest else "")
        write_section("loader", "Data loader throughput", command, body)


if __name__ == "__main__":
    main()
