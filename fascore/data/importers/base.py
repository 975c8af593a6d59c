"""The importer contract: what an importer returns (:class:`Scan` of :class:`Video`), the
options every import takes, and the small rules every data set shares (frame rule, dev
carve-out). An importer only knows its data set's layout; decoding (``decode``), face boxes
(``detect``) and the parallel, resumable driver (``driver``) are the same for every set.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fascore.errors import FascoreError
from fascore.registry import Registry

IMPORTERS: Registry[type[Importer]] = Registry("importer")

DEV_FRACTION = 0.2  # share of train subjects moved to dev where a data set has no dev split
MARKERS, IMAGES = ".import", "images"  # output sub-folders: per-video records, face crops

Box = tuple[int, int, int, int]  # x, y, width, height in frame pixels
BoxReader = Callable[[Path], dict[int, Box]]  # annotation file -> {frame index: box}


@dataclass(frozen=True)
class Video:
    """One presentation (video file) with everything the manifest needs to know about it."""

    path: Path  # the video file
    rel: str  # its path below the data set root, posix, without suffix: names its images
    label: str  # live | spoof
    attack: str  # PAI species, "none" for live
    subject: str
    split: str  # train | dev | test
    session: str = ""
    device: str = ""  # capture device (camera, phone)
    boxes: Path | None = None  # the data set's own face annotations for this video
    read_boxes: BoxReader | None = None  # a module-level parser (it crosses process borders)
    flip: bool = False  # stored upside down: rows reversed on load (MSU-MFSD, as bob does)
    extra: tuple[tuple[str, str], ...] = ()  # further manifest columns (CelebA-Spoof conditions)


@dataclass
class Scan:
    """What an importer found: the videos, the files it could not use and why, and notes."""

    videos: list[Video] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ImportOptions:
    frames: int | None = 10  # evenly spaced frames per video (first and last included)
    every: int | None = None  # or: every k-th frame, starting at frame 0
    size: int = 128  # side of the square face crop written, in pixels
    margin: float = 0.2  # added around the face box on each side, as a share of its side
    detector: str = "centerface"  # where no annotation: the better on real faces (benchmarks)
    fallback: str | None = "haar"  # tried when the detector finds no face in a video
    retry_frames: int = 30  # a video without any face is first retried on this many frames
    use_annotations: bool = True  # False: the detector everywhere, for crops alike across sets
    faces: str | None = None  # folder of bob-style face-location files (frame x y w h)
    workers: int = 1
    protocol: str | None = None  # data-set specific protocol (OULU-NPU: 1, 2, 3_1 ... 4_6)
    seed: int = 0  # seeds the dev carve-out of data sets without a dev split
    max_lost: float = 0.05  # share of a split's videos that may give no crop before failing
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()  # CelebA-Spoof: condition filters

    def fingerprint(self) -> str:
        """Hash of the options that change a video's images (a marker is reused only if equal)."""
        keys = ("frames", "every", "size", "margin", "detector", "fallback", "retry_frames")
        text = json.dumps(
            {k: getattr(self, k) for k in (*keys, "use_annotations", "faces")}, sort_keys=True
        )
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def frame_rule(self) -> dict:
        if self.every:
            return {"rule": "every", "k": self.every, "start": 0}
        return {"rule": "evenly", "frames": self.frames, "ends": "first and last included"}


class Importer:
    """One public data set as distributed. Subclasses set the names and implement ``scan``."""

    name = ""  # registry name, domain and dataset column, e.g. "replay-attack"
    title = ""  # how people write it, e.g. "Replay-Attack"
    layout = ""  # what its root folder holds, shown when SRC does not look like it

    def looks_like(self, root: Path) -> bool:
        raise NotImplementedError

    def scan(self, root: Path, opts: ImportOptions) -> Scan:
        raise NotImplementedError

    def find_root(self, src: Path) -> Path:
        """``src`` itself, or its only sub-folder that looks like the data set."""
        if not src.is_dir():
            what = "is not a folder" if src.exists() else "does not exist"
            raise FascoreError(f"{src} {what}; point the importer at {self.title}'s folder.")
        if self.looks_like(src):
            return src
        inside = [d for d in sorted(src.iterdir()) if d.is_dir() and self.looks_like(d)]
        if len(inside) == 1:
            return inside[0]
        raise FascoreError(
            f"{src} does not look like {self.title}: expected a folder holding {self.layout}."
        )


def files_below(folder: Path) -> list[Path]:
    """Every file below ``folder``, sorted, hidden ones included (they are reported if stray)."""
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def carve_dev(videos: list[Video], seed: int) -> tuple[list[Video], list[str]]:
    """Move a share of the train subjects to dev, for data sets without a dev split:
    round(DEV_FRACTION * n) subjects (at least one when n >= 2) from a seeded permutation of the
    sorted ids, so the choice depends on the seed and the subject list only, never file order."""
    subjects = sorted({v.subject for v in videos if v.split == "train"})
    n_dev = max(1, round(DEV_FRACTION * len(subjects))) if len(subjects) >= 2 else 0
    order = np.random.default_rng(seed).permutation(len(subjects))
    dev = {subjects[i] for i in order[:n_dev]}
    moved = [dataclasses.replace(v, split="dev") if v.subject in dev else v for v in videos]
    return moved, sorted(dev)


def frame_indices(n_frames: int, frames: int | None, every: int | None) -> list[int]:
    """The frame rule: every k-th frame from 0, or ``frames`` evenly spaced indices
    round(linspace(0, n - 1, frames)) (all frames when the video has fewer)."""
    if n_frames <= 0:
        return []
    if every:
        return list(range(0, n_frames, every))
    if frames is None or n_frames <= frames:
        return list(range(n_frames))
    return sorted({int(i) for i in np.round(np.linspace(0, n_frames - 1, frames))})
