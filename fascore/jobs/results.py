"""``python -m fascore results``: ``docs/results.md`` on the SynthFAS demo protocol, from sweeps.

Three sweeps over the demo protocol (teacher on ``studio``, students on ``phone``), each planned by
``fascore.jobs.sweep.plan_sweep`` and trained through its launcher (finished runs are reused, since
a config's hash names its run; an interrupted call continues):

- the main table: every method at k = 5 over ``--seeds``, under both evaluation regimes;
- the ablation (CE -> +MMD -> +pair -> full), read from the same runs;
- a w_mmd x w_pair sensitivity grid of ``distill`` over ``--grid-seeds`` (fewer seeds: the page
  says so);
- HTER against the number of shots k (``SHOTS``) for the teacher, ``target_only``, ``finetune``
  and ``distill`` over ``--shots-seeds``;

then the lab's own view of why a method does or does not help: the students' development curves
(per-epoch target-dev AUC and the alignment terms they minimised), and, from the analysed runs of
``python -m fascore demo`` (seed 0, the same protocol and budget), the per-epoch alignment, the
domain statistics and Grad-CAM on the target's spoof frames (``fascore.eval.diagnosis``). Nothing
is tuned here: the tables are whatever the runs give.
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fascore.atomic import atomic_write_text
from fascore.config import RunConfig
from fascore.data.synth.cache import preset_manifest
from fascore.eval import experiment
from fascore.jobs.plan import BUDGETS, DEMO_PROTOCOL, STUDENT_METHODS, demo_configs
from fascore.jobs.sweep import cell, markdown, plan_sweep, shots_figure, side_by_side, submit_plan
from fascore.store.runs import Run, RunStore

ABLATION = (("CE (finetune)", "finetune"), ("+ MMD", "mmd"), ("+ pair", "pair"),
            ("full (distill)", "distill"))  # fmt: skip
GRID = (0.3, 1.0, 3.0)  # w_mmd and w_pair values of the sensitivity grid
BASELINES = ("target_only", "finetune", "kd")
SHOTS = (1, 5, 20)  # labelled target presentations per class of the shots sweep
SHOTS_METHODS = ("source_only", "target_only", "finetune", "distill")


def base_config(preset: str, epochs: int | None) -> RunConfig:
    budget = dict(BUDGETS.get(preset, BUDGETS["demo"]))
    if epochs:
        budget["epochs"] = epochs
    return RunConfig(data=(str(preset_manifest(preset)),), **DEMO_PROTOCOL, **budget,
                     analysis=False, n_boot=200, experiment=f"synthfas-{preset}-results")  # fmt: skip


def plans(
    base: RunConfig, seeds, grid_seeds, shots_seeds=(), preset: str | None = None
) -> dict[str, list[RunConfig]]:
    """The configs of each sweep (teachers first); shared runs appear in several plans.

    ``diagnosis`` is the demo's own plan for seed 0 (analysis on): ``python -m fascore demo``
    trains the same runs, so each reuses the other's."""
    main = plan_sweep(base, ["source_only", *STUDENT_METHODS], list(seeds), [5])
    teachers = [c for c in main if c.method == "source_only" and c.seed in grid_seeds]
    students = [c.replace(w_mmd=a, w_pair=b) for c in main if c.method == "distill"
                and c.seed in grid_seeds for a in GRID for b in GRID]  # fmt: skip
    out = {"main": main}
    if preset:
        out["diagnosis"] = demo_configs(preset, (0,), epochs=base.epochs)
    out["grid"] = teachers + students  # the grid shares the main teachers
    if shots_seeds:
        out["shots"] = plan_sweep(base, list(SHOTS_METHODS), list(shots_seeds), list(SHOTS))
    return out


def train_all(configs: list[RunConfig], store: RunStore) -> list[Run]:
    """Every config once, teachers first, through the sweep's launcher (``local`` by default)."""
    unique = list({c.run_id(): c for c in configs}.values())
    unique.sort(key=lambda c: c.teacher is not None)
    submit_plan(unique, launcher="local", store=store, report=print)
    return [store.run(c.run_id()) for c in configs]


def frame(runs: list[Run]) -> pd.DataFrame:
    """results.csv's rows (one per done run and regime) plus the loss weights of each run."""
    rows = []
    for run in runs:
        if run.state() == "done":
            cfg = run.config()
            for row in experiment.run_rows(run.id, cfg, run.read_json("final")):
                rows.append(row | {"w_mmd": cfg["w_mmd"], "w_pair": cfg["w_pair"]})
    return pd.DataFrame(rows, columns=[*experiment.COLUMNS, "w_mmd", "w_pair"])


