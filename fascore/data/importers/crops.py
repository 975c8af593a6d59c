"""One video's face crops: annotated boxes where they exist, else the detector; a video that
gives no crop is retried on more frames, then with the fallback detector, before it is
called lost. The record of what happened is saved as the marker that makes a re-run resume."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np

from fascore.atomic import atomic_write_text
from fascore.data.importers.base import IMAGES, MARKERS, Box, ImportOptions, Video, frame_indices
from fascore.data.importers.detect import DETECTORS, square_crop
from fascore.data.importers.frames import Decoded, count_frames, decode_frames

FACE_SUFFIX = ".face"  # --faces DIR: DIR/<video's path below the root>.face


def read_bob_face_file(path: Path) -> dict[int, Box]:
    """bob.db.replay / bob.db.casia_fasd face-location file: ``frame x y w h`` per line
    (0-based frame, top-left corner, size; w or h of 0 = no face in that frame)."""
    boxes = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5:
            frame, x, y, w, h = (int(float(v)) for v in parts[:5])
            if w > 0 and h > 0:
                boxes[frame] = (x, y, w, h)
    return boxes


def _marker(out: Path, video: Video) -> Path:
    return out / MARKERS / f"{video.rel}.json"


def _load_boxes(video: Video, opts: ImportOptions) -> tuple[dict[int, Box], str | None]:
    """The video's annotated boxes (``--faces`` first, then the data set's own) and a problem
    to report (None when all is well)."""
    if not opts.use_annotations:
        return {}, None
    if opts.faces:
        given = Path(opts.faces) / f"{video.rel}{FACE_SUFFIX}"
        if given.is_file():
            source, reader = given, read_bob_face_file
        else:
            source, reader = video.boxes, video.read_boxes
    else:
        source, reader = video.boxes, video.read_boxes
    if source is None or reader is None:
        return {}, None
    if not source.is_file():
        return {}, f"annotation file {source.name} missing; detector used"
    try:
        return reader(source), None
    except (OSError, ValueError, IndexError) as err:
        return {}, f"annotation file {source.name} unreadable ({err}); detector used"


def _save(rgb: np.ndarray, path: Path) -> None:
    """PNG: lossless, so the import adds no compression artefacts (a spoof cue) of its own."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _save_marker(rec: dict, marker: Path) -> None:
    """The video's record, written last and atomically: a marker is whole or absent, so a
    resumed import trusts every video that has one."""
    marker.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(marker, json.dumps(rec))


def _pass(video, wanted, boxes, detector, opts, out, decoded) -> tuple[list, int]:
    """Crop the wanted frames: [(index, image path, box source)], frames without a face."""
    found, no_face, detect = [], 0, DETECTORS.get(detector)
    for i, rgb in decode_frames(video.path, wanted, video.flip, decoded) if wanted else ():
        box, source = boxes.get(i), "annotation"
        if box is None:
            box, source = detect(rgb), detector
        if box is None:
            no_face += 1
            continue
        rel = f"{IMAGES}/{video.rel}/{i:05d}.png"
        _save(square_crop(rgb, box, opts.margin, opts.size), out / rel)
        found.append([i, rel, source])
    return found, no_face


def _retries(video, n_frames, first, boxes, opts, out, decoded) -> tuple[list, str | None]:
    """No crop from the frame rule: more frames with the detector, then with the fallback.
    Returns the crops (as many as the rule asked for, evenly spread) and which retry worked."""
    more = sorted(set(frame_indices(n_frames, opts.retry_frames, None)) | set(first))
    tries = [("more frames", opts.detector)]
    if opts.fallback and opts.fallback != opts.detector:
        tries.append((f"fallback detector {opts.fallback}", opts.fallback))
    for how, detector in tries:
        found, _ = _pass(video, more, boxes, detector, opts, out, decoded)
        if found:
            keep = frame_indices(len(found), len(first), None)
            for _, rel, _ in (f for k, f in enumerate(found) if k not in set(keep)):
                (out / rel).unlink(missing_ok=True)  # only the kept crops stay on disk
            return [found[k] for k in keep], how
    return [], None


def process_video(video: Video, opts: ImportOptions, out: Path) -> dict:
    """Decode, crop and save one video's chosen frames; return its record (also saved as the
    marker that lets a re-run with the same options skip it)."""
    marker, fingerprint = _marker(out, video), opts.fingerprint()
    if marker.is_file():
        done = json.loads(marker.read_text())
        if done.get("fingerprint") == fingerprint:
            return {**done, "resumed": True}
    boxes, problem = _load_boxes(video, opts)
    rec = {"fingerprint": fingerprint, "frames": [], "n_frames": 0, "problem": problem}
    decoded, wanted, no_face = Decoded(), [], 0
    try:
        rec["n_frames"] = count_frames(video.path)
        wanted = frame_indices(rec["n_frames"], opts.frames, opts.every)
        rec["frames"], no_face = _pass(video, wanted, boxes, opts.detector, opts, out, decoded)
        if not rec["frames"] and rec["n_frames"] > 1:
            again = Decoded()  # the same damaged packets again: counted once, above
            found, rec["retry"] = _retries(video, rec["n_frames"], wanted, boxes, opts, out, again)
            if found:  # the retry's frames replace the rule's, none of them dropped
                rec["frames"], wanted, no_face = found, [f[0] for f in found], 0
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as err:
        if not rec["frames"]:
            return {**rec, "error": f"cannot decode ({type(err).__name__}: {err})"}
        rec["problem"] = f"decoding stopped early ({type(err).__name__})"
    if not rec["n_frames"]:
        return {**rec, "error": "no video frames"}
    if decoded.errors:
        note = f"{len(decoded.errors)} damaged packet(s) skipped, decoding went on"
        rec["problem"] = f"{rec['problem']}; {note}" if rec["problem"] else note
    kept = len(rec["frames"])
    not_decoded = max(0, len(set(wanted)) - kept - no_face)
    rec["dropped"] = {"no_face": no_face, "not_decoded": not_decoded}
    _save_marker(rec, marker)  # written last: a video interrupted half-way is redone
    return rec
