"""What every importer shares: the frame rule, decoding, the face crop, and the parallel,
resumable driver that writes the manifest and its preprocessing record. An importer only knows
its data set's layout: ``scan`` returns one :class:`Video` per presentation (label, PAI species,
subject, split, face annotations); everything after that happens here, the same for every set.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np
import pandas as pd

from fascore.data import manifest as mf
from fascore.errors import FascoreError
from fascore.registry import Registry

IMPORTERS: Registry[type[Importer]] = Registry("importer")
DETECTORS: Registry[Callable[[np.ndarray], Box | None]] = Registry("face detector")

DEV_FRACTION = 0.2  # share of train subjects moved to dev where a data set has no dev split
HAAR_FILE = "haarcascade_frontalface_default.xml"
HAAR_PARAMS = {"scaleFactor": 1.1, "minNeighbors": 5, "min_size_fraction": 0.1}
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
    detector: str = "haar"  # used where the data set ships no annotation for a frame
    use_annotations: bool = True  # False: the detector everywhere, for crops alike across sets
    workers: int = 1
    protocol: str | None = None  # data-set specific protocol (OULU-NPU: 1, 2, 3_1 ... 4_6)
    seed: int = 0  # seeds the dev carve-out of data sets without a dev split

    def fingerprint(self) -> str:
        """Hash of the options that change a video's images (a marker is reused only if equal)."""
        keys = ("frames", "every", "size", "margin", "detector", "use_annotations")
        text = json.dumps({k: getattr(self, k) for k in keys}, sort_keys=True)
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


def count_frames(path: Path) -> int:
    """Frames in the first video stream: the header's count, else one demux pass (no decoding)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.frames > 0:
            return int(stream.frames)
        return sum(1 for packet in container.demux(stream) if packet.size)


def decode_frames(path: Path, wanted: list[int]) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (index, RGB frame (H, W, 3) uint8) for the wanted indices, in decoding order."""
    keep, last = set(wanted), max(wanted)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(stream)):
            if i in keep:
                yield i, frame.to_ndarray(format="rgb24")
            if i >= last:
                return


def square_crop(rgb: np.ndarray, box: Box, margin: float, size: int) -> np.ndarray:
    """(H, W, 3) -> (size, size, 3): the square of side max(w, h) * (1 + 2 * margin) centred on
    the box, zero outside the frame (never shifted, so the face stays centred), then resized."""
    x, y, w, h = box
    side = max(1, round(max(w, h) * (1 + 2 * margin)))
    x0, y0 = round(x + w / 2 - side / 2), round(y + h / 2 - side / 2)
    out = np.zeros((side, side, rgb.shape[2]), dtype=rgb.dtype)
    fx0, fy0 = max(x0, 0), max(y0, 0)
    fx1, fy1 = min(x0 + side, rgb.shape[1]), min(y0 + side, rgb.shape[0])
    if fx1 > fx0 and fy1 > fy0:
        out[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0] = rgb[fy0:fy1, fx0:fx1]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(out, (size, size), interpolation=interp)


@functools.lru_cache(maxsize=1)
def _haar() -> cv2.CascadeClassifier:
    if not hasattr(cv2, "CascadeClassifier"):
        raise FascoreError(
            f"OpenCV {cv2.__version__} has no Haar cascades (OpenCV 5 moved them out); "
            "install `opencv-python-headless>=4.8,<5` as requirements.txt says."
        )
    classifier = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / HAAR_FILE))
    if classifier.empty():
        raise FascoreError(f"OpenCV's {HAAR_FILE} is missing; reinstall opencv-python-headless.")
    return classifier


@DETECTORS.register("haar")
def detect_haar(rgb: np.ndarray) -> Box | None:
    """The largest frontal face found by OpenCV's Haar cascade in an (H, W, 3) RGB frame."""
    gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    smallest = max(1, int(HAAR_PARAMS["min_size_fraction"] * min(gray.shape)))
    faces = _haar().detectMultiScale(
        gray,
        scaleFactor=HAAR_PARAMS["scaleFactor"],
        minNeighbors=HAAR_PARAMS["minNeighbors"],
        minSize=(smallest, smallest),
    )
    if len(faces) == 0:
        return None
    x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
    return int(x), int(y), int(w), int(h)


