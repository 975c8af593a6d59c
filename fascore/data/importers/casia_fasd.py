"""CASIA-FASD (Zhang et al., ICB 2012), as distributed.

Layout: ``train_release/<1..20>/`` and ``test_release/<1..30>/`` (one folder per subject), each
holding twelve ``.avi`` files named by content, here after Idiap's bob.db.casia_fasd:

=========  ====================  =======
file       presentation          quality
=========  ====================  =======
1, 2       live                  normal, low
3, 4       warped printed photo  normal, low
5, 6       cut printed photo     normal, low
7, 8       video replay          normal, low
HR_1..4    as 1, 3, 5, 7         high (Sony NEX-5)
=========  ====================  =======

The test folders number their own 30 people from 1 again; they become subjects 21..50 (as in
bob) so ids never collide with train's 1..20. There is no dev split: a seeded, subject-disjoint
share of the train subjects (``base.DEV_FRACTION``) becomes dev. No face boxes ship.
"""

from __future__ import annotations

from pathlib import Path

from fascore.data.importers.base import (
    IMPORTERS,
    Importer,
    ImportOptions,
    Scan,
    Video,
    carve_dev,
    files_below,
)

FOLDERS = {"train_release": ("train", 0), "test_release": ("test", 20)}  # split, id offset
KINDS = {  # file stem -> (label, PAI species, camera quality)
    "1": ("live", "none", "normal"),
    "2": ("live", "none", "low"),
    "HR_1": ("live", "none", "high"),
    "3": ("spoof", "print-warped", "normal"),
    "4": ("spoof", "print-warped", "low"),
    "HR_2": ("spoof", "print-warped", "high"),
    "5": ("spoof", "print-cut", "normal"),
    "6": ("spoof", "print-cut", "low"),
    "HR_3": ("spoof", "print-cut", "high"),
    "7": ("spoof", "replay", "normal"),
    "8": ("spoof", "replay", "low"),
    "HR_4": ("spoof", "replay", "high"),
}


@IMPORTERS.register("casia-fasd")
class CasiaFasd(Importer):
    name = "casia-fasd"
    title = "CASIA-FASD"
    layout = "train_release/ and test_release/, one numbered folder per subject (.avi files)"

    def looks_like(self, root: Path) -> bool:
        return all((root / folder).is_dir() for folder in FOLDERS)

    def scan(self, root: Path, opts: ImportOptions) -> Scan:
        scan = Scan(notes=["no face annotations ship with CASIA-FASD: faces found by the detector"])
        for folder, (split, offset) in FOLDERS.items():
            for path in files_below(root / folder):
                rel = path.relative_to(root).as_posix()
                video = self._video(path, rel, split, offset)
                if isinstance(video, str):
                    scan.skipped.append((rel, video))
                else:
                    scan.videos.append(video)
        scan.videos, dev = carve_dev(scan.videos, opts.seed)
        scan.notes.append(f"dev split: train subjects {', '.join(dev)} (seed {opts.seed})")
        return scan

    def _video(self, path: Path, rel: str, split: str, offset: int) -> Video | str:
        """The video, or why the file is not one of CASIA-FASD's videos."""
        parts = rel.split("/")
        if path.suffix.lower() != ".avi":
            return "not a CASIA-FASD video (.avi)"
        if len(parts) != 3 or not parts[1].isdigit() or path.stem not in KINDS:
            return "expected <train|test>_release/<subject number>/<1..8 or HR_1..4>.avi"
        label, species, quality = KINDS[path.stem]
        return Video(
            path=path,
            rel=rel[: -len(path.suffix)],
            label=label,
            attack=species,
            subject=f"{self.name}:{int(parts[1]) + offset:02d}",
            split=split,
            device=quality,
        )
