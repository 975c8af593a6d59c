"""``python -m fascore validate``: one readable report on a manifest, never a traceback.

Errors make a manifest unusable or its results wrong (missing files, corrupt images, subject
leakage between splits); warnings make results weak (no dev split, one class only, very few
samples); info is worth knowing (images of mixed sizes). Row numbers in issues are 0-based data
rows; the report prints them as CSV line numbers (row + 2, the header being line 1).
"""

from __future__ import annotations

import io
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from PIL import Image, UnidentifiedImageError

from fascore.data import manifest as mf
from fascore.data.decode import open_image, to_rgb
from fascore.errors import FascoreError

SHOW = 5  # rows or files listed per issue before "... and N more"
FEW_IMAGES, FEW_VIDEOS = 10, 3  # fewer of one class in a domain x split is a warning


@dataclass
class Issue:
    """One finding: ``rows`` lists the offending data rows, or is a count when rows do not apply."""

    code: str
    message: str
    rows: list[int] | int = 0

    @property
    def count(self) -> int:
        return len(self.rows) if isinstance(self.rows, list) else int(self.rows)


@dataclass
class Report:
    """What ``validate_manifest`` found; ``ok`` means no errors."""

    path: str
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    info: list[Issue] = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def _lines(rows: list[int]) -> str:
    """Rows as CSV line numbers, the first few only."""
    shown = ", ".join(str(r + 2) for r in rows[:SHOW])
    more = f" and {len(rows) - SHOW} more" if len(rows) > SHOW else ""
    return f"line{'s' if len(rows) > 1 else ''} {shown}{more}"


def _rows(mask: pd.Series) -> list[int]:
    return [int(i) for i in mask[mask].index]