def detector_record(name: str) -> dict:
    """Which detector, from which library version, with which settings."""
    if name == "haar":
        return {"name": "haar", "opencv": cv2.__version__, "model": HAAR_FILE, **HAAR_PARAMS}
    return {"name": name}


def _marker(out: Path, video: Video) -> Path:
    return out / MARKERS / f"{video.rel}.json"


def _load_boxes(video: Video, opts: ImportOptions) -> tuple[dict[int, Box], str | None]:
    """The video's annotated boxes, and a problem to report (None when all is well)."""
    if not opts.use_annotations or video.read_boxes is None or video.boxes is None:
        return {}, None
    if not video.boxes.is_file():
        return {}, f"annotation file {video.boxes.name} missing; detector used"
    try:
        return video.read_boxes(video.boxes), None
    except (OSError, ValueError, IndexError) as err:
        return {}, f"annotation file {video.boxes.name} unreadable ({err}); detector used"


def _save(rgb: np.ndarray, path: Path) -> None:
    """PNG: lossless, so the import adds no compression artefacts (a spoof cue) of its own."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _save_marker(rec: dict, marker: Path) -> None:  # atomic: a marker is whole or absent
    marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(rec))
    tmp.replace(marker)


def process_video(video: Video, opts: ImportOptions, out: Path) -> dict:
    """Decode, crop and save one video's chosen frames; return its record (also saved as the
    marker that lets a re-run with the same options skip it)."""
    marker, fingerprint = _marker(out, video), opts.fingerprint()
    if marker.is_file():
        done = json.loads(marker.read_text())
        if done.get("fingerprint") == fingerprint:
            return {**done, "resumed": True}
    boxes, problem = _load_boxes(video, opts)
    detector = DETECTORS.get(opts.detector)
    rec = {"fingerprint": fingerprint, "frames": [], "n_frames": 0, "problem": problem}
    dropped = {"no_face": 0, "not_decoded": 0}
    try:
        rec["n_frames"] = count_frames(video.path)
        wanted = frame_indices(rec["n_frames"], opts.frames, opts.every)
        for i, rgb in decode_frames(video.path, wanted) if wanted else ():
            box, source = boxes.get(i), "annotation"
            if box is None:
                box, source = detector(rgb), "detector"
            if box is None:
                dropped["no_face"] += 1
                continue
            rel = f"{IMAGES}/{video.rel}/{i:05d}.png"
            _save(square_crop(rgb, box, opts.margin, opts.size), out / rel)
            rec["frames"].append([i, rel, source])
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as err:
        if not rec["frames"]:
            return {**rec, "error": f"cannot decode ({type(err).__name__}: {err})"}
        rec["problem"] = f"decoding stopped early ({type(err).__name__})"
    if not rec["n_frames"]:
        return {**rec, "error": "no video frames"}
    dropped["not_decoded"] = len(wanted) - len(rec["frames"]) - dropped["no_face"]
    rec["dropped"] = dropped
    _save_marker(rec, marker)  # written last: a video interrupted half-way is redone
    return rec


def _run_all(videos: list[Video], opts: ImportOptions, out: Path, on_step: Callable) -> list:
    """Each video's record, in the scan's order, over ``opts.workers`` processes."""
    records: list = [None] * len(videos)
    if opts.workers <= 1:
        for k, video in enumerate(videos):
            records[k] = process_video(video, opts, out)
            on_step(video.rel)
        return records
    # spawn: a fork after OpenCV's or torch's thread pools ran can hang; 1 OpenCV thread each
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(opts.workers, context, cv2.setNumThreads, (1,)) as pool:
        jobs = {pool.submit(process_video, v, opts, out): k for k, v in enumerate(videos)}
        for job in as_completed(jobs):
            records[jobs[job]] = job.result()
            on_step(videos[jobs[job]].rel)
    return records


@dataclass
class ImportResult:
    """What an import did, for the CLI summary; ``record`` is preprocessing.json's content."""

    manifest: Path
    record: dict  # totals, per-video counts, skipped files with reasons, notes
    resumed: int  # videos reused from an earlier run with the same options
    empty: list[str]  # videos decoded but without a single face crop


