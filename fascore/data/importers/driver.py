"""The import driver: every video of a scan through :func:`crops.process_video` over worker
processes, then the manifest and its preprocessing record. Nothing is lost silently: a video
that gives no crop is named in the record (``lost``) and counted per split, and a split that
loses more than ``max_lost`` of its videos makes the import fail after writing everything."""

from __future__ import annotations

import dataclasses
import multiprocessing
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import av
import cv2

from fascore.data.importers.base import IMPORTERS, ImportOptions, Scan, Video
from fascore.data.importers.crops import process_video
from fascore.data.importers.detect import check_detector, detector_record
from fascore.data.importers.frames import is_image
from fascore.errors import FascoreError

OnStep = Callable[[str, int], None]  # (video finished, total videos)


def _process(job: tuple[Video, ImportOptions, Path]) -> dict:
    return process_video(*job)


def _run_all(videos: list[Video], opts: ImportOptions, out: Path, on_step: OnStep) -> list:
    """Each video's record, in the scan's order, over ``opts.workers`` processes."""
    total, jobs = len(videos), ((v, opts, out) for v in videos)
    if opts.workers <= 1:
        records = []
        for video, job in zip(videos, jobs, strict=True):
            records.append(_process(job))
            on_step(video.rel, total)
        return records
    # spawn: a fork after OpenCV's or torch's thread pools ran can hang; 1 OpenCV thread each.
    # Chunks amortise the hand-over for small items (CelebA-Spoof's images) and keep order.
    chunk = max(1, min(32, total // (opts.workers * 16)))
    context = multiprocessing.get_context("spawn")
    records = []
    with ProcessPoolExecutor(opts.workers, context, cv2.setNumThreads, (1,)) as pool:
        for video, rec in zip(videos, pool.map(_process, jobs, chunksize=chunk), strict=True):
            records.append(rec)
            on_step(video.rel, total)
    return records


@dataclass
class ImportResult:
    """What an import did, for the CLI summary; ``record`` is preprocessing.json's content."""

    manifest: Path
    record: dict  # totals, per-video counts, lost videos, skipped files with reasons, notes
    resumed: int  # videos reused from an earlier run with the same options
    lost: list[dict]  # videos without a single crop: video, split, reason
    over_limit: list[str]  # splits that lost more than opts.max_lost of their videos


def _rows(name: str, video: Video, rec: dict) -> list[dict]:
    keys = ("label", "attack", "subject", "split", "session", "device")
    base = {k: getattr(video, k) for k in keys}
    base.update(domain=name, dataset=name, video=f"{name}/{video.rel}")
    base.update(dict(video.extra))  # e.g. a CelebA-Spoof condition domain and its columns
    return [{**base, "path": rel, "frame": i} for i, rel, _ in rec["frames"]]


def _video_entry(rec: dict) -> dict:
    sources = [s for _, _, s in rec["frames"]]
    entry = {
        "frames_in_video": rec["n_frames"],
        "kept": len(rec["frames"]),
        "dropped": rec["dropped"],
        "from_annotation": sources.count("annotation"),
        "from_detector": len(sources) - sources.count("annotation"),
    }
    for key in ("retry", "problem"):
        if rec.get(key):
            entry[key] = rec[key]
    return entry


def _collect(name: str, root: Path, scan: Scan, records: list[dict]) -> tuple:
    """Manifest rows, per-video entries, skipped files and lost videos (no crop, or none
    decodable); images (one-frame videos) get no per-video entry, only totals."""
    rows, videos, skipped, lost = [], {}, list(scan.skipped), []
    for video, rec in zip(scan.videos, records, strict=True):
        vid = f"{name}/{video.rel}"
        if "error" in rec:
            skipped.append((video.path.relative_to(root).as_posix(), rec["error"]))
            lost.append({"video": vid, "split": video.split, "reason": rec["error"]})
            continue
        rows += _rows(name, video, rec)
        if not is_image(video.path):
            videos[vid] = _video_entry(rec)
        if not rec["frames"]:
            reason = "no face found (frame rule, more frames and fallback detector tried)"
            lost.append({"video": vid, "split": video.split, "reason": reason})
    return rows, videos, skipped, lost


def _lost_by_split(scan: Scan, lost: list[dict], max_lost: float) -> tuple[dict, list[str]]:
    counts = Counter(v.split for v in scan.videos)
    gone = Counter(str(entry["split"]) for entry in lost)
    table = {
        split: {"videos": int(n), "lost": int(gone.get(split, 0)), "share": gone.get(split, 0) / n}
        for split, n in sorted(counts.items())
    }
    over = [split for split, t in table.items() if t["share"] > max_lost]
    return table, over


def _totals(records: list[dict], videos: dict, rows: list) -> dict:
    done = [r for r in records if "error" not in r]
    dropped = {k: sum(r["dropped"][k] for r in done) for k in ("no_face", "not_decoded")}
    return {
        "videos": len(done),
        "frames_kept": len(rows),
        "frames_dropped": dropped,
        "retried": sum(1 for r in done if r.get("retry")),
        "with_entries": len(videos),
    }


def _record(name: str, root: Path, opts: ImportOptions, parts: dict) -> dict:
    """The preprocessing record: decoder, detector, crop, frame rule, per-video counts."""
    libavcodec = ".".join(str(v) for v in av.library_versions.get("libavcodec", ()))
    return {
        "kind": "import",
        "importer": name,
        "source": str(root.resolve()),
        "protocol": opts.protocol,
        "seed": opts.seed,
        "decoder": {"name": "PyAV", "version": av.__version__, "libavcodec": libavcodec},
        "detector": detector_record(opts.detector),
        "fallback_detector": detector_record(opts.fallback),
        "retry": {"frames": opts.retry_frames, "then": opts.fallback},
        "annotations": "used where shipped" if opts.use_annotations else "ignored",
        "faces_dir": opts.faces,
        "crop": {
            "shape": "square, side max(w, h) * (1 + 2 * margin), centred on the face box",
            "margin": opts.margin,
            "size": opts.size,
            "outside_frame": "zero padding",
            "format": "png",
        },
        "frame_rule": opts.frame_rule(),
        "max_lost": opts.max_lost,
        **parts,
    }


def _usable_fallback(opts: ImportOptions, notes: list[str]) -> ImportOptions:
    """The options with a fallback that can run here (else none, said in the notes)."""
    if not opts.fallback:
        return opts
    try:
        check_detector(opts.fallback)
    except FascoreError as err:
        notes.append(f"no fallback detector: {err}")
        return dataclasses.replace(opts, fallback=None)
    return opts


def run_import(
    name: str, src: Path, out: Path, opts: ImportOptions, on_step: OnStep | None = None
) -> ImportResult:
    """Import data set ``name`` from ``src`` into ``out``: images, manifest.csv and
    preprocessing.json. Unusable files are reported, never fatal; lost videos are listed.
    ``on_step(video_rel, total)`` is called as each video finishes (the CLI's progress bar)."""
    # lazy: pandas (~1.5 s) is for writing the manifest, not for `import --help`
    import pandas as pd

    from fascore.data import manifest as mf

    importer = IMPORTERS.get(name)()
    check_detector(opts.detector)  # an unknown or missing detector fails here, before any work
    if opts.faces and not Path(opts.faces).is_dir():
        raise FascoreError(f"--faces {opts.faces} is not a folder of face-location files")
    root = importer.find_root(Path(src))
    scan = importer.scan(root, opts)
    if not scan.videos:
        raise FascoreError(
            f"no {importer.title} videos found in {root}; expected a folder holding "
            f"{importer.layout}."
        )
    opts = _usable_fallback(opts, scan.notes)
    records = _run_all(scan.videos, opts, Path(out), on_step or (lambda rel, total: None))
    rows, videos, skipped, lost = _collect(name, root, scan, records)
    if not rows:
        raise FascoreError(f"no face crop could be made from the videos in {root}.")
    by_split, over = _lost_by_split(scan, lost, opts.max_lost)
    manifest = mf.write_manifest(pd.DataFrame(rows), out)
    parts = {
        "totals": _totals(records, videos, rows),
        "videos": videos,
        "lost": lost,
        "lost_by_split": by_split,
        "skipped": [{"path": p, "reason": r} for p, r in skipped],
        "notes": scan.notes,
    }
    record = _record(name, root, opts, parts)
    mf.write_preprocessing(record, out)
    resumed = sum(1 for r in records if r.get("resumed"))
    return ImportResult(manifest, record, resumed, lost, over)
