"""The lab's own views of why a method does or does not help, as markdown for docs/results.md.

From the students' per-epoch metrics (target-dev AUC, the alignment terms they minimised) and,
for the analysed runs of ``python -m fascore demo``, the alignment statistics and Grad-CAM
(``fascore.eval.diagnosis``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fascore.eval.results.tables import markdown
from fascore.store.runs import Run


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
        "p (subject permutation)": align["p_value"].map("{:.3f}".format),
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
    return f"""From the analysed runs of `python -m fascore demo` (seed 0, episode 0, the same protocol and budget;
the Alignment and Grad-CAM pages show the same runs). MMD² is of the aligned view (teacher on
source, student on target, L2-normalised features, the kernel of docs/method.md), p from 200
permutations of whole subjects; the proxy A-distance is 2(1 - 2·error) of a domain classifier with
subject-grouped folds (0: the domains cannot be told apart; 2: perfectly separable).

{align_md}

Grad-CAM of the spoof score on the first frame of {n} target test spoof videos (species
interleaved), each student against the teacher (Pearson correlation of the maps, mean over frames):

{cam_md}

![Grad-CAM on target spoof frames](results-gradcam.png)

*The first rows of those frames: the frame, then each model's spoof Grad-CAM (red = high).*

{chr(10).join("- " + r for r in reading)}
"""
