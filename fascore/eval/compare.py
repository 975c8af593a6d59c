"""Compare two runs (a teacher and a student, or any two) on the same target test set.

Pure logic behind the dashboard's Compare page and the report: check that the runs share the
protocol, join their per-image scores on ``path``, paired bootstrap deltas of the PAD metrics,
error rates at any threshold, and the samples on which the two models disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fascore import metrics
from fascore.errors import FascoreError
from fascore.store.runs import Run

#: Config fields that must match for two runs' test metrics to be comparable.
PROTOCOL_KEYS = ("data", "target_domain", "level")
#: (key, label) of the metrics compared, in display order; HTER is not ISO, the oracle is marked.
METRICS = (
    ("hter", "HTER (non-ISO)"),
    ("apcer", "APCER (max over species)"),
    ("bpcer", "BPCER"),
    ("acer", "ACER"),
    ("auc", "AUC"),
    ("eer_test", "EER (test)"),
    ("hter_oracle", "HTER, oracle threshold (optimistic)"),
)
INFO_COLUMNS = ("path", "sample", "video", "y", "label", "attack", "domain", "role", "split")


def _norm(key: str, value: object) -> object:
    if key == "data":  # the same manifest may be named by different relative paths
        return tuple(str(Path(p).resolve()) for p in (value or ()))
    return value


def protocol_differences(a: dict, b: dict) -> list[str]:
    """Readable lines ``"target_domain: phone vs kiosk"`` for every protocol field that differs."""
    out = []
    for key in PROTOCOL_KEYS:
        va, vb = _norm(key, a.get(key)), _norm(key, b.get(key))
        if va != vb:
            out.append(f"{key}: {a.get(key)} vs {b.get(key)}")
    return out


def check_protocol(a: dict, b: dict, names: Sequence[str] = ("A", "B")) -> None:
    """Raise a ``FascoreError`` listing the differences when the two configs' tests differ."""
    diffs = protocol_differences(a, b)
    if diffs:
        raise FascoreError(
            f"{names[0]} and {names[1]} were not evaluated under the same protocol "
            f"({'; '.join(diffs)}); pick two runs of the same experiment."
        )


def display_names(a: dict, b: dict, ids: tuple[str, str] = ("", "")) -> tuple[str, str]:
    """Short names for two runs (``ids`` are their run ids): ``teacher``/``student`` only when
    one is the other's teacher, else their methods, else method+seed, else the run ids.

    A role name must never be guessed from one config alone: ``target_only`` has no teacher but is
    no teacher either, and a column headed "teacher" would hold its numbers (issue 21, item 1).
    """
    if ids[0] and b.get("teacher") == ids[0]:
        return "teacher", "student"
    if ids[1] and a.get("teacher") == ids[1]:
        return "student", "teacher"
    for key in (lambda c: c.get("method", "?"), _method_seed):
        na, nb = key(a), key(b)
        if na != nb:
            return na, nb
    return (ids[0], ids[1]) if ids[0] != ids[1] else ("A", "B")


def _method_seed(cfg: dict) -> str:
    return f"{cfg.get('method', '?')} s{cfg.get('seed', '?')}"


def join_scores(
    frames: dict[str, pd.DataFrame], role: str = "target", split: str = "test"
) -> pd.DataFrame:
    """Inner join of two or more score tables on ``path``: the shared columns of the first plus
    ``score_<name>`` and ``sample_<name>`` (the image's id in that run) per model; only rows of
    ``role`` and ``split``. An empty join is an error."""
    joined = None
    for name, df in frames.items():
        part = df[(df["role"] == role) & (df["split"] == split)].drop_duplicates("path")
        own = {"score": f"score_{name}", "sample": f"sample_{name}"}
        mine = part[[c for c in ("path", *own) if c in part]].rename(columns=own)
        if joined is None:
            info = part[[c for c in INFO_COLUMNS if c in part]]
            joined = info.merge(mine, on="path", how="inner")
        else:
            joined = joined.merge(mine, on="path", how="inner")
    if joined is None or joined.empty:
        raise FascoreError(
            f"the runs share no scored {role} {split} image; were they trained on the same data?"
        )
    return joined.reset_index(drop=True)


def score_sets(
    joined: pd.DataFrame, names: Sequence[str], level: str
) -> dict[str, metrics.ScoreSet]:
    """One ``ScoreSet`` per model at the scoring level ("video" averages frames per video)."""
    out = {}
    for name in names:
        s = metrics.ScoreSet.from_frame(joined.assign(score=joined[f"score_{name}"]))
        out[name] = metrics.video_scores(s) if level == "video" else s
    return out


def _point(s: metrics.ScoreSet, threshold: float) -> dict[str, float]:
    """The compared metrics of one score set at a fixed (dev) threshold."""
    rates = metrics.error_rates(s, threshold)
    eer, thr_oracle = metrics.eer(s.y, s.score)
    return {
        "hter": rates["hter"],
        "apcer": rates["apcer"],
        "bpcer": rates["bpcer"],
        "acer": rates["acer"],
        "auc": metrics.auc(s.y, s.score),
        "eer_test": eer,
        "hter_oracle": metrics.error_rates(s, thr_oracle)["hter"],
    }