def main_table(summary: pd.DataFrame, methods, labels: dict | None = None) -> pd.DataFrame:
    """Rows = methods; HTER, AUC and target labels used under each regime side by side."""
    s = summary.assign(col=summary["regime"].replace({"zero-shot": "few-shot"}))
    rows = []
    for m in methods:
        sub = s[s["method"] == m]
        if sub.empty:
            continue
        row = {"method": (labels or {}).get(m, m) + (" (zero-shot)" if m == "source_only" else ""),
               "seeds": int(sub["n"].max())}  # fmt: skip
        for tag in ("few-shot", "target-dev"):
            r = sub[sub["col"] == tag]
            if r.empty:
                continue
            r = r.iloc[0]
            row[f"HTER % ({tag})"] = cell(r["hter_mean"], r["hter_std"], True)
            row[f"AUC ({tag})"] = cell(r["auc_mean"], r["auc_std"], False)
            row[f"target labels, videos ({tag})"] = (
                f"{r['train_videos'] + r['extra_videos']:.0f} ({r['extra_videos']:.0f} extra)"
            )
        rows.append(row)
    return pd.DataFrame(rows).fillna("")


def paired_table(df: pd.DataFrame, baseline: str) -> pd.DataFrame:
    pairs = experiment.paired_differences(df, baseline)
    if pairs.empty:
        return pairs
    pairs = pairs[pairs["method"] != "source_only"]
    return pd.DataFrame({
        "regime": pairs["regime"], "method": pairs["method"], "vs": pairs["baseline"],
        "seeds": pairs["n"],
        "ΔHTER points": [cell(m, s, True) for m, s in zip(pairs["diff_mean"], pairs["diff_std"], strict=True)],
        "paired t-test p": [f"{p:.3f}" if np.isfinite(p) else "n/a" for p in pairs["p_value"]],
    })  # fmt: skip


def verdict(df: pd.DataFrame) -> str:
    """Per regime: is distill's mean HTER below every baseline's, and is the gap beyond noise?"""
    lines = []
    for regime in ("few-shot", "target-dev"):
        sub = df[df["regime"] == regime]
        means = sub.groupby("method")["hter"].mean()
        base = means.reindex([b for b in BASELINES if b in means.index])
        if "distill" not in means.index or base.empty:
            continue
        best = base.idxmin()
        pairs = experiment.paired_differences(sub, best)
        row = pairs[pairs["method"] == "distill"]
        p = float(row["p_value"].iloc[0]) if len(row) else float("nan")
        gap = (means[best] - means["distill"]) * 100
        word = "below" if gap > 0 else "above"
        sig = "significant at 0.05" if np.isfinite(p) and p < 0.05 else "not significant"
        lines.append(
            f"- **{regime}**: `distill` {abs(gap):.1f} HTER points {word} the best baseline "
            f"(`{best}`), paired t-test over seeds p = {p:.3f} ({sig})."
        )
    return "\n".join(lines)


def grid_table(df: pd.DataFrame, regime: str, seeds=None) -> pd.DataFrame:
    """distill's HTER per (w_mmd, w_pair); only ``seeds`` (the grid's), so every cell compares
    the same seeds."""
    sub = df[(df["method"] == "distill") & (df["regime"] == regime)]
    if seeds is not None:
        sub = sub[sub["seed"].isin(list(seeds))]
    rows = []
    for a in GRID:
        row = {"w_mmd \\ w_pair": a}
        for b in GRID:
            v = sub[np.isclose(sub["w_mmd"], a) & np.isclose(sub["w_pair"], b)]["hter"]
            row[f"{b}"] = cell(v.mean(), v.std(ddof=1) if len(v) > 1 else 0.0, True) + (
                f" (n={len(v)})"
            )
        rows.append(row)
    return pd.DataFrame(rows)


