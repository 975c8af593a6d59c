"""One run's samples for the Shift debugger: map coordinates, scores, decisions and attributes.

``load_shift(run)`` joins what the run's analysis stored (``embedding_index``, ``embeddings``,
``projection``), its scores and its teacher's, the thresholds of one evaluation regime and the
manifest's extra categorical columns into one table, one row per sample drawn on the maps:

- ``tx, ty`` / ``sx, sy``: the sample on the teacher's map (view ``shift``: teacher on both
  domains) and on the student's (view ``student``: student on both domains);
- ``teacher_score`` / ``student_score``: P(spoof) per image; ``*_right``: the decision at the
  regime's threshold of the sample's role is correct (spoof iff ``score >= threshold``);
- ``unit``: the statistical unit (subject, else video; see docs/architecture.md);
- any categorical column of the manifest (``session``, ``device``...) by path.

Scores are joined by image path: sample ids are row positions of each run's own protocol frame,
which differ between a teacher (no shots) and its students.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fascore.data.manifest import read_manifest
from fascore.errors import FascoreError
from fascore.store.runs import Run

#: model -> the projection view whose two sides that model embeds
MAP_VIEWS = {"teacher": "shift", "student": "student"}
#: columns every sample has; any other categorical manifest column is an attribute too
BASE_ATTRIBUTES = ("attack", "label", "split", "subject")
MAX_LEVELS = 200  # a manifest column with more distinct values is an id, not an attribute
NOT_ATTRIBUTES = {"path", "abspath", "frame", "y"}


@dataclass
class ShiftData:
    """A run's samples on the maps (``samples``, row i = sample i of ``embeddings``), their
    L2-normalised embeddings {model: (N, D) float32}, the regime shown and its thresholds."""

    run_id: str
    samples: pd.DataFrame
    embeddings: dict[str, np.ndarray]
    models: list[str]
    regime: str
    regimes: list[str]
    thresholds: dict[str, dict[str, float]]
    budget: dict = field(default_factory=dict)
    attributes: list[str] = field(default_factory=list)


def _need(run: Run, key: str, what: str):
    table = run.read_table(key) if key != "embeddings" else run.read_arrays(key)
    if table is None:
        raise FascoreError(
            f"run {run.id} has no {what}: the Shift debugger needs a finished run trained with "
            f"analysis on. Run `python -m fascore analyse {run.id}` or pick another run."
        )
    return table


def regime_record(final: dict | None, regime: str | None) -> tuple[str, dict]:
    """(name, record) of one regime in a final.json (``regimes`` as written by the trainer, see
    ``fascore.train.regimes``); ``regime`` None is the headline one. A final.json without
    ``regimes`` yields its headline fields as the one regime."""
    final = final or {}
    regs = final.get("regimes") or {}
    if not regs:
        name = final.get("regime") or "few-shot"
        return name, final
    name = regime if regime in regs else (final.get("regime") or next(iter(regs)))
    return name, regs.get(name) or next(iter(regs.values()))


def matching_regime(final: dict | None, kind: str) -> dict:
    """The record of a run's regime of the same kind (``few-shot`` or ``target-dev``): a
    teacher's zero-shot regime is its few-shot one."""
    regs = (final or {}).get("regimes") or {}
    for rec in regs.values():
        if rec.get("regime") == kind:
            return rec
    return regime_record(final, None)[1]


def role_thresholds(record: dict) -> dict[str, float]:
    """{role: threshold} of one regime record (``<role>_test.threshold``)."""
    out = {}
    for role in ("source", "target"):
        value = (record.get(f"{role}_test") or {}).get("threshold")
        if value is not None:
            out[role] = float(value)
    return out


def _teacher(run: Run) -> Run | None:
    tid = run.config().get("teacher")
    return Run(run.path.parent / tid) if tid else None


def _scores_by_path(run: Run | None) -> pd.Series:
    table = run.read_table("scores") if run is not None else None
    if table is None:
        return pd.Series(dtype=float)
    return table.drop_duplicates("path").set_index("path")["score"].astype(float)