def _read(path: str | Path, report: Report) -> pd.DataFrame | None:
    """The raw table, or None with an error in ``report`` when it is not a usable CSV."""
    try:
        df = mf.read_raw(path)
    except FascoreError as err:
        report.errors.append(Issue("not_csv", str(err)))
        return None
    except (ValueError, OSError) as err:  # pandas raises plain ValueErrors on odd binary input
        report.errors.append(Issue("not_csv", f"{report.path} is not a readable CSV: {err}"))
        return None
    missing = [c for c in mf.REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        report.errors.append(
            Issue(
                "missing_columns",
                f"missing required column(s) {', '.join(missing)}; found "
                f"{', '.join(map(str, df.columns)) or 'none'}. A manifest needs "
                f"{', '.join(mf.REQUIRED_COLUMNS)}.",
            )
        )
        return None
    if df.empty:
        report.errors.append(Issue("empty", "the manifest has a header but no rows"))
        return None
    return df.assign(label=mf.canonical_labels(df["label"])).reset_index(drop=True)


def _check_values(df: pd.DataFrame, report: Report) -> None:
    """Empty cells, unknown labels or splits, and attack species that contradict the label."""
    for col in mf.REQUIRED_COLUMNS:
        rows = _rows(df[col].str.strip() == "")
        if rows:
            report.errors.append(Issue("empty_values", f"empty {col} in {_lines(rows)}", rows))
    for col, allowed in (("label", mf.LABELS), ("split", mf.SPLITS)):
        bad = ~df[col].isin(allowed) & (df[col].str.strip() != "")
        if bad.any():
            values = ", ".join(repr(v) for v in sorted(df.loc[bad, col].unique())[:SHOW])
            report.errors.append(
                Issue(
                    f"unknown_{col}",
                    f"unknown {col} {values} in {_lines(_rows(bad))}; "
                    f"use one of {', '.join(mf.LABELS if col == 'label' else mf.SPLITS)}"
                    + (" (or the integers 0 = live, 1 = spoof)" if col == "label" else ""),
                    _rows(bad),
                )
            )
    attack = df["attack"].str.strip()
    live_bad = _rows((df["label"] == "live") & (attack != mf.LIVE_ATTACK))
    spoof_bad = _rows((df["label"] == "spoof") & attack.isin(["", mf.LIVE_ATTACK]))
    if live_bad:
        msg = f"live rows must have attack '{mf.LIVE_ATTACK}': {_lines(live_bad)}"
        report.errors.append(Issue("live_with_attack", msg, live_bad))
    if spoof_bad:
        msg = f"spoof rows need an attack species (print, replay, ...): {_lines(spoof_bad)}"
        report.errors.append(Issue("spoof_without_attack", msg, spoof_bad))


def _check_paths(df: pd.DataFrame, root: Path, report: Report) -> list[int]:
    """Escaping paths, duplicates and missing files; returns the rows whose file can be opened."""
    escape = _rows(df["path"].map(mf.lexically_escapes))
    if escape:
        msg = f"paths must stay inside the manifest's folder (no '..', not absolute): {_lines(escape)}"
        report.errors.append(Issue("path_escapes", msg, escape))
    links = sorted(set(mf.escaping_rows(df["path"], root)) - set(escape))
    if links:
        msg = f"symlinks lead outside the manifest's folder: {_lines(links)}; copy the images in"
        report.errors.append(Issue("symlink_escapes", msg, links))
        escape = sorted(set(escape) | set(links))
    dup_rows = _rows(df.duplicated(keep="first"))
    if dup_rows:
        msg = f"{len(dup_rows)} duplicate row(s) (identical to an earlier one): {_lines(dup_rows)}"
        report.errors.append(Issue("duplicate_rows", msg, dup_rows))
    dup_paths = _rows(df["path"].duplicated(keep="first") & ~df.duplicated(keep="first"))
    if dup_paths:
        msg = f"{len(dup_paths)} path(s) listed more than once with different fields: {_lines(dup_paths)}"
        report.errors.append(Issue("duplicate_paths", msg, dup_paths))
    blocked = set(escape) | set(_rows(df["path"].str.strip() == ""))
    candidates = [i for i in range(len(df)) if i not in blocked]
    exists = {rel: (root / rel).is_file() for rel in {df.at[i, "path"] for i in candidates}}
    missing = [i for i in candidates if not exists[df.at[i, "path"]]]
    if missing:
        names = ", ".join(df.at[i, "path"] for i in missing[:SHOW])
        more = f" (and {len(missing) - SHOW} more)" if len(missing) > SHOW else ""
        msg = f"{len(missing)} row(s) name a file not found under {root}: {names}{more}"
        report.errors.append(Issue("missing_files", msg, missing))
    return [i for i in candidates if exists[df.at[i, "path"]]]


def _probe(path: Path, decode: bool) -> tuple[str | None, tuple[int, int] | None]:
    """(error or None, (width, height)); ``verify()`` checks structure, ``load()`` decodes."""
    try:
        data = path.read_bytes()
        with open_image(io.BytesIO(data)) as im:  # the pixel limit holds before decoding
            size = im.size
            im.verify()
        if decode:
            with open_image(io.BytesIO(data)) as im:
                im.load()
                to_rgb(im)  # the pixels training will see (or a refusal, e.g. float pixels)
        return None, size
    except UnidentifiedImageError:
        return "not an image format PIL can read", None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        return f"{type(err).__name__}: {err}", None


def _spread(items: list[str], n: int) -> list[str]:
    """About ``n`` items evenly spread over ``items`` (all when n >= len)."""
    if n <= 0:
        return []
    return items[:: max(1, len(items) // n)][:n]


def _check_images(
    df: pd.DataFrame, root: Path, rows: list[int], report: Report, sample: int | None
) -> None:
    """Open every image (in threads: PIL releases the GIL while it reads and decodes)."""
    paths = sorted({df.at[i, "path"] for i in rows})
    decode = set(paths) if sample is None else set(_spread(paths, sample))
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) + 2)) as pool:
        results = dict(
            zip(paths, pool.map(lambda p: _probe(root / p, p in decode), paths), strict=True)
        )
    bad = {p: err for p, (err, _) in results.items() if err}
    if bad:
        first = "; ".join(f"{p} ({e})" for p, e in list(bad.items())[:SHOW])
        more = f" (and {len(bad) - SHOW} more)" if len(bad) > SHOW else ""
        bad_rows = [i for i in rows if df.at[i, "path"] in bad]
        msg = f"{len(bad)} image(s) cannot be read: {first}{more}"
        report.errors.append(Issue("corrupt_images", msg, bad_rows))
    sizes = Counter(f"{s[0]}x{s[1]}" for _, s in results.values() if s)
    report.stats["image_sizes"] = dict(sizes.most_common())
    report.stats["images_decoded"] = len(decode)
    if len(sizes) > 1:
        top = ", ".join(f"{k} ({n})" for k, n in sizes.most_common(SHOW))
        msg = f"images of {len(sizes)} different sizes: {top}; loaders resize them to one size"
        report.info.append(Issue("mixed_sizes", msg, sum(sizes.values())))


def _spanning(df: pd.DataFrame, key: str, col: str) -> list[str]:
    """Values of ``key`` (subject or video) that take more than one value of ``col``."""
    n = df.groupby(key)[col].nunique()
    return sorted(n[n > 1].index.astype(str))


def _check_groups(df: pd.DataFrame, report: Report) -> None:
    """Leakage: a subject in several splits; a video spanning splits, labels, domains..."""
    subjects = _spanning(df, "subject", "split")
    if subjects:
        rows = _rows(df["subject"].isin(subjects))
        splits = df[df["subject"].isin(subjects[:SHOW])].groupby("subject")["split"].unique()
        named = ", ".join(f"{s} ({'/'.join(sorted(splits[s]))})" for s in subjects[:SHOW])
        msg = (
            f"{len(subjects)} subject(s) appear in more than one split (identity leakage): "
            f"{named}; splits must be subject-disjoint"
        )
        report.errors.append(Issue("subject_leakage", msg, rows))
    for col in ("split", "label", "attack", "domain", "subject"):
        videos = _spanning(df, "video", col)
        if videos:
            rows = _rows(df["video"].isin(videos))
            msg = (
                f"{len(videos)} video(s) span more than one {col}: {', '.join(videos[:SHOW])}; "
                "a video is one presentation, so its frames share split, label, attack, domain "
                "and subject (and video ids are unique across the manifest)"
            )
            report.errors.append(Issue(f"video_spans_{col}", msg, rows))