def dev_curves(runs: list[Run], methods=("finetune", "mmd", "pair", "distill")) -> str:
    """Per-epoch target-dev AUC (video level) and the alignment terms, mean over seeds."""
    per: dict[str, list[list[dict]]] = {}
    for run in runs:
        if run.state() == "done" and (m := run.config()["method"]) in methods:
            per.setdefault(m, []).append(run.metrics())
    if not per:
        return "(no finished student runs)"
    epochs = min(len(ms) for runs_m in per.values() for ms in runs_m)
    head = "| method | " + " | ".join(f"ep {e}" for e in range(1, epochs + 1)) + " |"
    lines = [head, "|" + "---|" * (epochs + 1)]
    for m in methods:
        if m not in per:
            continue
        for key, label in (
            ("auc", "target-dev AUC"),
            ("mmd", "train MMD²"),
            ("pair", "train pair"),
        ):
            vals = []
            for e in range(epochs):
                xs = [(r[e].get("target_dev") or {}).get("auc") if key == "auc"
                      else (r[e].get("train") or {}).get(key) for r in per[m]]  # fmt: skip
                xs = [x for x in xs if x is not None]
                vals.append(f"{np.mean(xs):.3f}" if xs else "")
            if any(vals):
                lines.append(f"| {m}: {label} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def _curve(runs: list[Run], method: str, key: str) -> np.ndarray:
    """Mean over a method's done runs of one per-epoch value (target-dev AUC or a train term)."""
    curves = []
    for run in runs:
        if run.state() == "done" and run.config()["method"] == method:
            curves.append([(m.get("target_dev") or {}).get("auc") if key == "auc"
                           else (m.get("train") or {}).get(key) for m in run.metrics()])  # fmt: skip
    if not curves:
        return np.zeros(0)
    n = min(len(c) for c in curves)
    return np.nanmean(np.array([c[:n] for c in curves], dtype=float), axis=0)


def diagnosis(runs: list[Run]) -> str:
    """What the development curves say about distill against finetune (computed, not typed)."""
    d, f = _curve(runs, "distill", "auc"), _curve(runs, "finetune", "auc")
    mmd, pair = _curve(runs, "distill", "mmd"), _curve(runs, "distill", "pair")
    if len(d) == 0 or len(f) == 0:
        return ""
    m = _curve(runs, "mmd", "auc")
    below = len(m) and m[0] < f[0] and d[0] < f[0] and m[-1] < f[-1] and d[-1] < f[-1]
    reading = (
        " Both methods that carry the MMD term (`mmd`, `distill`) sit below `finetune` on target "
        "dev from the first epoch to the last, while `pair` alone does not. That is consistent with "
        "MMD pulling the student's target features towards the teacher's source features, where "
        "the phone's own cues (soft media, gloss, the mask's seam) are not encoded; the last "
        "section tests it with the analysed runs' alignment statistics and Grad-CAM."
        if below
        else ""
    )
    return (
        reading.strip()
        + "\n\n"
        + (
            f"`distill`'s target-dev AUC goes from {d[0]:.3f} after epoch 1 to {d[-1]:.3f} after "
            f"epoch {len(d)} (best {d.max():.3f}, epoch {int(d.argmax()) + 1}); `finetune`'s from "
            f"{f[0]:.3f} to {f[-1]:.3f} (best {f.max():.3f}, epoch {int(f.argmax()) + 1}). Over the same "
            f"epochs `distill` drives its training MMD² from {mmd[0]:.4f} to {mmd[-1]:.4f} and its "
            f"pair term from {pair[0]:.4f} to {pair[-1]:.4f}."
        )
    )


def lab_views(runs: list[Run], figure: Path) -> str:
    """The diagnosis from the analysed seed-0 runs: per-epoch alignment, the domain statistics of
    the aligned view, and Grad-CAM agreement with the teacher on target spoof frames (the grid
    of maps goes to ``figure``)."""
    from fascore.eval import diagnosis  # start-up cost: captum, only for this section

    done = {r.config()["method"]: r for r in runs if r.state() == "done"}
    teacher = done.pop("source_only", None)
    if teacher is None or not done:
        return "(the analysed runs of `python -m fascore demo` are not finished)"
    align = pd.DataFrame(diagnosis.alignment_rows(done))
    cams, explained = diagnosis.gradcam_agreement(teacher, done)
    diagnosis.gradcam_grid(explained, figure)
    final = {m: (r.read_json("final") or {}).get("target_test") or {} for m, r in done.items()}
    align_md = markdown(pd.DataFrame({
        "student": align["method"],
        "MMD² epoch 1 → last": [f"{a:.3f} → {b:.3f}" for a, b in
                                 zip(align["mmd2_first"], align["mmd2_last"], strict=True)],
        "MMD², test": align["mmd2"].map("{:.3f}".format),
        "p (video permutation)": align["p_value"].map("{:.3f}".format),
        "proxy A-distance": align["proxy_a_distance"].map("{:.2f}".format),
        "target test HTER %": [f"{100 * final[m].get('hter', np.nan):.1f}" for m in align["method"]],
    }))  # fmt: skip
    cam_md = markdown(pd.DataFrame({
        "model": [c["model"] for c in cams],
        "Grad-CAM correlation with the teacher's": [f"{c['cam_corr_with_teacher']:.2f}" for c in cams],
        "mean P(spoof) on these spoof frames": [f"{c['mean_p_spoof']:.2f}" for c in cams],
    }))  # fmt: skip
    n = cams[0]["frames"]
    a = align.set_index("method")
    low_mmd = [m for m in a.index if a.loc[m, "mmd2"] < a["mmd2"].median()]
    separable = all(a.loc[m, "proxy_a_distance"] > 1.5 for m in low_mmd)
    corr = {c["model"]: c["cam_corr_with_teacher"] for c in cams}
    students = {m: v for m, v in corr.items() if m != "teacher"}
    closest = max(students, key=students.get)
    reading = []
    if low_mmd and separable:
        reading.append(
            f"The students with the lowest test MMD² ({', '.join(f'`{m}`' for m in low_mmd)}) "
            "still have a proxy A-distance above 1.5: a domain classifier separates the "
            "teacher's source features from their target features almost perfectly. The "
            "fixed-bandwidth kernel statistic was driven down without making the two domains "
            "indistinguishable, so the alignment term is not delivering the alignment it is for."
        )
    p_spoof = {c["model"]: c["mean_p_spoof"] for c in cams}
    reading.append(
        f"On {n} target spoof frames the student whose Grad-CAM agrees most with the teacher's is "
        f"`{closest}` (correlation {students[closest]:.2f}, mean P(spoof) "
        f"{p_spoof[closest]:.2f}); `target_only`, which never sees the teacher, reads "
        f"{students.get('target_only', float('nan')):.2f} (P(spoof) "
        f"{p_spoof.get('target_only', float('nan')):.2f}). The teacher gives these frames a mean "
        f"P(spoof) of {p_spoof['teacher']:.2f}"
        + (
            ": its source cues mostly do not fire on the phone's attacks, so agreeing with its "
            "maps is no merit here; compare each student's P(spoof) on the same frames."
            if p_spoof["teacher"] < 0.5
            else "."
        )
    )
    return f"""From the analysed runs of `python -m fascore demo` (seed 0, the same protocol and budget;
the Alignment and Grad-CAM pages show the same runs). MMD² is of the aligned view (teacher on
source, student on target, L2-normalised features, the kernel of docs/method.md), p from 200
permutations of whole videos; the proxy A-distance is 2(1 - 2·error) of a domain classifier with
subject-grouped folds (0: the domains cannot be told apart; 2: perfectly separable).

{align_md}

Grad-CAM of the spoof score on the first frame of {n} target test spoof videos (species
interleaved), each student against the teacher (Pearson correlation of the maps, mean over frames):

{cam_md}

![Grad-CAM on target spoof frames](results-gradcam.png)

*The first rows of those frames: the frame, then each model's spoof Grad-CAM (red = high).*

{chr(10).join("- " + r for r in reading)}
"""


def write_doc(out: Path, runs: dict[str, list[Run]], args, seconds: float) -> None:
    every = [r for rs in runs.values() for r in rs]
    df_main, df_grid = frame(runs["main"]), frame(runs["grid"])
    summary = experiment.summarise(df_main.drop(columns=["w_mmd", "w_pair"]))
    csv = out.with_name("results.csv")
    table = pd.concat([df_main, df_grid]).drop_duplicates(["run", "regime"])
    atomic_write_text(csv, table.to_csv(index=False))
    cmd = " ".join(["python -m fascore results", shlex.join(sys.argv[2:])]).strip()
    epochs = RunConfig.from_dict(runs["main"][0].config()).epochs if runs["main"] else "?"
    n_runs = len({r.id for r in every})
    demo_epochs = BUDGETS.get(args.preset, BUDGETS["demo"])["epochs"]
    budget = "the demo's budget" if epochs == demo_epochs else f"the demo's budget is {demo_epochs}"
    shots_md = ""
    if runs.get("shots"):
        df_shots = frame(runs["shots"]).drop(columns=["w_mmd", "w_pair"])
        shots_summary = experiment.summarise(df_shots)
        if not shots_summary.empty:
            shots_figure(shots_summary, out.with_name("results-shots.png"))
        seeds = sorted({int(r.config()["seed"]) for r in runs["shots"]})
        shots_md = f"""## HTER against the number of shots

`{"`, `".join(SHOTS_METHODS[1:])}` at k = {", ".join(map(str, SHOTS))} labelled target presentations
per class, mean ± std over seeds {seeds} (fewer seeds than the main table, for the CPU budget);
the zero-shot teacher is the k = 0 point.

![HTER against the number of shots](results-shots.png)

{markdown(side_by_side(shots_summary))}
"""
    views_md = lab_views(runs["diagnosis"], out.with_name("results-gradcam.png")) if runs.get(
        "diagnosis") else "(not run)"  # fmt: skip
    text = f"""# Results on SynthFAS ({args.preset} preset)

Written by `{cmd}` ({n_runs} runs, trained or found in the run store, in {seconds:.0f} s; every
row in [`results.csv`](results.csv)). These are **our** numbers on **synthetic** data, not the
paper's. Protocol: teacher `source_only` on `studio`, students on `phone` with k = 5 labelled
presentations per class, `alexnet_mini` at 64 px, {epochs} epochs ({budget}), batch 64,
video-level scoring, target test split of 300 videos. Mean ± std over seeds {list(args.seeds)}; the seed draws the shots and the teacher.

Regimes (see docs/method.md): **few-shot** uses only the k shots as labelled target data (a fixed
schedule: the last epoch; threshold from the source dev split); **zero-shot** is the teacher under
the same rule; **target-dev** selects the epoch and sets the threshold on the labelled target dev
split, whose videos are counted as extra target labels. How much room there is between the
zero-shot teacher and a model trained on every target label: docs/synthfas.md, "Headroom".

## All methods (k = 5), both regimes

{markdown(main_table(summary, ("source_only", *STUDENT_METHODS)))}

{verdict(df_main)}

## Paired differences (k = 5)

Per seed, the method's HTER minus the baseline's (same seed: same shots, same teacher), mean ±
std over seeds and a two-sided paired t-test.

{markdown(paired_table(df_main, "finetune"))}

{markdown(paired_table(df_main, "target_only"))}

## Ablation (k = 5)

{markdown(main_table(summary, tuple(m for _, m in ABLATION), dict((m, n) for n, m in ABLATION)))}

## Sensitivity of `distill` to w_mmd and w_pair (k = 5)

Target test HTER %, mean ± std over seeds {list(args.grid_seeds)} (fewer seeds than the main
table, for the CPU budget; n = seeds finished per cell).

few-shot regime:

{markdown(grid_table(pd.concat([df_main, df_grid]).drop_duplicates(["run", "regime"]), "few-shot", args.grid_seeds))}

target-dev regime:

{markdown(grid_table(pd.concat([df_main, df_grid]).drop_duplicates(["run", "regime"]), "target-dev", args.grid_seeds))}

## The students' development curves (k = 5)

Per epoch, mean over the main table's seeds: target-dev AUC (video level; watched, not used by the
few-shot regime) and the alignment terms each method minimised on its training batches.

{dev_curves(runs["main"])}

{diagnosis(runs["main"])}

{shots_md}
## Diagnosis with the lab's views

{views_md}"""
    atomic_write_text(out, text)


def write_results(args) -> Path:
    """Train (or reuse) every sweep's runs, then write ``args.out`` and ``results.csv`` beside it.

    ``args`` holds ``preset, seeds, grid_seeds, shots_seeds, epochs, out, collect_only`` (the
    CLI's flags)."""
    t0 = time.time()
    base = base_config(args.preset, args.epochs)
    store = RunStore()
    configs = plans(base, args.seeds, args.grid_seeds, args.shots_seeds, args.preset)
    if args.collect_only:  # write the page from the runs finished so far, train nothing
        runs = {k: [store.run(c.run_id()) for c in v] for k, v in configs.items()}
    else:
        runs = {k: train_all(v, store) for k, v in configs.items()}
    out = Path(args.out)
    write_doc(out, runs, args, time.time() - t0)
    return out
