"""The manifest: the one dataset interface. Only this module knows its file format.

A manifest is a CSV (``manifest.csv``) with one row per image (a face crop or a video frame):

=========  ===============================================================================
column     meaning
=========  ===============================================================================
path       image path relative to the manifest's folder (may not escape it)
label      ``live`` or ``spoof``
attack     presentation-attack-instrument (PAI) species: ``none`` for live rows, else e.g.
           ``print``, ``replay``, ``mask`` or a data set's own variant name
domain     capture domain (camera / site / data set), e.g. ``D1`` or ``replay-attack``
subject    subject (identity) id; splits are subject-disjoint
video      presentation (video) id, unique across the manifest; a video never spans splits
split      ``train``, ``dev`` or ``test``
=========  ===============================================================================

Optional columns kept when present: ``frame`` (frame index in the video), ``session``,
``device``, ``dataset``, ``illumination`` and ``environment`` (CelebA-Spoof's conditions).
Beside the manifest sits ``preprocessing.json``: how the images were made (generator or
decoder, detector, crop, frame rule, counts of dropped frames, videos lost without a crop).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath

import pandas as pd

from fascore.atomic import atomic_path, atomic_write_text
from fascore.errors import FascoreError

MANIFEST_NAME = "manifest.csv"
PREPROCESSING_NAME = "preprocessing.json"
REQUIRED_COLUMNS = ("path", "label", "attack", "domain", "subject", "video", "split")
OPTIONAL_COLUMNS = ("frame", "session", "device", "dataset", "illumination", "environment")
LABELS = ("live", "spoof")
SPLITS = ("train", "dev", "test")
LIVE_ATTACK = "none"
SHOW = 5  # offending rows named in a message before "and N more"
#: Integer label codes a manifest may use instead of the words (spoof is the positive class).
LABEL_CODES = {"0": "live", "1": "spoof"}


def canonical_labels(labels: pd.Series) -> pd.Series:
    """``live``/``spoof`` and the integer codes ``0``/``1`` as the words; anything else (``1.0``,
    ``0.5``, ``Live``) is left as it is, for the checks to reject: a float label is never cut
    to an integer."""
    return labels.map(lambda v: LABEL_CODES.get(v.strip(), v.strip()) if isinstance(v, str) else v)


def manifest_path(path: str | Path) -> Path:
    """Accept a manifest file or the folder that holds ``manifest.csv``."""
    p = Path(path)
    return p / MANIFEST_NAME if p.is_dir() else p


def read_raw(path: str | Path) -> pd.DataFrame:
    """Read the CSV as strings, without checks (``fascore.data.validate`` reports on it)."""
    p = manifest_path(path)
    if not p.exists():
        raise FascoreError(
            f"manifest not found: {p}. Create one with `python -m fascore synth --preset tiny "
            "--out DIR` or `python -m fascore import ...`."
        )
    try:
        return pd.read_csv(p, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise FascoreError(f"{p} is not a readable CSV manifest: {err}") from None


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read a manifest for training: checks columns and labels, adds ``abspath`` and ``y``.

    ``y`` is 1 for spoof, 0 for live (the spoof class is the positive class throughout fascore).
    Run ``python -m fascore validate`` for the full report (missing files, leakage...).
    """
    p = manifest_path(path)
    df = read_raw(p)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise FascoreError(
            f"{p} lacks the column(s) {', '.join(missing)}; a manifest needs "
            f"{', '.join(REQUIRED_COLUMNS)}. Run `python -m fascore validate {p}`."
        )
    df["label"] = canonical_labels(df["label"])
    bad = ~df["label"].isin(LABELS) | ~df["split"].isin(SPLITS)
    if bad.any():
        raise FascoreError(
            f"{p} has {int(bad.sum())} row(s) with an unknown label or split. "
            f"Run `python -m fascore validate {p}` for details."
        )
    if "frame" in df.columns:
        df["frame"] = pd.to_numeric(df["frame"], errors="coerce").fillna(0).astype(int)
    root = p.parent.resolve()
    paths = list(df["path"])
    escaping = escaping_rows(paths, root)
    if escaping:
        raise FascoreError(
            f"{p}: {len(escaping)} row(s) name an image outside the manifest's folder (absolute, "
            f"'..' or a symlink that leads out): {_named(paths, escaping)}. Nothing was "
            f"trained; move the images under {root} and run `python -m fascore validate {p}`."
        )
    df["abspath"] = [str(root / rel) for rel in df["path"]]
    df["y"] = (df["label"] == "spoof").astype(int)
    return df


def lexically_escapes(rel: str) -> bool:
    """True when a manifest path is absolute or climbs out of its folder with ``..``."""
    if PurePosixPath(rel).is_absolute() or PureWindowsPath(rel).is_absolute() or rel[:1] in "/\\":
        return True
    return ".." in PurePosixPath(rel.replace("\\", "/")).parts


def escaping_rows(paths: Sequence[str], root: Path) -> list[int]:
    """Rows (0-based) whose path does not stay inside ``root``: absolute, ``..``, or a path that
    resolves outside it once symlinks are followed (a symlink loop counts as escaping).

    Each distinct folder is resolved once; a file is resolved on its own only when it is itself
    a symlink (one ``lstat``), so a manifest of thousands of rows in a few folders costs a few
    thousand ``lstat`` calls rather than one full resolution per row.
    """
    root = Path(root).resolve()
    folders: dict[str, Path | None] = {}

    def resolved_folder(rel_dir: str) -> Path | None:
        if rel_dir not in folders:
            try:
                folders[rel_dir] = (root / rel_dir).resolve()
            except (OSError, RuntimeError):
                folders[rel_dir] = None
        return folders[rel_dir]

    bad = []
    for i, rel in enumerate(paths):
        if lexically_escapes(rel):
            bad.append(i)
            continue
        rel_dir, _, name = rel.replace("\\", "/").rpartition("/")
        folder = resolved_folder(rel_dir)
        try:
            if folder is None:
                inside = False
            elif os.path.islink(folder / name):
                inside = (folder / name).resolve().is_relative_to(root)
            else:
                inside = folder.is_relative_to(root)
        except (OSError, RuntimeError):
            inside = False
        if not inside:
            bad.append(i)
    return bad


def _named(paths: Sequence[str], rows: list[int]) -> str:
    """``line 2 (../x.png), ...`` for the first few rows (CSV line = row + 2)."""
    shown = ", ".join(f"line {r + 2} ({paths[r]})" for r in rows[:SHOW])
    return shown + (f" and {len(rows) - SHOW} more" if len(rows) > SHOW else "")


def write_manifest(df: pd.DataFrame, out_dir: str | Path) -> Path:
    """Write the manifest columns of ``df`` (required first, then known optional ones)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cols = list(REQUIRED_COLUMNS) + [c for c in OPTIONAL_COLUMNS if c in df.columns]
    target = out / MANIFEST_NAME
    with atomic_path(target) as tmp:
        df[cols].to_csv(tmp, index=False)
    return target


def write_preprocessing(record: dict, out_dir: str | Path) -> Path:
    """Write the preprocessing record beside the manifest."""
    target = Path(out_dir) / PREPROCESSING_NAME
    atomic_write_text(target, json.dumps(record, indent=2, sort_keys=True, default=str))
    return target


def read_preprocessing(path: str | Path) -> dict:
    """The preprocessing record beside a manifest, or ``{}`` when there is none."""
    target = manifest_path(path).parent / PREPROCESSING_NAME
    if not target.exists():
        return {}
    try:
        return json.loads(target.read_text())
    except json.JSONDecodeError:
        return {"error": f"{target} is not valid JSON"}
