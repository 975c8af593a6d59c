"""Statistics of an experiment, with the episode as the unit (docs/method.md, "Deciding").

An *episode* is one independent draw of the k shots for one teacher seed (``seed``,
``episode``); every method of a sweep sees the same episodes, so two methods pair up episode by
episode. ``summarise`` gives each method's mean with a 95 % t-interval over its episodes;
``paired_differences`` the per-episode differences to a baseline named before looking, a
two-sided paired t-test per comparison, Holm's step-down correction across every comparison in
the table (the family), and the smallest difference the run could detect.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import stdtr, stdtrit  # t CDF and quantile, without scipy.stats (~0.5 s)

from fascore.eval.results.frame import BUDGET, METRICS, shots_key

UNIT = ["seed", "episode"]
GROUP = ["regime", "threshold_rule", "method", "shots"]
ALPHA = 0.05
POWER = 0.8
#: metrics where a lower value is better (error rates); AUC is higher-better
LOWER_IS_BETTER = {"hter": True, "apcer": True, "bpcer": True, "acer": True, "auc": False}
PAIR_COLUMNS = ["regime", "threshold_rule", "shots", "method", "baseline", "metric", "n",
                "diff_mean", "diff_std", "ci_lo", "ci_hi", "p_value", "p_holm", "detectable",
                "verdict"]  # fmt: skip


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and the two-sided t confidence interval of the mean: (mean, lo, hi); the interval
    is NaN below two values."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return np.nan, np.nan, np.nan
    if len(v) < 2:
        return float(v.mean()), np.nan, np.nan
    half = stdtrit(len(v) - 1, 0.5 + level / 2) * v.std(ddof=1) / np.sqrt(len(v))
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def paired_t(d: np.ndarray) -> float:
    """Two-sided p-value of the paired t-test on differences ``d`` (NaN below two differences
    or when they are all equal)."""
    d = np.asarray(d, dtype=float)
    if len(d) < 2 or np.ptp(d) == 0:
        return np.nan
    t = d.mean() / (d.std(ddof=1) / np.sqrt(len(d)))
    return float(2 * stdtr(len(d) - 1, -abs(t)))


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN entries are not tests and stay NaN): the
    family-wise error rate is at most alpha when every adjusted p < alpha is rejected."""
    p = np.asarray(p, dtype=float)
    out = np.full(len(p), np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    order = ok[np.argsort(p[ok], kind="stable")]
    running = 0.0
    for i, idx in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[idx]))
        out[idx] = running
    return out


def detectable_difference(sd: float, n: int, m: int, alpha: float = ALPHA) -> float:
    """The smallest true mean difference a paired t-test over ``n`` units detects with power
    ``POWER`` at the strictest Holm level ``alpha / m``: ``(t_{1-a/2m} + t_{power}) sd / sqrt(n)``
    (t quantiles with n - 1 degrees of freedom). NaN below two units."""
    if n < 2 or not np.isfinite(sd):
        return np.nan
    df = n - 1
    return float((stdtrit(df, 1 - alpha / (2 * max(m, 1))) + stdtrit(df, POWER)) * sd / np.sqrt(n))


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Per (regime, threshold rule, method, shots): ``n`` (episodes), and per metric
    ``<m>_mean``, ``<m>_std`` (ddof 1; NaN for one episode), ``<m>_lo``/``<m>_hi`` (95 % t-CI
    over episodes, clipped to [0, 1]) and the mean label budget; sorted by regime, rule, method and shots."""
    if df.empty:
        return pd.DataFrame(columns=[*GROUP, "n"])
    out = []
    for keys, sub in df.groupby(GROUP, sort=False):
        row = dict(zip(GROUP, keys, strict=True)) | {"n": len(sub)}
        for m in METRICS:
            v = sub[m].astype(float).to_numpy()
            mean, lo, hi = t_interval(v)  # every metric is a rate in [0, 1]: so is its CI
            row[f"{m}_mean"], row[f"{m}_lo"], row[f"{m}_hi"] = mean, max(lo, 0.0), min(hi, 1.0)
            finite = v[np.isfinite(v)]
            row[f"{m}_std"] = finite.std(ddof=1) if len(finite) > 1 else np.nan
        row.update({b: sub[b].astype(float).mean() for b in BUDGET})
        out.append(row)
    table = pd.DataFrame(out)
    order = table["shots"].map(shots_key)
    return table.assign(_k=order).sort_values([*GROUP[:3], "_k"]).drop(columns="_k")


def _pairs(sub: pd.DataFrame, ref: pd.DataFrame, metric: str) -> np.ndarray:
    both = (
        sub.set_index(UNIT)[metric]
        .astype(float)
        .to_frame("m")
        .join(ref.set_index(UNIT)[metric].astype(float).rename("b"), how="inner")
    )
    both = both.dropna()
    return (both["m"] - both["b"]).to_numpy()


def verdict(diff: float, p_holm: float, metric: str = "hter", alpha: float = ALPHA) -> str:
    """``better`` / ``worse`` than the baseline when Holm's p < alpha, else ``no detectable
    difference`` (``not tested`` without a p-value)."""
    if not np.isfinite(p_holm):
        return "not tested"
    if p_holm >= alpha:
        return "no detectable difference"
    lower = diff < 0
    return "better" if lower == LOWER_IS_BETTER[metric] else "worse"


def paired_differences(
    df: pd.DataFrame, baseline: str, metric: str = "hter", alpha: float = ALPHA
) -> pd.DataFrame:
    """Every method against ``baseline`` (named before looking) at the same regime, threshold
    rule and k, on the episodes both have: mean and std of the per-episode differences
    (method - baseline), their 95 % t-CI, the paired t-test p, Holm's p across every row (the
    family), the detectable difference at that family size, and the verdict."""
    rows = []
    base = df[df["method"] == baseline]
    for (regime, rule, method, shots), sub in df.groupby(GROUP, sort=False):
        ref = base[(base["regime"] == regime) & (base["threshold_rule"] == rule)
                   & (base["shots"] == shots)]  # fmt: skip
        if method == baseline or ref.empty:
            continue
        d = _pairs(sub, ref, metric)
        mean, lo, hi = t_interval(d)
        rows.append({"regime": regime, "threshold_rule": rule, "shots": shots, "method": method,
                     "baseline": baseline, "metric": metric, "n": len(d), "diff_mean": mean,
                     "diff_std": d.std(ddof=1) if len(d) > 1 else np.nan, "ci_lo": lo,
                     "ci_hi": hi, "p_value": paired_t(d)})  # fmt: skip
    out = pd.DataFrame(rows, columns=PAIR_COLUMNS)
    if out.empty:
        return out
    out["p_holm"] = holm(out["p_value"].to_numpy())
    m = int(np.isfinite(out["p_value"]).sum())
    out["detectable"] = [detectable_difference(s, n, m, alpha)
                         for s, n in zip(out["diff_std"], out["n"], strict=True)]  # fmt: skip
    out["verdict"] = [verdict(d, p, metric, alpha)
                      for d, p in zip(out["diff_mean"], out["p_holm"], strict=True)]  # fmt: skip
    return out
