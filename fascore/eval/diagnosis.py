"""Why a student does or does not beat its baselines, read from the lab's own views.

For one seed's analysed runs (a teacher and its students, each with ``alignment.json`` written by
the run's analysis), this module gathers what the dashboard's Alignment and Grad-CAM pages show,
as numbers a results page can print:

- ``alignment_rows``: per student, the headline MMD² (teacher on source vs student on target) at
  the first and last tracked epoch, and the end-of-training statistics of that view: MMD² with its
  video-level permutation p-value, and the proxy A-distance (a domain classifier's view: 0 = the
  two sides cannot be told apart, 2 = perfectly separable). Low MMD² with a high proxy A-distance
  means the kernel statistic was driven down while the domains stay separable.
- ``gradcam_agreement``: on the target test split's spoof videos (first frame of each), the
  Pearson correlation between each student's spoof Grad-CAM and the teacher's (does the student
  look where the teacher looks?), and the mean P(spoof) the student gives those frames.
- ``gradcam_grid``: the same maps as one PNG, rows = frames, columns = the frame and each model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from fascore.data.images import load_images
from fascore.eval.analysis.gradcam import explain_samples
from fascore.store.runs import Run
from fascore.train.checkpoint import load_run_model


def alignment_rows(runs: dict[str, Run]) -> list[dict]:
    """One row per student run (``{method: run}``) with an analysed ``alignment.json``."""
    rows = []
    for method, run in runs.items():
        doc = run.read_json("alignment") or {}
        view = (doc.get("views") or {}).get("aligned")
        per_epoch = [r for r in doc.get("per_epoch") or [] if r.get("aligned") is not None]
        if not view:
            continue
        rows.append({
            "method": method,
            "mmd2_first": per_epoch[0]["aligned"] if per_epoch else float("nan"),
            "mmd2_last": per_epoch[-1]["aligned"] if per_epoch else float("nan"),
            "epochs": len(per_epoch),
            "mmd2": view["mmd2"],
            "p_value": view["p_value"],
            "proxy_a_distance": view.get("proxy_a_distance", float("nan")),
            "domain_error": view.get("domain_error", float("nan")),
        })  # fmt: skip
    return rows


def target_spoof_frames(run: Run, n: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """uint8 (n, 3, H, W) first frames of ``n`` target test spoof videos (seeded choice, spread
    over the PAI species) from a run's scores table, and their attack species."""
    scores = run.read_table("scores")
    test = scores[(scores["role"] == "target") & (scores["split"] == "test")]
    test = test[test["label"] == "spoof"].sort_values(["video", "path"])
    first = test.groupby("video", sort=True).head(1)
    rng = np.random.default_rng(seed)
    picked = []
    for _, group in first.groupby("attack", sort=True):
        take = min(len(group), int(np.ceil(n / first["attack"].nunique())))
        picked.append(group.iloc[np.sort(rng.choice(len(group), take, replace=False))])
    # species interleaved (rank within species first), so any first rows show every species
    chosen = pd.concat([g.assign(_rank=np.arange(len(g))) for g in picked])
    chosen = chosen.sort_values(["_rank", "attack"]).head(n).reset_index(drop=True)
    size = int(run.config().get("image_size") or 64)
    decoded = load_images(chosen[["path"]], size, log=lambda _msg: None)
    return decoded.images.numpy(), list(chosen["attack"])


def gradcam_agreement(
    teacher: Run, students: dict[str, Run], n: int = 48, seed: int = 0
) -> tuple[list[dict], dict]:
    """Per student: mean Pearson correlation of its spoof Grad-CAM with the teacher's on ``n``
    target test spoof frames, and its mean P(spoof) there (the teacher's row first). Also returns
    the ``explain_samples`` output, for ``gradcam_grid``."""
    anchor = next(iter(students.values()))
    images, attacks = target_spoof_frames(anchor, n, seed)
    models = {"teacher": load_run_model(teacher)}
    models.update({m: load_run_model(r) for m, r in students.items()})
    out = explain_samples(models, images)  # Grad-CAM enables the gradients it needs
    t = out["teacher"]["cam"].reshape(len(images), -1)
    rows = []
    for name in models:
        c = out[name]["cam"].reshape(len(images), -1)
        corr = np.array([_pearson(a, b) for a, b in zip(c, t, strict=True)])
        defined = corr[np.isfinite(corr)]  # a flat map (no spoof evidence anywhere) has none
        rows.append({
            "model": name, "frames": len(images), "frames_with_maps": int(len(defined)),
            "cam_corr_with_teacher": float(defined.mean()) if len(defined) else float("nan"),
            "mean_p_spoof": float(np.mean(out[name]["score"])),
        })  # fmt: skip
    out["attacks"] = attacks
    return rows, out


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else float("nan")


def gradcam_grid(explained: dict, path: str | Path, rows: int = 6, scale: int = 2) -> Path:
    """A PNG: ``rows`` frames, columns = the frame, then each model's Grad-CAM overlay."""
    names = [k for k in explained if k not in ("images", "attacks")]
    images = explained["images"][:rows]
    side = images.shape[1] * scale
    head, pad = 14, 2
    grid = Image.new("RGB", ((1 + len(names)) * (side + pad), head + len(images) * (side + pad)),
                     "white")  # fmt: skip
    draw = ImageDraw.Draw(grid)
    for j, title in enumerate(["frame", *names]):
        draw.text((j * (side + pad) + 2, 1), title[:14], fill="black")
    for i in range(len(images)):
        tiles = [images[i]] + [explained[m]["overlay"][i] for m in names]
        for j, tile in enumerate(tiles):
            im = Image.fromarray(tile).resize((side, side), Image.NEAREST)
            grid.paste(im, (j * (side + pad), head + i * (side + pad)))
    path = Path(path)
    grid.save(path)
    return path
