"""OULU-NPU (Boulkenafet et al., FG 2017), as distributed.

Layout: ``Train_files/``, ``Dev_files/`` and ``Test_files/`` (the official split, subjects 1-20,
21-35 and 36-55), each holding ``<phone>_<session>_<user>_<file>.avi`` with a ``.txt`` of the
same name beside it, and ``Protocols/Protocol_<n>/{Train,Dev,Test}[_<k>].txt``. In a name,
phone is 1-6, session 1-3, user 01-55 and file 1 (live), 2-3 (print, two printers) or 4-5
(video replay, two displays). Protocol lines read ``+1,1_1_01_1`` (+1 live, negative attack).

Without ``--protocol`` every video is imported with its folder's split; with ``--protocol 1``,
``2``, ``3_1`` ... ``3_6`` or ``4_1`` ... ``4_6`` only that protocol's lists are, with their split.

PAI species follow OULU-NPU's own APCER: ``print`` and ``replay`` (both instruments pooled); the
instrument stays readable in the video id's last digit. Face boxes come from the per-video
``.txt`` files, which give the two eye centres per frame, ``frame, x1, y1, x2, y2``: the frame
is an absolute 0-based index, and a row with a zero coordinate is "no detection" (dropped).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from fascore.data.importers.base import (
    IMPORTERS,
    Box,
    Importer,
    ImportOptions,
    Scan,
    Video,
    files_below,
)
from fascore.errors import FascoreError

FOLDERS = {"Train_files": "train", "Dev_files": "dev", "Test_files": "test"}
LISTS = {"train": "Train", "dev": "Dev", "test": "Test"}
NAME = re.compile(r"([1-6])_([1-3])_(\d{2})_([1-5])")
NAMING = "<phone>_<session>_<user>_<file>.avi"
SPECIES = {"1": "none", "2": "print", "3": "print", "4": "replay", "5": "replay"}
PROTOCOL = re.compile(r"(?:protocol[_ ]?)?([1-4])(?:[_-]([1-6]))?", re.IGNORECASE)
# face box from the eyes: side = EYE_SIDE * inter-eye distance, eye line EYE_TOP * side below the
# box top (a frontal face spans about 2.2 eye distances, the eyes sit at 40 % of its height)
EYE_SIDE, EYE_TOP = 2.2, 0.4


def eyes_to_box(x1: float, y1: float, x2: float, y2: float) -> Box | None:
    """A square face box (x, y, w, h) from two eye centres; None when they coincide."""
    distance = math.hypot(x2 - x1, y2 - y1)
    if distance < 1:
        return None
    side = EYE_SIDE * distance
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return round(cx - side / 2), round(cy - EYE_TOP * side), round(side), round(side)


def read_eye_file(path: Path) -> dict[int, Box]:
    """OULU-NPU ``.txt``: ``frame, x1, y1, x2, y2`` per line (eye centres), the frame an
    absolute 0-based index into the video. A row with any zero coordinate means the eyes were
    not found in that frame: it is dropped (as are rows whose eyes coincide)."""
    boxes = {}
    for line in path.read_text().splitlines():
        parts = line.replace(",", " ").split()
        if len(parts) < 5:
            continue
        frame, *eyes = (float(v) for v in parts[:5])
        box = None if 0 in eyes else eyes_to_box(*eyes)
        if box is not None:
            boxes[int(frame)] = box
    return boxes


def parse_protocol(text: str) -> tuple[str, str]:
    """``"3_2"`` -> (``"Protocol_3"``, ``"_2"``); protocols 3 and 4 need their fold 1-6."""
    match = PROTOCOL.fullmatch(text.strip())
    if not match or (match.group(1) in "34") != bool(match.group(2)):
        raise FascoreError(
            f"unknown OULU-NPU protocol {text!r}; use 1, 2, 3_1 ... 3_6 or 4_1 ... 4_6"
        )
    number, fold = match.groups()
    return f"Protocol_{number}", f"_{fold}" if fold else ""


@IMPORTERS.register("oulu-npu")
class OuluNpu(Importer):
    name = "oulu-npu"
    title = "OULU-NPU"
    layout = "Train_files/, Dev_files/, Test_files/ (.avi + .txt) and Protocols/"

    def looks_like(self, root: Path) -> bool:
        return sum((root / folder).is_dir() for folder in FOLDERS) >= 2

    def scan(self, root: Path, opts: ImportOptions) -> Scan:
        scan, found = Scan(), {}
        for folder, split in FOLDERS.items():
            for path in files_below(root / folder):
                rel = path.relative_to(root).as_posix()
                if path.suffix.lower() == ".txt" and path.with_suffix(".avi").is_file():
                    continue  # the eye positions of the video beside it
                if path.suffix.lower() != ".avi" or not NAME.fullmatch(path.stem):
                    scan.skipped.append((rel, f"not an OULU-NPU video ({NAMING})"))
                    continue
                found[path.stem] = (path, split)
        if opts.protocol is None:
            scan.videos = [self._video(root, p, s) for p, s in found.values()]
            return scan
        listed = self._protocol(root, opts.protocol, scan)
        for stem, split in listed.items():
            if stem in found:
                scan.videos.append(self._video(root, found[stem][0], split))
            else:
                scan.skipped.append(
                    (f"{stem}.avi", f"listed by protocol {opts.protocol}, not found")
                )
        left_out = len(set(found) - set(listed))
        scan.notes.append(f"protocol {opts.protocol}: {left_out} video(s) outside its lists")
        return scan

    def _protocol(self, root: Path, protocol: str, scan: Scan) -> dict[str, str]:
        """{video stem: split} from the protocol's lists; bad or missing entries go to skipped."""
        folder, fold = parse_protocol(protocol)
        places = [root / "Protocols" / folder, root / "Protocols" / "Protocols" / folder]
        where = next((p for p in places if p.is_dir()), None)
        if where is None:
            raise FascoreError(f"{root} has no Protocols/{folder}/; it ships with OULU-NPU.")
        listed = {}
        for split, prefix in LISTS.items():
            path = where / f"{prefix}{fold}.txt"
            if not path.is_file():
                raise FascoreError(f"{path} is missing; OULU-NPU's protocol lists are incomplete.")
            for line in path.read_text().split():
                label, _, stem = line.partition(",")
                live = label.strip() in ("+1", "1")
                if not NAME.fullmatch(stem) or live != stem.endswith("_1"):
                    where_line = f"{path.relative_to(root).as_posix()}: {line}"
                    scan.skipped.append((where_line, "label and name disagree"))
                else:
                    listed[stem] = split
        return listed

    def _video(self, root: Path, path: Path, split: str) -> Video:
        phone, session, user, file = NAME.fullmatch(path.stem).groups()
        eyes = path.with_suffix(".txt")
        return Video(
            path=path,
            rel=path.relative_to(root).as_posix()[: -len(path.suffix)],
            label="live" if file == "1" else "spoof",
            attack=SPECIES[file],
            subject=f"{self.name}:{user}",
            split=split,
            session=f"session{session}",
            device=f"phone{phone}",
            boxes=eyes if eyes.is_file() else None,
            read_boxes=read_eye_file if eyes.is_file() else None,
        )
