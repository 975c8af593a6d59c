"""Error sets: false accepts, false rejects and teacher/student disagreements, per sample.

Every model is judged at its own run's thresholds (``final.json``: the EER threshold of the same
domain's dev split, fixed before the test split is seen), per role: a source sample at the source
threshold, a target sample at the target threshold. Spoof iff ``score >= threshold``:

- ``false_accept``: a spoof scored below the threshold (an attack let through),
- ``false_reject``: a live sample scored at or above it,
- ``disagree``: teacher and student decide differently, each at its own threshold.

Decisions are per image, so every row is a picture the Grad-CAM page can show; when a run
reports video-level metrics its threshold was fixed on per-video mean scores, which share the
probability scale of the per-image scores it is applied to here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fascore.store.runs import Run

KINDS = ("false_accept", "false_reject", "disagree")
COLUMNS = [
    "sample",
    "path",
    "kind",
    "model",
    "score",
    "teacher_score",
    "student_score",
    "label",
    "attack",
    "domain",
    "video",
    "role",
    "split",
    "threshold",
]
ROLES = ("source", "target")


def final_thresholds(run: Run) -> dict[str, float]:
    """{role: threshold} from a run's ``final.json`` (``<role>_test.threshold``); {} if absent."""
    final = run.read_json("final") or {}
    out = {}
    for role in ROLES:
        value = (final.get(f"{role}_test") or {}).get("threshold")
        if value is not None:
            out[role] = float(value)
    return out


def own_model(models: dict | list) -> str:
    """The model a run trained: ``student`` in a student run, else ``teacher``."""
    return "student" if "student" in models else "teacher"


def run_thresholds(
    run: Run, models: dict | list, threshold: float | None = None
) -> dict[str, dict[str, float]]:
    """{model: {role: threshold}}: the run's own model from its final.json (``threshold``, when
    given, overrides its target threshold); a student run's teacher from the teacher run's."""
    own = own_model(models)
    out = {own: final_thresholds(run)}
    if threshold is not None:
        out[own]["target"] = float(threshold)
    teacher_id = (run.config() or {}).get("teacher")
    if own == "student" and "teacher" in models and teacher_id:
        out["teacher"] = final_thresholds(Run(run.path.parent / teacher_id))
    return out


def _row_thresholds(roles: np.ndarray, by_role: dict[str, float]) -> np.ndarray:
    """Per-sample threshold (N,) for the sample's role; NaN where the role has none."""
    return np.array([by_role.get(r, np.nan) for r in roles], dtype=float)


def error_table(
    samples: pd.DataFrame,
    scores: dict[str, np.ndarray],
    thresholds: dict[str, dict[str, float]],
) -> pd.DataFrame:
    """The error sets as one table (``COLUMNS``).

    ``samples`` (N rows: sample, path, label, y, attack, domain, video, role, split), ``scores``
    {model: (N,) P(spoof)}, ``thresholds`` {model: {role: t}}. A model or role without a
    threshold contributes no rows; disagreements need both models' thresholds.
    """
    roles = samples["role"].to_numpy()
    y = samples["y"].to_numpy().astype(int)
    t_score = scores.get("teacher", np.full(len(samples), np.nan))
    s_score = scores.get("student", np.full(len(samples), np.nan))
    base = samples.assign(teacher_score=t_score, student_score=s_score)
    parts, decisions = [], {}
    for model, score in scores.items():
        t = _row_thresholds(roles, thresholds.get(model, {}))
        known = ~np.isnan(t)
        spoof = score >= t
        decisions[model] = (spoof, known)
        for kind, hit in (("false_accept", (y == 1) & ~spoof), ("false_reject", (y == 0) & spoof)):
            mask = hit & known
            parts.append(
                base[mask].assign(kind=kind, model=model, score=score[mask], threshold=t[mask])
            )
    if "teacher" in decisions and "student" in decisions:
        (dt, kt), (ds, ks) = decisions["teacher"], decisions["student"]
        mask = (dt != ds) & kt & ks
        t = _row_thresholds(roles, thresholds["student"])
        parts.append(
            base[mask].assign(
                kind="disagree", model="teacher+student", score=s_score[mask], threshold=t[mask]
            )
        )
    parts = [p for p in parts if len(p)]  # pandas warns on concatenating empty frames
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)
    return table[COLUMNS].reset_index(drop=True)


def error_counts(table: pd.DataFrame) -> dict[str, dict[str, int]]:
    """{model: {kind: count}} for the summary in alignment.json."""
    return {
        str(m): {str(k): int(n) for k, n in g["kind"].value_counts().items()}
        for m, g in table.groupby("model")
    }