def _check_balance(df: pd.DataFrame, report: Report) -> None:
    """Warnings: a domain without dev split, a split with one class, very few samples."""
    few = []
    for domain, d in df.groupby("domain"):
        if "dev" not in set(d["split"]):
            msg = f"domain {domain!r} has no dev split: thresholds and model selection need one"
            report.warnings.append(Issue("no_dev_split", msg, len(d)))
        for split, s in d.groupby("split"):
            present = [lab for lab in mf.LABELS if (s["label"] == lab).any()]
            if len(present) == 1:
                msg = f"{domain}/{split} has {present[0]} samples only: metrics need both classes"
                report.warnings.append(Issue("one_class", msg, len(s)))
            for lab in present:
                rows = s[s["label"] == lab]
                n_img, n_vid = len(rows), rows["video"].nunique()
                if n_img < FEW_IMAGES or n_vid < FEW_VIDEOS:
                    few.append(f"{domain}/{split} {lab} ({n_img} images, {n_vid} videos)")
    if few:
        msg = (
            f"very few samples (< {FEW_IMAGES} images or < {FEW_VIDEOS} videos of a class) in "
            f"{', '.join(few[:SHOW])}{f' and {len(few) - SHOW} more' if len(few) > SHOW else ''}"
        )
        report.warnings.append(Issue("few_samples", msg, len(few)))


def _stats(df: pd.DataFrame) -> dict:
    """Counts of images and videos per domain x label x split x attack (JSON-friendly)."""
    keys = ["domain", "label", "split", "attack"]
    g = df.groupby(keys).agg(images=("path", "size"), videos=("video", "nunique")).reset_index()
    return {
        "rows": len(df),
        "videos": int(df["video"].nunique()),
        "subjects": int(df["subject"].nunique()),
        "domains": sorted(df["domain"].unique().tolist()),
        "counts": g.to_dict(orient="records"),
    }


def validate_manifest(path: str | Path, images: bool = True, sample: int | None = None) -> Report:
    """Check a manifest (file or folder) and return every problem found, never raising.

    ``images=False`` skips opening images (files are still checked to exist); ``sample`` decodes
    only about that many images (all are still verified); ``None`` decodes all.
    """
    p = mf.manifest_path(path)
    report = Report(path=str(p))
    df = _read(p, report)
    if df is None:
        return report
    _check_values(df, report)
    readable = _check_paths(df, p.parent.resolve(), report)
    if images and readable:
        _check_images(df, p.parent.resolve(), readable, report, sample)
    _check_groups(df, report)
    _check_balance(df, report)
    _check_lost(p, report)
    report.stats.update(_stats(df))
    return report


def _check_lost(path: Path, report: Report) -> None:
    """Videos the import could not crop a face from are not in the manifest: name them all."""
    lost = mf.read_preprocessing(path).get("lost") or []
    if lost:
        names = ", ".join(f"{v['video']} ({v['split']})" for v in lost)
        text = f"{len(lost)} video(s) gave no face crop at import and are absent: {names}"
        report.warnings.append(Issue("lost_videos", text, len(lost)))


def _table(stats: dict) -> str:
    """Images (videos) per domain/label/attack row and split column."""
    g = pd.DataFrame(stats["counts"])
    g["cell"] = g["images"].astype(str) + " (" + g["videos"].astype(str) + ")"
    t = g.pivot_table(
        index=["domain", "label", "attack"], columns="split", values="cell", aggfunc="first"
    )
    t = t.reindex(columns=[s for s in mf.SPLITS if s in t.columns]).fillna("-")
    return t.to_string()


def format_report(report: Report) -> str:
    """The report as plain text: verdict, issues by severity, then the count table."""
    head = "OK" if report.ok else f"{len(report.errors)} error(s)"
    out = [f"manifest {report.path}: {head}, {len(report.warnings)} warning(s)"]
    for title, issues in (
        ("error", report.errors),
        ("warning", report.warnings),
        ("info", report.info),
    ):
        out += [f"  {title}: [{i.code}] {i.message}" for i in issues]
    st = report.stats
    if "rows" in st:
        out.append(
            f"\n{st['rows']} images, {st['videos']} videos, {st['subjects']} subjects, "
            f"domains {', '.join(st['domains'])}; images (videos) per split:"
        )
        out.append(_table(st))
    if not report.ok:
        out.append("\nFix the errors above, then run `python -m fascore validate` again.")
    return "\n".join(out)
