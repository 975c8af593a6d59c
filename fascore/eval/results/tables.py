"""The experiment's tables as DataFrames (for pages) and markdown (for docs).

One unit everywhere: HTER, APCER, BPCER and AUC in % (as the Overview page shows them). A cell
reads ``mean [95 % CI]`` over episodes, or ``mean (n = 1)`` for a single episode: one episode has
no spread to print.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fascore.eval.results.frame import METRICS

#: The columns of the side-by-side table: (regime column, threshold rule, heading).
COLUMN_SETS = (
    ("few-shot", "shots", "few-shot, shots threshold"),
    ("few-shot", "source_dev", "few-shot, source-dev threshold"),
    ("target-dev", "target_dev", "target-dev"),
)
PAIR_HEADINGS = ["regime", "threshold", "k", "method", "vs", "episodes",
                 "ΔHTER points [95 % CI]", "p (paired t)", "p (Holm)", "detectable Δ",
                 "verdict"]  # fmt: skip
RULE_NAMES = {"shots": "shots midpoint", "source_dev": "source-dev EER", "fixed": "fixed 0.5",
              "target_dev": "target-dev EER", "oracle": "oracle (test EER, optimistic)"}  # fmt: skip


def pct(value: float, digits: int = 1) -> str:
    """A fraction as a percentage, or ``n/a``."""
    return f"{100 * value:.{digits}f}" if np.isfinite(value) else "n/a"


def cell(mean: float, lo: float, hi: float, n: int) -> str:
    """``mean [lo, hi]`` in %, or ``mean (n = 1)`` when there is no interval."""
    if not np.isfinite(mean):
        return "n/a"
    if n < 2 or not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{pct(mean)} (n = {n})"
    return f"{pct(mean)} [{pct(lo)}, {pct(hi)}]"


def markdown(df: pd.DataFrame, empty: str = "(no finished runs)") -> str:
    """A DataFrame as a GitHub markdown table."""
    if df.empty:
        return empty
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _summary_cell(summary: pd.DataFrame, regime: str, rule: str) -> pd.DataFrame:
    s = summary.assign(col=summary["regime"].replace({"zero-shot": "few-shot"}))
    zero = s["regime"] == "zero-shot"
    # the zero-shot teacher has no shots: its shots column is its fallback, source dev
    want = (s["threshold_rule"] == rule) | (zero & (rule == "shots")
                                           & (s["threshold_rule"] == "source_dev"))  # fmt: skip
    return s[(s["col"] == regime) & want]


def side_by_side(summary: pd.DataFrame, methods=None, labels: dict | None = None) -> pd.DataFrame:
    """One row per (method, k): HTER and AUC in % (mean [95 % CI] over episodes) under each of
    ``COLUMN_SETS``, with the target videos each used. The zero-shot teacher's row says so."""
    if summary.empty:
        return pd.DataFrame()
    rows = []
    order = methods or list(dict.fromkeys(summary["method"]))
    for method in order:
        for shots in dict.fromkeys(summary.loc[summary["method"] == method, "shots"]):
            sub = summary[(summary["method"] == method) & (summary["shots"] == shots)]
            zero = (sub["regime"] == "zero-shot").any()
            name = (labels or {}).get(method, method)
            row = {"method": f"{name} (zero-shot teacher)" if zero else name, "k": shots,
                   "episodes": int(sub["n"].max())}  # fmt: skip
            for regime, rule, head in COLUMN_SETS:
                r = _summary_cell(sub, regime, rule)
                if r.empty:
                    continue
                r = r.iloc[0]
                row[f"HTER % ({head})"] = cell(r["hter_mean"], r["hter_lo"], r["hter_hi"], r["n"])
                row[f"AUC % ({head})"] = cell(r["auc_mean"], r["auc_lo"], r["auc_hi"], r["n"])
                row[f"target videos ({head})"] = (
                    f"{r['train_videos'] + r['extra_videos']:.0f} ({r['extra_videos']:.0f} extra)"
                )
            rows.append(row)
    return pd.DataFrame(rows).fillna("")


def rules_table(summary: pd.DataFrame, regime: str = "few-shot") -> pd.DataFrame:
    """Target test HTER % (mean [95 % CI]) of each method under every threshold rule of one
    regime, the same weights throughout: how much of a ranking is calibration."""
    s = summary[summary["regime"] == regime]
    rows = []
    for (method, shots), sub in s.groupby(["method", "shots"], sort=False):
        row = {"method": method, "k": shots}
        for rule, name in RULE_NAMES.items():
            r = sub[sub["threshold_rule"] == rule]
            if len(r):
                r = r.iloc[0]
                row[name] = cell(r["hter_mean"], r["hter_lo"], r["hter_hi"], r["n"])
        rows.append(row)
    return pd.DataFrame(rows).fillna("")


def paired_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """``stats.paired_differences`` with readable headings (an empty table keeps them)."""
    if pairs.empty:
        return pd.DataFrame(columns=PAIR_HEADINGS)

    def diff(m, lo, hi, n) -> str:
        return cell(m, lo, hi, n)

    def p(v: float) -> str:
        return "n/a" if not np.isfinite(v) else ("< 0.001" if v < 0.001 else f"{v:.3f}")

    return pd.DataFrame({
        "regime": pairs["regime"],
        "threshold": pairs["threshold_rule"].map(lambda r: RULE_NAMES.get(r, r)),
        "k": pairs["shots"], "method": pairs["method"], "vs": pairs["baseline"],
        "episodes": pairs["n"],
        "ΔHTER points [95 % CI]": [diff(*v) for v in zip(pairs["diff_mean"], pairs["ci_lo"],
                                                          pairs["ci_hi"], pairs["n"], strict=True)],
        "p (paired t)": pairs["p_value"].map(p), "p (Holm)": pairs["p_holm"].map(p),
        "detectable Δ": pairs["detectable"].map(lambda v: f"{pct(v)} points"),
        "verdict": pairs["verdict"],
    }, columns=PAIR_HEADINGS)  # fmt: skip


def metric_label(metric: str) -> str:
    """A metric's heading with its unit (every metric in %)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}")
    return f"{metric.upper()} %"
