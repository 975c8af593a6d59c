"""Idiap Replay-Attack (Chingovska, Anjos, Marcel, BIOSIG 2012), as distributed.

Layout: ``train/``, ``devel/`` and ``test/``, each with ``real/`` and ``attack/{fixed,hand}/``
(``.mov``, 320x240, a MacBook webcam); ``enroll/`` (face-recognition enrolment videos) is not
part of the PAD protocol and is left out. The client sets are disjoint across the three folders,
which are the official train/dev/test split. Names:

- live: ``client001_session01_webcam_authenticate_adverse_1.mov``
- attack: ``attack_highdef_client001_session01_highdef_photo_adverse.mov``
  (attack device ``print``, ``mobile`` (iPhone screen) or ``highdef`` (iPad screen), then the
  device that took the source sample, ``photo`` or ``video``, and the light).

Face boxes: the ``face-locations/`` tree (a separate download that mirrors the video tree, one
``.face`` file per video, ``frame x y w h`` per line, zero-sized where no face was found), looked
for inside the data set folder or beside it.
"""

from __future__ import annotations

import re
from pathlib import Path

from fascore.data.importers.base import (
    IMPORTERS,
    Importer,
    ImportOptions,
    Scan,
    Video,
    files_below,
)
from fascore.data.importers.crops import read_bob_face_file

SPLITS = {"train": "train", "devel": "dev", "test": "test"}
LIVE = re.compile(r"client(\d{3})_session\d{2}_webcam_authenticate_(controlled|adverse)_\d+")
ATTACK = re.compile(
    r"attack_(print|mobile|highdef)_client(\d{3})_session\d{2}_(?:highdef|mobile)_"
    r"(?:photo|video)_(controlled|adverse)"
)
# APCER is reported per attack device in the Replay-Attack literature: print, mobile, highdef
SPECIES = {"print": "print", "mobile": "replay-mobile", "highdef": "replay-highdef"}


@IMPORTERS.register("replay-attack")
class ReplayAttack(Importer):
    name = "replay-attack"
    title = "Replay-Attack"
    layout = "train/, devel/ and test/, each with real/ and attack/{fixed,hand}/ (.mov files)"

    def looks_like(self, root: Path) -> bool:
        return any((root / s / "real").is_dir() or (root / s / "attack").is_dir() for s in SPLITS)

    def scan(self, root: Path, opts: ImportOptions) -> Scan:
        places = (root / "face-locations", root.parent / "face-locations")
        faces = next((d for d in places if d.is_dir()), None)
        scan = Scan()
        if faces is None:
            scan.notes.append("face-locations/ not found: faces found by the detector")
        for folder, split in SPLITS.items():
            for path in files_below(root / folder):
                rel = path.relative_to(root).as_posix()
                video = self._video(path, rel, split, faces)
                if isinstance(video, str):
                    scan.skipped.append((rel, video))
                else:
                    scan.videos.append(video)
        return scan

    def _video(self, path: Path, rel: str, split: str, faces: Path | None) -> Video | str:
        """The video, or why the file is not one of Replay-Attack's videos."""
        if path.suffix.lower() != ".mov":
            return "not a Replay-Attack video (.mov)"
        stem, kind = rel[: -len(path.suffix)], rel.split("/")[1]
        live, attack = LIVE.fullmatch(path.stem), ATTACK.fullmatch(path.stem)
        if kind == "real" and live:
            client, light = live.groups()
            label, species = "live", "none"
        elif kind == "attack" and attack:
            device, client, light = attack.groups()
            label, species = "spoof", SPECIES[device]
        else:
            return "name or folder does not follow Replay-Attack's naming"
        return Video(
            path=path,
            rel=stem,
            label=label,
            attack=species,
            subject=f"{self.name}:{client}",
            split=split,
            session=light,
            device="webcam",
            boxes=faces / f"{stem}.face" if faces else None,
            read_boxes=read_bob_face_file if faces else None,
        )
