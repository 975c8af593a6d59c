"""An experiment's results: one row per run and regime, mean ± std per cell, paired differences.

``run_rows`` reads what a finished run wrote in ``final.json`` (its ``regimes``, see
``fascore.train.regimes``); ``summarise`` aggregates over seeds per (regime, method, shots);
``paired_differences`` compares every method with a baseline on the seeds both have (the seed is
the unit: the same seed samples the same shots and the same teacher for both methods), with a
two-sided paired t-test on the per-seed differences.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

METRICS = ("hter", "auc", "apcer", "bpcer", "acer")
BUDGET = (
    "train_images",
    "train_videos",
    "selection_images",
    "selection_videos",
    "threshold_images",
    "threshold_videos",
    "extra_images",
    "extra_videos",
)
COLUMNS = ("run", "method", "seed", "shots", "regime", *METRICS, *BUDGET)


def run_rows(run_id: str, config: dict, final: dict | None) -> list[dict]:
    """One row per regime a finished run reports (no rows without a ``final.json``)."""
    rows = []
    for name, res in ((final or {}).get("regimes") or {}).items():
        test = res.get("target_test") or {}
        budget = res.get("label_budget") or {}
        row = {
            "run": run_id,
            "method": config["method"],
            "seed": config["seed"],
            "shots": "all" if config.get("shots") is None else int(config["shots"]),
            "regime": name,
        }
        row.update({m: test.get(m, np.nan) for m in METRICS})
        for purpose in ("train", "selection", "threshold", "extra"):
            for unit in ("images", "videos"):
                row[f"{purpose}_{unit}"] = (budget.get(purpose) or {}).get(unit, np.nan)
        rows.append(row)
    return rows


def results_frame(rows: list[dict]) -> pd.DataFrame:
    """The rows as a frame with exactly ``COLUMNS`` (an empty frame when there are none)."""
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _shots_key(value) -> float:
    return np.inf if value == "all" else float(value)


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and std (ddof 1; 0 for one seed) over seeds per (regime, method, shots).

    Columns: regime, method, shots, n (seeds), ``<metric>_mean``, ``<metric>_std`` and the
    mean label budget (``extra_videos`` ...), sorted by regime, method and shots.
    """
    if df.empty:
        return pd.DataFrame(columns=["regime", "method", "shots", "n"])
    keys = ["regime", "method", "shots"]
    out = []
    for (regime, method, shots), sub in df.groupby(keys, sort=False):
        row = {"regime": regime, "method": method, "shots": shots, "n": len(sub)}
        for m in METRICS:
            v = sub[m].astype(float).dropna()
            row[f"{m}_mean"] = v.mean() if len(v) else np.nan
            row[f"{m}_std"] = v.std(ddof=1) if len(v) > 1 else (0.0 if len(v) else np.nan)
        row.update({b: sub[b].astype(float).mean() for b in BUDGET})
        out.append(row)
    table = pd.DataFrame(out)
    order = table["shots"].map(_shots_key)
    return table.assign(_k=order).sort_values(["regime", "method", "_k"]).drop(columns="_k")


def paired_differences(df: pd.DataFrame, baseline: str, metric: str = "hter") -> pd.DataFrame:
    """Per (regime, shots, method != baseline): mean and std of ``metric(method) - metric(base)``
    over the seeds both have, and the two-sided paired t-test p-value (NaN below 2 seeds or when
    every difference is equal)."""
    from scipy.stats import ttest_rel  # here: scipy.stats costs ~0.5 s to import

    out = []
    base = df[df["method"] == baseline]
    for (regime, shots, method), sub in df.groupby(["regime", "shots", "method"], sort=False):
        if method == baseline:
            continue
        ref = base[(base["regime"] == regime) & (base["shots"] == shots)]
        if ref.empty:
            continue
        both = (
            sub.set_index("seed")[metric]
            .astype(float)
            .to_frame("m")
            .join(ref.set_index("seed")[metric].astype(float).rename("b"), how="inner")
            .dropna()
        )
        d = (both["m"] - both["b"]).to_numpy()
        p = np.nan
        if len(d) >= 2 and np.ptp(d) > 0:
            p = float(ttest_rel(both["m"], both["b"]).pvalue)
        out.append({
            "regime": regime, "shots": shots, "method": method, "baseline": baseline,
            "n": len(d), "diff_mean": d.mean() if len(d) else np.nan,
            "diff_std": d.std(ddof=1) if len(d) > 1 else np.nan, "p_value": p,
        })  # fmt: skip
    return pd.DataFrame(out, columns=["regime", "shots", "method", "baseline", "n", "diff_mean",
                                      "diff_std", "p_value"])  # fmt: skip
