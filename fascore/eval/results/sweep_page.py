"""A sweep folder's ``results.csv``, ``results.md`` and ``hter_vs_shots.png``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fascore.atomic import atomic_write_text
from fascore.eval.results import stats, tables
from fascore.eval.results.figure import shots_figure


def headline_pairs(df: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """The paired tests a sweep reports: every method against ``baseline`` under the few-shot
    shots rule, the few-shot source-dev rule and the target-dev regime; one Holm family."""
    keep = ((df["regime"] == "few-shot") & df["threshold_rule"].isin(["shots", "source_dev"])) | (
        (df["regime"] == "target-dev") & (df["threshold_rule"] == "target_dev")
    )
    return stats.paired_differences(df[keep], baseline)


def write_sweep_results(
    out: Path, df: pd.DataFrame, baseline: str, command: str, counts: dict[str, int]
) -> None:
    """Write ``results.csv`` (every row), ``results.md`` and the figure into ``out``.

    ``counts`` says how many runs ended in each state (done, failed, cancelled)."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.csv", df.to_csv(index=False))
    summary = stats.summarise(df)
    if not summary.empty:
        shots_figure(summary, out / "hter_vs_shots.png")
    pairs = tables.paired_table(headline_pairs(df, baseline))
    n_runs = sum(counts.values())
    text = f"""# Sweep results

Written by `{command}` from {n_runs} runs ({counts.get("done", 0)} done, {counts.get("failed", 0)}
failed, {counts.get("cancelled", 0)} cancelled); every number comes from their run folders
(`results.csv`: one row per run, regime and threshold rule, with its label budget).
Target test metrics in %, mean [95 % CI] over episodes (an episode: one teacher seed and one
independent draw of the k shots, the same for every method). Regimes and threshold rules: see
docs/method.md; **few-shot** uses only the k shots as labelled target data, **target-dev** also
selects and thresholds on the target dev split (extra labels).

## Both regimes side by side

{tables.markdown(tables.side_by_side(summary))}

## Threshold rules (few-shot regime, the same weights)

{tables.markdown(tables.rules_table(summary))}

## Paired differences against `{baseline}` (named before the runs)

Per episode, the method's HTER minus the baseline's; two-sided paired t-test over episodes,
Holm's correction across all {len(pairs)} comparisons of this table; "detectable Δ" is the
smallest true difference this many episodes would find with power 0.8 at the strictest Holm
level. Verdicts: better / worse (Holm p < 0.05) or no detectable difference.

{tables.markdown(pairs, "(no pairs: the baseline has no finished run at these k)")}

## HTER against the number of shots

![HTER against shots](hter_vs_shots.png)
"""
    atomic_write_text(out / "results.md", text)
