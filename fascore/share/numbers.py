"""How the dashboard's numbers read: rates in percent, permutation p-values at their floor, a
run's threshold rule in a few words. Pure and light (numpy and pandas only), so a page that
shows a number need not import plotly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def p_value_text(p: float | None, permutations: int | None) -> str:
    """A permutation test's p-value for reading: ``< 0.005 (200 permutations)`` at its floor
    ``1 / (permutations + 1)`` (no permutation reached the observed statistic, so the test can
    say no more; the bound is the floor rounded up to one significant digit), else ``0.123``;
    an em dash when missing."""
    if p is None or not np.isfinite(p):
        return "—"
    floor = 1.0 / (permutations + 1) if permutations else 0.0
    if permutations and p <= floor * (1.0 + 1e-9):
        step = 10.0 ** np.floor(np.log10(floor))
        return f"< {np.ceil(floor / step - 1e-9) * step:.2g} ({permutations} permutations)"
    return f"{p:.3f}"


def fmt_pct(value: float | None, ci: Sequence[float] | None = None) -> str:
    """A rate (or AUC) as a percentage with one decimal: ``40.3 [37.3, 43.0]``; an em dash
    for a missing or NaN value."""
    if value is None or not np.isfinite(value):
        return "—"
    if ci is None or len(ci) != 2 or not all(c is not None and np.isfinite(c) for c in ci):
        return f"{100 * value:.1f}"
    return f"{100 * value:.1f} [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def delta_table_percent(deltas: pd.DataFrame) -> pd.DataFrame:
    """``Comparison.deltas`` for reading in percent, the unit the Overview and Experiment tables
    use: each model's value with its own 95 % interval, then the paired delta (points)."""
    a, b = [c for c in deltas.columns[2:4]]
    delta = zip(deltas["delta"], deltas["delta_lo"], deltas["delta_hi"], strict=True)
    return pd.DataFrame(
        {
            "metric (%)": deltas["label"],
            a: [fmt_pct(v, ci) for v, ci in zip(deltas[a], deltas[f"{a}_ci"], strict=True)],
            b: [fmt_pct(v, ci) for v, ci in zip(deltas[b], deltas[f"{b}_ci"], strict=True)],
            "delta (second − first), points": [fmt_pct(d, (lo, hi)) for d, lo, hi in delta],
        }
    )


def threshold_text(final: dict | None) -> str:
    """A run's headline threshold rule in a few words, as the run recorded it in final.json
    (``threshold_rule``: "EER threshold of the target dev split (extra target labels) (at the
    scoring level), applied to ...; ..." -> "EER threshold of the target dev split (extra target
    labels)"); "threshold rule not recorded" for older runs."""
    rule = (final or {}).get("threshold_rule")
    if not isinstance(rule, str) or not rule.strip():
        return "threshold rule not recorded"
    head = rule.split(";")[0].split(", applied to")[0]
    return head.replace(" (at the scoring level)", "").strip()