def _rows(name: str, video: Video, rec: dict) -> list[dict]:
    keys = ("label", "attack", "subject", "split", "session", "device")
    base = {k: getattr(video, k) for k in keys}
    base.update(domain=name, dataset=name, video=f"{name}/{video.rel}")
    return [{**base, "path": rel, "frame": i} for i, rel, _ in rec["frames"]]


def _video_entry(rec: dict) -> dict:
    sources = [s for _, _, s in rec["frames"]]
    entry = {
        "frames_in_video": rec["n_frames"],
        "kept": len(rec["frames"]),
        "dropped": rec["dropped"],
        "from_annotation": sources.count("annotation"),
        "from_detector": sources.count("detector"),
    }
    return {**entry, "problem": rec["problem"]} if rec.get("problem") else entry


def _collect(name: str, root: Path, scan: Scan, records: list[dict]) -> tuple:
    """Manifest rows, per-video entries, skipped files (scan's + undecodable) and empty videos."""
    rows, videos, skipped, empty = [], {}, list(scan.skipped), []
    for video, rec in zip(scan.videos, records, strict=True):
        if "error" in rec:
            skipped.append((video.path.relative_to(root).as_posix(), rec["error"]))
            continue
        rows += _rows(name, video, rec)
        videos[f"{name}/{video.rel}"] = _video_entry(rec)
        if not rec["frames"]:
            empty.append(f"{name}/{video.rel}")
    return rows, videos, skipped, empty


def _record(name: str, root: Path, opts: ImportOptions, videos: dict, skipped: list) -> dict:
    """The preprocessing record: decoder, detector, crop, frame rule, per-video counts."""
    dropped = {k: sum(v["dropped"][k] for v in videos.values()) for k in ("no_face", "not_decoded")}
    kept = sum(v["kept"] for v in videos.values())
    libavcodec = ".".join(str(v) for v in av.library_versions.get("libavcodec", ()))
    return {
        "kind": "import",
        "importer": name,
        "source": str(root.resolve()),
        "protocol": opts.protocol,
        "seed": opts.seed,
        "decoder": {"name": "PyAV", "version": av.__version__, "libavcodec": libavcodec},
        "detector": detector_record(opts.detector),
        "annotations": "used where shipped" if opts.use_annotations else "ignored",
        "crop": {
            "shape": "square, side max(w, h) * (1 + 2 * margin), centred on the face box",
            "margin": opts.margin,
            "size": opts.size,
            "outside_frame": "zero padding",
            "format": "png",
        },
        "frame_rule": opts.frame_rule(),
        "totals": {"videos": len(videos), "frames_kept": kept, "frames_dropped": dropped},
        "videos": videos,
        "skipped": [{"path": p, "reason": r} for p, r in skipped],
    }


def run_import(
    name: str, src: Path, out: Path, opts: ImportOptions, on_step: Callable | None = None
) -> ImportResult:
    """Import data set ``name`` from ``src`` into ``out``: images, manifest.csv and
    preprocessing.json. Unusable files are reported, never fatal. ``on_step(video_rel)`` is
    called as each video finishes (the CLI draws its progress line with it)."""
    importer = IMPORTERS.get(name)()
    DETECTORS.get(opts.detector)  # an unknown name fails here, before any work
    if opts.detector == "haar":
        _haar()
    root = importer.find_root(Path(src))
    scan = importer.scan(root, opts)
    if not scan.videos:
        raise FascoreError(
            f"no {importer.title} videos found in {root}; expected a folder holding "
            f"{importer.layout}."
        )
    records = _run_all(scan.videos, opts, Path(out), on_step or (lambda rel: None))
    rows, videos, skipped, empty = _collect(name, root, scan, records)
    if not rows:
        raise FascoreError(f"no face crop could be made from the videos in {root}.")
    manifest = mf.write_manifest(pd.DataFrame(rows), out)
    record = _record(name, root, opts, videos, skipped)
    mf.write_preprocessing({**record, "notes": scan.notes}, out)
    resumed = sum(1 for r in records if r.get("resumed"))
    return ImportResult(manifest, {**record, "notes": scan.notes}, resumed, empty)