def paired_deltas(
    sets: dict[str, metrics.ScoreSet],
    thresholds: dict[str, float],
    n_boot: int = 300,
    seed: int = 0,
) -> pd.DataFrame:
    """Metrics of two models on the same units and ``delta = second - first`` with a paired 95 %
    bootstrap interval: both models are scored on the very same resampled videos, so the interval
    of the difference is much tighter than one read off two separate intervals.

    Columns: ``metric, label, <a>, <b>, delta, delta_lo, delta_hi``; ``sets`` must share units.
    """
    (a, sa), (b, sb) = sets.items()
    pa, pb = _point(sa, thresholds[a]), _point(sb, thresholds[b])
    ra, rb = metrics.paired_replicates([sa, sb], [thresholds[a], thresholds[b]], n_boot, seed)
    rows = []
    for key, label in METRICS:
        d = rb[key] - ra[key]
        d = d[np.isfinite(d)]
        lo, hi = np.percentile(d, [2.5, 97.5]) if len(d) else (np.nan, np.nan)
        rows.append(
            {
                "metric": key,
                "label": label,
                a: pa[key],
                b: pb[key],
                "delta": pb[key] - pa[key],
                "delta_lo": float(lo),
                "delta_hi": float(hi),
            }
        )
    return pd.DataFrame(rows)


def rates_at(sets: dict[str, metrics.ScoreSet], threshold: float) -> pd.DataFrame:
    """APCER (max over species), BPCER, ACER and HTER of each model at one shared threshold."""
    rows = []
    for name, s in sets.items():
        r = metrics.error_rates(s, threshold)
        rows.append({"model": name, **{k: r[k] for k in ("apcer", "bpcer", "acer", "hter")}})
    return pd.DataFrame(rows)


def error_rate_sweep(sets: dict[str, metrics.ScoreSet], n: int = 101) -> pd.DataFrame:
    """APCER and BPCER of each model over ``n`` thresholds in [0, 1] (long format)."""
    grid = np.linspace(0.0, 1.0, n)
    rows = [
        {"model": name, "threshold": t, **{k: r[k] for k in ("apcer", "bpcer")}}
        for name, s in sets.items()
        for t, r in ((t, metrics.error_rates(s, t)) for t in grid)
    ]
    return pd.DataFrame(rows)


def disagreements(joined: pd.DataFrame, thresholds: dict[str, float]) -> pd.DataFrame:
    """Images that the two models decide differently, each at its own threshold, largest score
    gap first. Frame-level decisions (a thumbnail is one frame) at the runs' dev thresholds."""
    (a, ta), (b, tb) = thresholds.items()
    says_a, says_b = joined[f"score_{a}"] >= ta, joined[f"score_{b}"] >= tb
    out = joined[says_a != says_b].copy()
    out["gap"] = (out[f"score_{b}"] - out[f"score_{a}"]).abs()
    out["correct"] = np.where((out[f"score_{b}"] >= tb) == (out["y"] == 1), b, a)
    return out.sort_values("gap", ascending=False, kind="stable").reset_index(drop=True)


@dataclass
class Comparison:
    """Everything the Compare page and the report need about two runs, loaded once."""

    names: tuple[str, str]
    runs: tuple[Run, Run]
    finals: dict[str, dict]  # name -> final.json's block for the compared role
    thresholds: dict[str, float]  # name -> dev-EER threshold from final.json
    level: str
    role: str  # the compared role: "target" (or "source")
    joined: pd.DataFrame  # one row per image, ``score_<name>`` per model
    sets: dict[str, metrics.ScoreSet]  # at ``level``
    scores: dict[str, pd.DataFrame]  # name -> the run's whole scores table

    def test_scores(self, all_roles: bool = False) -> dict[str, pd.DataFrame]:
        """Each model's test rows: of the compared role, or of every role (to compare domains)."""
        return {
            name: df[(df["split"] == "test") & (all_roles | (df["role"] == self.role))]
            for name, df in self.scores.items()
        }

    def deltas(self, n_boot: int = 300, seed: int = 0) -> pd.DataFrame:
        """``paired_deltas`` plus each model's own 95 % interval from its final.json."""
        table = paired_deltas(self.sets, self.thresholds, n_boot, seed)
        for name in self.names:
            table[f"{name}_ci"] = [self.finals[name].get(f"{m}_ci") for m in table["metric"]]
        return table


def compare_runs(
    run_a: Run,
    run_b: Run,
    role: str = "target",
    scores: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> Comparison:
    """Load and check two finished runs (``scores`` may pass already-read score tables)."""
    cfg_a, cfg_b = run_a.config(), run_b.config()
    names = display_names(cfg_a, cfg_b, (run_a.id, run_b.id))
    check_protocol(cfg_a, cfg_b, names)
    finals, frames = {}, {}
    for name, run, table in zip(names, (run_a, run_b), scores or (None, None), strict=True):
        final = (run.read_json("final") or {}).get(f"{role}_test")
        frame = table if table is not None else run.read_table("scores")
        if not final or frame is None:
            raise FascoreError(
                f"run {run.id} has no {role} test results yet (state: {run.state()}); "
                "wait for it to finish or pick a finished run."
            )
        finals[name], frames[name] = final, frame
    level = cfg_a.get("level") or "video"
    joined = join_scores(frames, role=role)
    thresholds = {n: float(finals[n]["threshold"]) for n in names}
    sets = score_sets(joined, names, level)
    runs = (run_a, run_b)
    return Comparison(names, runs, finals, thresholds, level, role, joined, sets, frames)
