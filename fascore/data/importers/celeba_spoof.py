"""CelebA-Spoof (Zhang et al., ECCV 2020), as distributed: 625,537 still images of 10,177
subjects, the natural rich source domain for a teacher.

Layout: ``Data/{train,test}/<subject id>/{live,spoof}/<image>.jpg`` (or ``.png``), each image
with ``<image>_BB.txt`` beside it (one line ``x y w h score``, the face box in a 224 x 224
frame: scaled by the image's width / 224 and height / 224, as the data set's own
``intra_dataset_code/client.py`` does), and ``metas/intra_test/{train,test}_label.json`` (the
intra-dataset protocol): ``{"Data/train/<id>/live/<image>.jpg": [44 integers]}``. Vector
layout (the data set's README): [0:40] CelebA face attributes, [40] spoof type, [41]
illumination, [42] environment, [43] live (0) or spoof (1).

Each image is one presentation (a one-frame video); subjects are subject-disjoint between the
train and test lists, and a seeded share of the train subjects becomes dev. ``where``
(``--where environment=outdoor``) keeps only the spoof images taken under the chosen
conditions, with every live image, as a domain of its own (``celeba-spoof-outdoor``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from fascore.data.decode import open_image
from fascore.data.importers.base import (
    IMPORTERS,
    Box,
    Importer,
    ImportOptions,
    Scan,
    Video,
    carve_dev,
)
from fascore.data.importers.frames import IMAGE_SUFFIXES
from fascore.errors import FascoreError

LISTS = {"train": "metas/intra_test/train_label.json", "test": "metas/intra_test/test_label.json"}
SPOOF_TYPE, ILLUMINATION, ENVIRONMENT, LIVE_SPOOF, VECTOR = 40, 41, 42, 43, 44
FIRST = SPOOF_TYPE  # a label keeps the vector's values from here on: all the importer reads
Label = tuple[int, ...]  # (spoof type, illumination, environment, live/spoof)
_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"\s*")
BB_SUFFIX, BB_FRAME = "_BB.txt", 224
KEY = re.compile(r"Data/(train|test)/(\d+)/(live|spoof)/([^/]+)")
# spoof type (index 40) -> PAI species; the README's names: Photo, Poster, A4 (prints), Face
# Mask, Upper Body Mask, Region Mask (paper masks), PC, Pad, Phone (replays), 3D Mask
SPECIES = {
    0: "none",
    1: "print-photo",
    2: "print-poster",
    3: "print-a4",
    4: "mask-face",
    5: "mask-upper-body",
    6: "mask-region",
    7: "replay-pc",
    8: "replay-pad",
    9: "replay-phone",
    10: "mask-3d",
}
CONDITIONS = {
    "illumination": (ILLUMINATION, {1: "normal", 2: "strong", 3: "back", 4: "dark"}),
    "environment": (ENVIRONMENT, {1: "indoor", 2: "outdoor"}),
}


def read_bb_file(path: Path) -> dict[int, Box]:
    """``<image>_BB.txt``: ``x y w h score`` in a 224 x 224 frame -> {0: box in image pixels}."""
    stem = path.name[: -len(BB_SUFFIX)]
    images = (path.with_name(stem + suffix) for suffix in IMAGE_SUFFIXES)
    image = next((p for p in images if p.is_file()), None)
    if image is None:
        raise ValueError(f"no image beside {path.name}")
    with open_image(image) as im:  # the header only, within the pixel limit
        width, height = im.size
    x, y, w, h = (float(v) for v in path.read_text().split()[:4])
    sx, sy = width / BB_FRAME, height / BB_FRAME
    box = round(x * sx), round(y * sy), round(w * sx), round(h * sy)
    return {0: box} if box[2] > 0 and box[3] > 0 else {}


def _compact(value: object) -> Label | str:
    """A label vector -> its last four values (all the importer reads), or why it is none."""
    if not isinstance(value, list) or len(value) != VECTOR:
        return f"label vector should hold {VECTOR} numbers"
    if not all(type(v) is int for v in value):  # no bools, floats, lists or objects
        return f"label vector should hold {VECTOR} whole numbers"
    return tuple(value[FIRST:])


def read_labels(path: Path) -> dict[str, Label | str]:
    """A label file ``{"Data/...jpg": [44 integers], ...}`` -> {key: the vector's last four
    values, or why the entry is unusable}, later duplicates winning (as ``json.load``).

    Streamed entry by entry (``raw_decode``): memory is the file's text plus at most 400 bytes per
    entry (``json.load`` holds every entry's 44-element list at once). A value nested too
    deeply to parse, or text that is not a JSON object of entries, is one ``FascoreError``
    naming the file."""
    if not path.is_file():
        raise FascoreError(f"{path} is missing; it ships with CelebA-Spoof (metas/).")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise FascoreError(f"{path} cannot be read ({err})") from None
    labels: dict[str, Label | str] = {}
    try:
        pos = _expect(text, _SPACE.match(text).end(), "{", path)
        if text[pos : pos + 1] == "}":
            return labels
        while True:
            key, pos = _DECODER.raw_decode(text, pos)
            if not isinstance(key, str):
                raise FascoreError(f"{path} should map image paths to label vectors")
            value, pos = _DECODER.raw_decode(text, _expect(text, pos, ":", path))
            labels[key] = _compact(value)
            pos = _SPACE.match(text, pos).end()
            if text[pos : pos + 1] == "}":
                return labels
            pos = _expect(text, pos, ",", path)
    except json.JSONDecodeError as err:
        raise FascoreError(f"{path} is not valid JSON ({err})") from None
    except RecursionError:
        raise FascoreError(f"{path} nests too deeply to hold label vectors") from None


def _expect(text: str, pos: int, mark: str, path: Path) -> int:
    """The position after ``mark`` (and the spaces around it) at ``pos``, else a FascoreError."""
    pos = _SPACE.match(text, pos).end()
    if text[pos : pos + 1] != mark:
        raise FascoreError(f"{path} should map image paths to label vectors")
    return _SPACE.match(text, pos + 1).end()


def parse_where(items: list[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``["environment=outdoor", "illumination=dark,back"]`` -> condition filters."""
    out = []
    for item in items:
        key, _, values = item.partition("=")
        known = CONDITIONS.get(key.strip())
        chosen = tuple(sorted(v.strip() for v in values.split(",") if v.strip()))
        if known is None or not chosen or not set(chosen) <= set(known[1].values()):
            allowed = "; ".join(f"{k}={','.join(v.values())}" for k, (_, v) in CONDITIONS.items())
            raise FascoreError(f"--where {item!r}: use KEY=VALUE[,VALUE] with {allowed}")
        out.append((key.strip(), chosen))
    return tuple(out)


def domain_name(where: tuple[tuple[str, tuple[str, ...]], ...]) -> str:
    """The domain a condition filter makes: ``celeba-spoof``, ``celeba-spoof-outdoor`` ..."""
    return "-".join(["celeba-spoof", *(v for _, values in where for v in values)])


@IMPORTERS.register("celeba-spoof")
class CelebaSpoof(Importer):
    name = "celeba-spoof"
    title = "CelebA-Spoof"
    layout = "Data/train/, Data/test/ (<id>/live|spoof/*.jpg with *_BB.txt) and metas/intra_test/"

    def looks_like(self, root: Path) -> bool:
        return (root / "Data").is_dir() and (root / "metas").is_dir()

    def scan(self, root: Path, opts: ImportOptions) -> Scan:
        scan, domain = Scan(), domain_name(opts.where)
        for split, rel in LISTS.items():
            for key, label in read_labels(root / rel).items():
                video = self._video(root, key, label, split, domain)
                if isinstance(video, str):
                    scan.skipped.append((f"{rel}: {key}", video))
                elif self._kept(label, opts.where):
                    scan.videos.append(video)
        scan.videos, dev = carve_dev(scan.videos, opts.seed)
        scan.notes.append(f"dev split: {len(dev)} train subject(s) (seed {opts.seed})")
        if opts.where:
            scan.notes.append(f"domain {domain}: live images, and spoof images with {opts.where}")
        return scan

    @staticmethod
    def _kept(label: Label, where: tuple) -> bool:
        if label[LIVE_SPOOF - FIRST] == 0:
            return True
        return all(CONDITIONS[k][1].get(label[CONDITIONS[k][0] - FIRST]) in v for k, v in where)

    def _video(
        self, root: Path, key: str, label: Label | str, split: str, domain: str
    ) -> Video | str:
        """The image as a one-frame presentation, or why the entry cannot be used."""
        match = KEY.fullmatch(key)
        if not match or match.group(1) != split:
            return f"not a Data/{split}/<id>/<live|spoof>/<image> path"
        if isinstance(label, str):
            return label
        kind, species = label[LIVE_SPOOF - FIRST], SPECIES.get(label[SPOOF_TYPE - FIRST])
        if kind not in (0, 1) or species is None or (kind == 0) != (species == "none"):
            return "live/spoof label, spoof type and folder disagree"
        if (match.group(3) == "live") != (kind == 0):
            return "live/spoof label, spoof type and folder disagree"
        path = root / key
        if not path.is_file():
            return "listed, image not found"
        extra = [("domain", domain)]
        for column, (index, names) in CONDITIONS.items():
            extra.append((column, names.get(label[index - FIRST], "none")))
        return Video(
            path=path,
            rel=key[: -len(path.suffix)],
            label="live" if kind == 0 else "spoof",
            attack=species,
            subject=f"{self.name}:{match.group(2)}",
            split=split,
            boxes=path.with_name(path.stem + BB_SUFFIX),
            read_boxes=read_bb_file,
            extra=tuple(extra),
        )