def _coords(projection: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """Per sample id: ``tx, ty`` and ``sx, sy`` from the maps of the models present."""
    out = None
    for model in models:
        part = projection[(projection["view"] == MAP_VIEWS[model]) & (projection["model"] == model)]
        p = model[0]
        xy = part.drop_duplicates("sample").set_index("sample")[["x", "y"]]
        xy.columns = [f"{p}x", f"{p}y"]
        out = xy if out is None else out.join(xy, how="inner")
    return out if out is not None else pd.DataFrame()


def _manifest_columns(run: Run, index: pd.DataFrame) -> pd.DataFrame:
    """The manifest's categorical columns for each sample (by absolute path); none when the
    manifest cannot be read (the images then fail with their own message)."""
    frames = []
    for path in run.config().get("data") or ():
        try:
            frames.append(read_manifest(path))
        except FascoreError:
            continue
    if not frames:
        return pd.DataFrame(index=index.index)
    man = pd.concat(frames, ignore_index=True).drop_duplicates("abspath").set_index("abspath")
    keep = [c for c in man.columns if c not in NOT_ATTRIBUTES and c not in index.columns]
    return man.reindex(index["path"])[keep].reset_index(drop=True).astype(str)


def _decisions(samples: pd.DataFrame, model: str, by_role: dict[str, float]) -> pd.DataFrame:
    thr = samples["role"].map(by_role).astype(float)
    spoof = samples[f"{model}_score"] >= thr
    right = (spoof == (samples["y"] == 1)).where(thr.notna() & samples[f"{model}_score"].notna())
    return samples.assign(**{f"{model}_threshold": thr, f"{model}_right": right})


def load_shift(run: Run, regime: str | None = None) -> ShiftData:
    """The run's samples on its maps, scored and judged under ``regime`` (None: the headline)."""
    index = _need(run, "embedding_index", "stored embeddings")
    arrays = _need(run, "embeddings", "stored embeddings")
    projection = _need(run, "projection", "embedding maps")
    models = [m for m in MAP_VIEWS if m in arrays]
    coords = _coords(projection, models)
    keep = index["sample"].isin(coords.index).to_numpy()
    samples = index[keep].reset_index(drop=True)
    samples = samples.join(coords, on="sample")
    samples["y"] = (samples["label"] == "spoof").astype(int)
    scores = {"teacher": _teacher(run) if "student" in models else run, "student": run}
    final = run.read_json("final")
    name, record = regime_record(final, regime)
    kind = record.get("regime", name)
    thresholds = {}
    for model in models:
        owner = scores[model]
        samples[f"{model}_score"] = samples["path"].map(_scores_by_path(owner))
        if owner is None:  # a student run that names no teacher run: no teacher decisions
            thresholds[model] = {}
        else:
            rec = record if owner == run else matching_regime(owner.read_json("final"), kind)
            thresholds[model] = role_thresholds(rec)
        samples = _decisions(samples, model, thresholds[model])
    samples = pd.concat([samples, _manifest_columns(run, samples)], axis=1)
    has_subject = "subject" in samples and samples["subject"].astype(str).str.len().gt(0).all()
    unit = samples["subject"] if has_subject else samples["video"]
    samples["domain_label"] = samples["domain"].astype(str) + " " + samples["label"].astype(str)
    samples["unit"] = samples["domain"].astype(str) + "/" + unit.astype(str)
    emb = {m: _unit_rows(arrays[m].astype(np.float32)[keep]) for m in models}
    attrs = [c for c in samples.columns if _is_attribute(samples, c)]
    return ShiftData(run.id, samples, emb, models, name, list((final or {}).get("regimes") or [name]),
                     thresholds, record.get("label_budget") or {}, attrs)  # fmt: skip


def _is_attribute(samples: pd.DataFrame, column: str) -> bool:
    """A categorical column with 2 to ``MAX_LEVELS`` values that is not the domain itself, an
    id (path, video) or a derived column."""
    if column in NOT_ATTRIBUTES or column in (
        "domain",
        "role",
        "unit",
        "video",
        "sample",
        "domain_label",
    ):
        return False
    if column.endswith(("_right", "_threshold", "_score")) or column in ("tx", "ty", "sx", "sy"):
        return False
    categorical = column in BASE_ATTRIBUTES or pd.api.types.is_string_dtype(samples[column])
    return categorical and 2 <= samples[column].nunique() <= MAX_LEVELS


def _unit_rows(z: np.ndarray) -> np.ndarray:
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


def budget_line(data: ShiftData) -> str:
    """``few-shot · labelled target videos: 10 to train, 0 to select, 0 for the threshold``."""
    b = data.budget

    def n(purpose: str) -> str:
        part = b.get(purpose) or {}
        return f"{part.get('videos', '?')} ({part.get('images', '?')} images)"

    return (
        f"{data.regime} · labelled target videos: {n('train')} to train, {n('selection')} to "
        f"select, {n('threshold')} for the threshold"
    )
