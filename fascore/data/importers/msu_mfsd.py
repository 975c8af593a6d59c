"""MSU-MFSD (Wen, Han, Jain, IEEE TIFS 2015), the public release (35 of the 55 subjects).

Layout: ``scene01/real/`` and ``scene01/attack/`` with ``train_sub_list.txt`` and
``test_sub_list.txt`` (the official subject lists: 15 train, 20 test, one id per line) beside
``scene01/``. Names (``.mov`` from the MacBook Air camera, ``.mp4`` from the Nexus 5):

- live: ``real_client001_laptop_SD_scene01.mov``
- attack: ``attack_client001_android_SD_ipad_video_scene01.mp4``; instruments ``ipad_video``,
  ``iphone_video`` and ``printed_photo``.

Face boxes: the ``.face`` files beside the videos (PittPatt detections, one line per frame,
comma-separated ``frame, x1, y1, x2, y2``, corners), as read by Idiap's bob.db.msu_mfsd_mod.
There is no dev split: a seeded, subject-disjoint share of the train subjects becomes dev.

Six Android live videos are stored upside down (``ROTATED``, the list in bob.db.msu_mfsd_mod's
``rotated_videos/rotated_videos.txt``). As bob's ``File.load`` does (``vin[:, :, ::-1, :]`` on
its (frames, colour, height, width) array), their rows are reversed on load, which makes the
face upright; their ``.face`` boxes are applied to the flipped frames, as bob applies them.
"""

from __future__ import annotations

import re
from pathlib import Path

from fascore.data.importers.base import (
    IMPORTERS,
    Box,
    Importer,
    ImportOptions,
    Scan,
    Video,
    carve_dev,
    files_below,
)
from fascore.errors import FascoreError

LISTS = {"train": "train_sub_list.txt", "test": "test_sub_list.txt"}
VIDEO_SUFFIX = {"laptop": ".mov", "android": ".mp4"}
NAME = re.compile(
    r"(real|attack)_client(\d{3})_(laptop|android)_SD_(?:(ipad_video|iphone_video|printed_photo)_)?"
    r"scene01"
)
ROTATED = {f"real_client{c:03d}_android_SD_scene01" for c in (3, 5, 6, 7, 8, 9)}
SPECIES = {"ipad_video": "replay-ipad", "iphone_video": "replay-iphone", "printed_photo": "print"}


def read_face_file(path: Path) -> dict[int, Box]:
    """MSU-MFSD ``.face``: ``frame, x1, y1, x2, y2`` per line (corners); empty boxes skipped."""
    boxes = {}
    for line in path.read_text().splitlines():
        parts = [p for p in line.replace(",", " ").split() if p]
        if len(parts) >= 5:
            frame, x1, y1, x2, y2 = (int(float(v)) for v in parts[:5])
            if x2 > x1 and y2 > y1:
                boxes[frame] = (x1, y1, x2 - x1, y2 - y1)
    return boxes


def read_subject_list(path: Path) -> set[int]:
    """Client numbers from a subject list ("02", "03", ... separated by any white space)."""
    try:
        return {int(token) for token in path.read_text().split()}
    except ValueError:
        raise FascoreError(f"{path} should hold client numbers only (e.g. 02 03 05)") from None


@IMPORTERS.register("msu-mfsd")
class MsuMfsd(Importer):
    name = "msu-mfsd"
    title = "MSU-MFSD"
    layout = "scene01/real/, scene01/attack/, train_sub_list.txt and test_sub_list.txt"

    def looks_like(self, root: Path) -> bool:
        return (root / "scene01").is_dir() and all((root / f).is_file() for f in LISTS.values())

    def scan(self, root: Path, opts: ImportOptions) -> Scan:
        split_of = {c: s for s, f in LISTS.items() for c in read_subject_list(root / f)}
        scan = Scan()
        for path in files_below(root / "scene01"):
            rel = path.relative_to(root).as_posix()
            if path.suffix.lower() == ".face":
                continue  # the face boxes of the video beside it
            video = self._video(path, rel, split_of)
            if isinstance(video, str):
                scan.skipped.append((rel, video))
            else:
                scan.videos.append(video)
        boxed = sum(v.boxes is not None for v in scan.videos)
        if boxed < len(scan.videos):
            scan.notes.append(f"{len(scan.videos) - boxed} video(s) without a .face file: detector")
        scan.videos, dev = carve_dev(scan.videos, opts.seed)
        scan.notes.append(f"dev split: train subjects {', '.join(dev)} (seed {opts.seed})")
        return scan

    def _video(self, path: Path, rel: str, split_of: dict[int, str]) -> Video | str:
        """The video, or why the file is not one of MSU-MFSD's videos."""
        match = NAME.fullmatch(path.stem)
        if not match or path.parent.name != match.group(1):
            return "name or folder does not follow MSU-MFSD's naming"
        kind, client, camera, instrument = match.groups()
        if path.suffix.lower() != VIDEO_SUFFIX[camera] or (kind == "attack") != bool(instrument):
            return "name or suffix does not follow MSU-MFSD's naming"
        if int(client) not in split_of:
            return f"client {client} is in neither {LISTS['train']} nor {LISTS['test']}"
        face = path.with_suffix(".face")
        return Video(
            path=path,
            rel=rel[: -len(path.suffix)],
            label="live" if kind == "real" else "spoof",
            attack=SPECIES[instrument] if instrument else "none",
            subject=f"{self.name}:{client}",
            split=split_of[int(client)],
            device=camera,
            boxes=face if face.is_file() else None,
            read_boxes=read_face_file if face.is_file() else None,
            flip=path.stem in ROTATED,
        )
