"""docs/results.md and docs/results.csv from the runs of ``python -m fascore results``."""

from __future__ import annotations

import resource
import shlex
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from fascore.atomic import atomic_write_text
from fascore.eval.results import lab, stats, tables
from fascore.eval.results.figure import shots_figure
from fascore.eval.results.frame import collect
from fascore.eval.results.sweep_page import headline_pairs
from fascore.store.runs import Run

BASELINE = "finetune"  # named before any run: the simplest way to use the teacher and the shots


def _episodes(runs: list[Run]) -> str:
    students = [r for r in runs if r.config()["method"] != "source_only"]
    done = [r for r in students if r.state() == "done"]
    units = {(r.config()["seed"], r.config().get("episode", 0)) for r in done}
    return f"{len(units)} episodes ({len(done)} student runs done of {len(students)} planned)"


def _run_seconds(runs: dict[str, list[Run]]) -> float:
    """The finished runs' own wall time (status ``started`` to ``finished``), each run once:
    what training them cost, whether this call trained them or found them in the store."""
    unique = {r.id: r for rs in runs.values() for r in rs if r.state() == "done"}
    total = 0.0
    for run in unique.values():
        status = run.status()
        if isinstance(status.get("started"), float) and isinstance(status.get("finished"), float):
            total += max(0.0, status["finished"] - status["started"])
    return total


def conclusions(pairs: pd.DataFrame) -> str:
    """One line per method under the shots rule: the verdict against the baseline with its
    interval and detectable difference (computed, not typed)."""
    rows = pairs[(pairs["regime"] == "few-shot") & (pairs["threshold_rule"] == "shots")]
    lines = []
    for r in rows.itertuples(index=False):
        tested = (
            f"Holm p = {r.p_holm:.3f}; this run could detect about {tables.pct(r.detectable)} "
            "points"
            if np.isfinite(r.p_holm)
            else "too few episodes to test"
        )
        lines.append(
            f"- k = {r.shots}, `{r.method}` vs `{r.baseline}`: **{r.verdict}** (ΔHTER "
            f"{tables.cell(r.diff_mean, r.ci_lo, r.ci_hi, r.n)} points over {r.n} episode(s); "
            f"{tested})."
        )
    return "\n".join(lines) or "(no pairs)"


def what_follows(pairs: pd.DataFrame) -> str:
    """What the corrected tests allow the lab to say, per threshold rule and k (computed)."""
    lines = []
    for (regime, rule, k), sub in pairs.groupby(["regime", "threshold_rule", "shots"], sort=False):
        tested = sub[np.isfinite(sub["p_holm"])]
        if tested.empty:
            continue
        by = {v: sorted(tested.loc[tested["verdict"] == v, "method"]) for v in
              ("better", "worse", "no detectable difference")}  # fmt: skip
        det = tested["detectable"].dropna()
        span = f"{tables.pct(det.min())}-{tables.pct(det.max())}" if len(det) else "n/a"
        parts = [f"{v}: {', '.join(f'`{m}`' for m in ms)}" for v, ms in by.items() if ms]
        lines.append(
            f"- {regime}, {tables.RULE_NAMES.get(rule, rule)} threshold, k = {k} "
            f"({int(tested['n'].max())} episodes; against `{sub['baseline'].iloc[0]}`): "
            + "; ".join(parts)
            + f". Differences smaller than {span} HTER points could not be detected."
        )
    return "\n".join(lines) or "(too few episodes to test anything)"


def rule_gaps(summary: pd.DataFrame) -> str:
    """Mean over student methods of each rule's HTER minus the oracle's (few-shot, every k)."""
    s = summary[(summary["regime"] == "few-shot")]
    if s.empty:
        return "(no runs)"
    wide = s.pivot_table(index=["method", "shots"], columns="threshold_rule", values="hter_mean")
    if "oracle" not in wide:
        return ""
    gaps = {r: (wide[r] - wide["oracle"]).mean() for r in tables.RULE_NAMES if r in wide}
    return ", ".join(f"{tables.RULE_NAMES[r]} {100 * g:+.1f}" for r, g in gaps.items())


def _ablation(df: pd.DataFrame) -> pd.DataFrame:
    if df.empty:
        return pd.DataFrame()
    cols = df["align_features"] + " features, " + df["mmd_classes"] + " MMD"
    d = df[(df["method"] == "distill") & (df["regime"] == "few-shot")].assign(
        method=cols[df["method"] == "distill"]
    )
    d = d[d["threshold_rule"].isin(["shots", "oracle"])]
    keep = d.groupby(["seed", "episode"])["method"].transform("nunique") == d["method"].nunique()
    return tables.rules_table(stats.summarise(d[keep]))


