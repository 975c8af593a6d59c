"""The torch data pipeline: decode once into a uint8 array, then batch, augment and normalise.

PNG decoding dominates a CPU epoch, so ``load_images`` decodes every image once into one uint8
array (cached as ``.npy`` and memory-mapped on the next call) and ``FaceBatches`` builds shuffled
mini-batches from it, doing the float conversion and augmentation on whole batches on the target
device. ``ManifestDataset`` is the textbook per-item alternative for a ``DataLoader``.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from fascore.data.decode import decode_image
from fascore.errors import FascoreError

#: ImageNet channel mean and standard deviation: the models start from ImageNet weights.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
CACHE_VERSION = 2  # bump when the decoded pixels would change (resampling, colour conversion)
PARALLEL_FROM = 64  # below this many images threads cost more than they save


@dataclass
class ImageArray:
    """Decoded images: ``images`` uint8 (N, 3, S, S); ``ok`` bool (N,) is False where a row's
    file was missing or corrupt (its pixels are zero and ``FaceBatches`` skips it)."""

    images: torch.Tensor
    ok: torch.Tensor
    size: int

    def __len__(self) -> int:
        return int(self.images.shape[0])


def _decode(path: str, size: int) -> np.ndarray:
    """One image file -> uint8 (3, size, size) RGB; bilinear resize with antialiasing."""
    im = decode_image(path)
    if im.size != (size, size):
        im = im.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(im).transpose(2, 0, 1)


def _cache_key(paths: Sequence[str], size: int) -> str:
    """Hash of the paths, each file's size and mtime, and the target size (stale-proof)."""
    h = hashlib.sha256(f"v{CACHE_VERSION}:{size}".encode())
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"\n{p}\t{st.st_size}\t{st.st_mtime_ns}".encode())
        except OSError:
            h.update(f"\n{p}\tmissing".encode())
    return h.hexdigest()[:20]


def _decode_into(out: np.ndarray, paths: Sequence[str], size: int) -> dict[int, str]:
    """Fill ``out[i]`` with image i (threads: PIL releases the GIL while decoding and resizing);
    returns {row: reason} for rows that could not be read."""

    def one(i: int) -> tuple[int, str | None]:
        try:
            out[i] = _decode(paths[i], size)
            return i, None
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
            out[i] = 0
            return i, f"{type(err).__name__}: {err}"

    if len(paths) < PARALLEL_FROM:
        results = map(one, range(len(paths)))
        return {i: err for i, err in results if err}
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        results = pool.map(one, range(len(paths)), chunksize=32)
        return {i: err for i, err in results if err}


def _tmp(target: Path) -> Path:
    """A temporary name private to this process: jobs sharing a cache never write one file."""
    return target.with_name(f"{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


def _save(target: Path, arr: np.ndarray) -> None:
    """Write an array atomically (a half-written cache is never read)."""
    tmp = _tmp(target)
    with open(tmp, "wb") as f:
        np.save(f, arr)
    tmp.replace(target)


def _decode_all(paths: list[str], size: int, cache: Path | None) -> tuple[np.ndarray, dict]:
    """Decode every path; with a cache, decode straight into a memory-mapped file, renamed into
    place when complete (so a large set never needs two copies in memory)."""
    shape = (len(paths), 3, size, size)
    if cache is None:
        out = np.empty(shape, dtype=np.uint8)
        return out, _decode_into(out, paths, size)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(cache)
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        failed = _decode_into(out, paths, size)
        out.flush()
        del out
        tmp.replace(cache)
    finally:
        tmp.unlink(missing_ok=True)
    return np.load(cache, mmap_mode="c"), failed


def load_images(
    df: pd.DataFrame,
    size: int,
    cache_dir: Path | None = None,
    strict: bool = False,
    log: Callable[[str], None] = print,
) -> ImageArray:
    """Decode each row's image (``abspath``, else ``path``) once into uint8 (N, 3, size, size).

    With ``cache_dir`` the array is stored as ``.npy`` keyed by the paths, file sizes, mtimes and
    ``size``, and later calls memory-map it (copy-on-write) instead of decoding again. Missing or
    corrupt files are zero-filled, marked ``ok=False`` and logged; ``strict`` raises instead.
    """
    col = "abspath" if "abspath" in df.columns else "path"
    paths = [str(p) for p in df[col]]
    t0 = time.perf_counter()
    key = _cache_key(paths, size)
    use_cache = cache_dir is not None and paths  # numpy cannot memory-map an empty array
    cache = Path(cache_dir) / f"images-{key}-{size}px.npy" if use_cache else None
    ok_file = cache.with_suffix(".ok.npy") if cache is not None else None
    if ok_file is not None and ok_file.exists() and cache.exists():
        arr, ok = np.load(cache, mmap_mode="c"), np.load(ok_file)
        failed = {int(i): "could not be read (cached result)" for i in np.flatnonzero(~ok)}
        log(f"loaded {len(paths)} cached {size}px images from {cache}")
    else:
        arr, failed = _decode_all(paths, size, cache)
        ok = np.ones(len(paths), dtype=bool)
        ok[list(failed)] = False
        if ok_file is not None:
            _save(ok_file, ok)  # written last: its presence marks a complete cache
        rate = len(paths) / max(time.perf_counter() - t0, 1e-9)
        log(f"decoded {len(paths)} images at {size}px ({rate:.0f} images/s)")
    _report_failures(paths, failed, strict, log)
    return ImageArray(torch.from_numpy(arr), torch.from_numpy(ok.copy()), size)


def _report_failures(paths: list[str], failed: dict[int, str], strict: bool, log: Callable) -> None:
    if not failed:
        return
    rows = sorted(failed)
    if strict:
        raise FascoreError(
            f"cannot read image {paths[rows[0]]} ({failed[rows[0]]}); {len(rows)} image(s) "
            "failed in all. Run `python -m fascore validate MANIFEST` to list them."
        )
    log(f"skipped {len(rows)} of {len(paths)} images that could not be read:")
    for i in rows[:5]:
        log(f"  {paths[i]}: {failed[i]}")


@dataclass(frozen=True)
class Augment:
    """Train-time augmentation of a batch; the defaults are mild, as PAD cues are subtle."""

    flip: float = 0.5  # probability of a horizontal flip
    scale: tuple[float, float] = (0.85, 1.0)  # side of the sampled square / image side
    shift: float = 0.06  # max translation, as a fraction of the image side
    brightness: float = 0.15  # factor drawn from [1 - b, 1 + b]
    contrast: float = 0.15  # factor drawn from [1 - c, 1 + c], around each image's mean


def augment_batch(x: torch.Tensor, aug: Augment, gen: torch.Generator) -> torch.Tensor:
    """Randomly crop-rescale, shift, flip and jitter x in [0, 1], shape (B, 3, H, W).

    Parameters are drawn on the CPU with ``gen`` (same result on every device); the geometry is
    one affine warp, x_out(p) = x(A p + t) with A = diag(+-s, s), by ``grid_sample``.
    """
    b = x.shape[0]

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(b, generator=gen)

    s = uniform(*aug.scale)
    sign = torch.where(torch.rand(b, generator=gen) < aug.flip, -1.0, 1.0)
    tx, ty = uniform(-aug.shift, aug.shift) * 2, uniform(-aug.shift, aug.shift) * 2
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = s * sign, s
    theta[:, 0, 2], theta[:, 1, 2] = tx, ty
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    bright = uniform(1 - aug.brightness, 1 + aug.brightness).to(x.device, x.dtype)
    contr = uniform(1 - aug.contrast, 1 + aug.contrast).to(x.device, x.dtype)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * contr.view(b, 1, 1, 1) + mean
    return (x * bright.view(b, 1, 1, 1)).clamp_(0.0, 1.0)


def _stats(x: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.tensor(MEAN, device=x.device, dtype=x.dtype).view(3, 1, 1) * scale
    std = torch.tensor(STD, device=x.device, dtype=x.dtype).view(3, 1, 1) * scale
    return mean, std


def normalize(x: torch.Tensor) -> torch.Tensor:
    """(x - MEAN) / STD per channel, for x in [0, 1] of shape (..., 3, H, W)."""
    mean, std = _stats(x, 1.0)
    return (x - mean) / std


def normalize_bytes_(x: torch.Tensor) -> torch.Tensor:
    """In place: pixel values in [0, 255] (float) -> (x/255 - MEAN) / STD, in one pass each."""
    mean, std = _stats(x, 255.0)
    return x.sub_(mean).div_(std)


def denormalize(x: torch.Tensor) -> np.ndarray:
    """Normalised images (B, 3, H, W) or (3, H, W) -> uint8 numpy (B, H, W, 3) or (H, W, 3)."""
    mean = torch.tensor(MEAN, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(STD, dtype=torch.float32).view(3, 1, 1)
    img = (x.detach().float().cpu() * std + mean).clamp(0, 1)
    return (img * 255).round().to(torch.uint8).movedim(-3, -1).numpy()


class FaceBatches:
    """Mini-batches of an ``ImageArray`` subset: yields ``(x, y, idx)`` with x float
    (B, 3, S, S) normalised with ``MEAN``/``STD`` and y long (B,) on ``device``, and idx long (B,)
    the array rows (on the CPU, to map scores back to manifest rows).

    Shuffling uses a seeded ``torch.Generator``, so a seed fixes every epoch's order and
    augmentation. ``infinite`` never stops and always yields full batches (reshuffling at each
    pass), for pairing a source stream with a smaller target stream.
    """

    def __init__(
        self,
        data: ImageArray,
        labels: Sequence[int] | np.ndarray | torch.Tensor,
        rows: Sequence[int] | np.ndarray | torch.Tensor | None = None,
        *,
        batch_size: int = 64,
        shuffle: bool = True,
        augment: bool | Augment = False,
        drop_last: bool = False,
        infinite: bool = False,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        rows_t = (
            torch.arange(len(data)) if rows is None else torch.as_tensor(rows, dtype=torch.long)
        )
        self.rows = rows_t[data.ok[rows_t]]  # unreadable images never reach a model
        if len(self.rows) == 0:
            raise FascoreError("no readable images to batch: check the manifest with `validate`")
        self.data, self.labels = data, torch.as_tensor(np.array(labels, dtype=np.int64))
        if len(self.labels) != len(data):
            raise ValueError(f"{len(self.labels)} labels for {len(data)} images: give one per row")
        self.batch_size, self.shuffle = batch_size, shuffle
        self.augment = Augment() if augment is True else (augment or None)
        self.drop_last, self.infinite = drop_last, infinite
        self.device = torch.device(device)
        self.gen = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        """Batches in one pass over the subset."""
        n, b = len(self.rows), self.batch_size
        return n // b if self.drop_last and n >= b else -(-n // b)

    def _perm(self) -> torch.Tensor:
        n = len(self.rows)
        return torch.randperm(n, generator=self.gen) if self.shuffle else torch.arange(n)

    def _positions(self) -> Iterator[torch.Tensor]:
        """Positions into ``self.rows`` for each batch."""
        b = self.batch_size
        if not self.infinite:
            perm = self._perm()
            stop = len(perm) - len(perm) % b if self.drop_last and len(perm) >= b else len(perm)
            yield from (perm[i : i + b] for i in range(0, stop, b))
            return
        buf = torch.empty(0, dtype=torch.long)
        while True:
            while len(buf) < b:
                buf = torch.cat([buf, self._perm()])
            yield buf[:b]
            buf = buf[b:]

    def _batch(self, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        idx = self.rows[pos]
        # index_select, not images[idx]: advanced indexing of a uint8 batch was ~7x slower (1 thread)
        xb = self.data.images.index_select(0, idx)
        if self.device.type == "cuda":
            xb = xb.pin_memory()  # lets the copy overlap with the previous step's compute
        x = xb.to(self.device, non_blocking=True).float()
        if self.augment is not None:
            x = normalize(augment_batch(x.div_(255.0), self.augment, self.gen))
        else:
            x = normalize_bytes_(x)  # the fast path: no [0, 1] intermediate
        return x, self.labels[idx].to(self.device), idx

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        for pos in self._positions():
            yield self._batch(pos)


class ManifestDataset(Dataset):
    """Per-item ``Dataset`` for a ``DataLoader``: decodes each image with PIL on every access.

    Items are ``(x float (3, S, S) normalised, y long, idx long)``; ``augment`` applies the
    torchvision equivalents of ``Augment`` (resized crop, flip, brightness/contrast jitter).
    Simpler but slower than ``load_images`` + ``FaceBatches`` (see ``bench/bench_loader.py``).
    """

    def __init__(self, df: pd.DataFrame, size: int, augment: bool = False) -> None:
        col = "abspath" if "abspath" in df.columns else "path"
        self.paths = [str(p) for p in df[col]]
        y = df["y"] if "y" in df.columns else (df["label"] == "spoof").astype(int)
        self.y = torch.as_tensor(np.array(y, dtype=np.int64))
        self.size = size
        from torchvision.transforms import v2  # here: torchvision costs ~1 s to import

        a = Augment()
        steps = [
            v2.RandomResizedCrop(size, scale=(a.scale[0] ** 2, 1.0), ratio=(1.0, 1.0)),
            v2.RandomHorizontalFlip(a.flip),
            v2.ColorJitter(brightness=a.brightness, contrast=a.contrast),
        ]
        tail = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)]
        self.transform = v2.Compose((steps if augment else []) + tail)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        try:
            img = torch.from_numpy(_decode(self.paths[i], self.size).copy())
        except (OSError, ValueError, SyntaxError) as err:
            raise FascoreError(f"cannot read image {self.paths[i]}: {err}") from None
        return self.transform(img), self.y[i], torch.tensor(i)