def write_doc(out: Path, runs: dict[str, list[Run]], args, seconds: float, cpu: float) -> None:
    """Write ``out`` (docs/results.md), ``results.csv`` and the figures beside it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    df = collect(runs["main"] + runs.get("shots", []), ("align_features", "mmd_classes"))
    df = df.drop_duplicates(["run", "regime", "threshold_rule"])
    atomic_write_text(out.with_name("results.csv"), df.to_csv(index=False))
    summary = stats.summarise(df)
    if not summary.empty:
        shots_figure(summary, out.with_name("results-shots.png"))
    pairs = headline_pairs(df, BASELINE)
    abl = collect(runs.get("ablation", []) + runs["main"], ("align_features", "mmd_classes"))
    cmd = " ".join(["python -m fascore results", shlex.join(sys.argv[2:])]).strip()
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # the training workers, all joined
    cpu += kids.ru_utime + kids.ru_stime
    n_runs = len({r.id for rs in runs.values() for r in rs})
    cfg = runs["main"][0].config() if runs["main"] else {}
    k5 = summary[summary["shots"].isin([5, 0])]
    text = f"""# Results on SynthFAS ({args.preset} preset)

Written by `{cmd}` ({n_runs} runs, trained or found in the run store; this call took {seconds:.0f} s of wall
time and {cpu:.0f} s of CPU, training workers included, and the runs' own training {_run_seconds(runs):.0f} s of
wall time summed over runs; every row in [`results.csv`](results.csv)). These are
**our** numbers on **synthetic** data, not the paper's. Protocol: teacher `source_only` on
`studio` (teacher seeds {list(args.seeds)}, selected on source dev only), students on `phone`,
`alexnet_mini` at 64 px, {cfg.get("epochs", "?")} epochs, batch 64, video-level scoring, target
test split of 300 videos (25 subjects).

**What was run.** k = 5: every method, {_episodes(runs["main"])}. k = 1 and 20:
`{"`, `".join(("target_only", "finetune", "distill"))}`, {_episodes(runs.get("shots", []))}.
Alignment ablation: {_episodes(runs.get("ablation", []))}. An *episode* is one teacher seed and
one independent draw of the k shots (`RunConfig.episode`), the same for every method, so methods
pair up episode by episode. Every number is in %: mean [95 % t-interval over episodes].

**How to read it.** Regimes and threshold rules: docs/method.md. **few-shot** uses only the k
shots as labelled target data; its headline threshold is the midpoint of the shots' class means
(`shots`), reported beside the source dev EER threshold (`source_dev`); **target-dev** also
selects and thresholds on the labelled target dev split (extra labels). The baseline, `{BASELINE}`,
was named before any run; each comparison is a paired t-test over episodes, Holm-corrected across
every comparison in the verdict table (one family), with the smallest difference the run could
detect (power 0.8). A verdict is *better*, *worse* or *no detectable difference*; nothing here
ranks methods by their means alone.

## Verdicts against `{BASELINE}`

{conclusions(pairs)}

{tables.markdown(tables.paired_table(pairs))}

## What the lab can and cannot conclude

Every comparison of the verdict table is in one Holm family. A method not named *better* or
*worse* is not shown to differ from the baseline at this number of episodes, which is not
evidence that it is equal: the last sentence of each line says how large a difference could
have gone unseen.

{what_follows(pairs)}

## All methods at k = 5

{tables.markdown(tables.side_by_side(k5))}

## Threshold rules (few-shot regime, the same weights)

Mean gap to the oracle (test EER threshold) over methods and k, HTER points: {rule_gaps(summary)}.

{tables.markdown(tables.rules_table(summary))}

## HTER against the number of shots

![HTER against the number of shots](results-shots.png)

{tables.markdown(tables.side_by_side(summary[~summary["shots"].isin([5])]))}

## Alignment options of `distill` (k = 5)

`distill` as trained in the main table (dropout-free features, marginal MMD) against train-mode
features and class-conditional MMD, on the episodes all three have (HTER %, few-shot):

{tables.markdown(_ablation(abl), "(not run)")}

## The students' development curves (k = 5)

{lab.dev_curves(runs["main"])}

{lab.diagnosis(runs["main"])}

## Diagnosis with the lab's views

{lab.lab_views(runs["diagnosis"], out.with_name("results-gradcam.png")) if runs.get("diagnosis") else "(not run in this regeneration: `--no-diagnosis`)"}
"""
    atomic_write_text(out, text)
