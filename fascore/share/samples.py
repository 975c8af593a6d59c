"""Grad-CAM samples: which errors to explain, their titles and images, and the panels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from fascore.data.decode import decode_image, to_rgb
from fascore.errors import FascoreError
from fascore.store.runs import Run


@dataclass
class Panel:
    """One Grad-CAM sample: images by label (``"input"``, ``"teacher"``, ``"student"``) and one
    caption per image (e.g. the model's spoof score)."""

    title: str
    images: dict[str, np.ndarray | Image.Image | bytes]
    captions: dict[str, str] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)  # model -> P(spoof)
    peaks: dict[str, float] = field(default_factory=dict)  # model -> raw map value shown as 1


def explain_images(
    models: dict,
    images: Sequence[Image.Image],
    titles: Sequence[str],
    alpha: float = 0.5,
    scale: str = "shared",
) -> list[Panel]:
    """Grad-CAM of every model on each image (``fascore.eval.analysis.gradcam.explain_samples``):
    one ``Panel`` per image with the input and one overlay per model, captioned with P(spoof).

    Images are resized to the first model's input size, so images of any size batch together.
    """
    from fascore.eval.analysis.gradcam import explain_samples  # start-up cost: torch, captum

    size = getattr(next(iter(models.values())), "input_size", None) or 64
    batch = np.stack(
        [np.asarray(to_rgb(im).resize((size, size), Image.Resampling.BILINEAR)) for im in images]
    ).transpose(0, 3, 1, 2)
    out = explain_samples(models, batch, alpha=alpha, scale=scale)
    panels = []
    for i, title in enumerate(titles):
        imgs = {"input": out["images"][i], **{m: out[m]["overlay"][i] for m in models}}
        caps = {m: f"P(spoof) {out[m]['score'][i]:.2f}" for m in models}
        scores = {m: float(out[m]["score"][i]) for m in models}
        panels.append(
            Panel(title, imgs, caps, scores, {m: float(out[m]["peak"][i]) for m in models})
        )
    return panels


def gradcam_panels(run: Run, rows: pd.DataFrame, alpha: float = 0.5) -> list[Panel]:
    """Grad-CAM panels of the run's models (teacher and, for a student, student) on the images of
    ``rows`` (a scores or errors table, e.g. from ``pick_samples``)."""
    if rows.empty:
        return []
    from fascore.train.checkpoint import load_models  # torch: only when Grad-CAMs are asked for

    images = [open_image(p) for p in rows["path"]]
    titles = [sample_title(r) for r in rows.itertuples()]
    return explain_images(load_models(run), images, titles, alpha)


def open_image(path: str | Path) -> Image.Image:
    """An image from a scores/errors ``path``, or a ``FascoreError`` if it moved or is damaged."""
    try:
        return decode_image(path)
    except (OSError, SyntaxError, ValueError):
        raise FascoreError(
            f"cannot read {path}; the data set moved or changed since the run was scored"
        ) from None


def sample_title(row: object) -> str:
    """``sample 12 · spoof/print · phone · false_accept (student)`` from a scores or errors row
    (an ``itertuples`` row)."""
    kind = getattr(row, "kind", "")
    if kind and getattr(row, "model", ""):
        kind = f"{kind} ({row.model})"
    return " · ".join(
        str(x)
        for x in (
            f"sample {row.sample}",
            f"{row.label}/{row.attack}",
            getattr(row, "domain", ""),
            kind,
        )
        if x
    )


def pick_samples(errors: pd.DataFrame | None, k: int) -> pd.DataFrame:
    """Up to ``k`` error rows for Grad-CAM, disagreements first, then false accepts and false
    rejects, one per path, largest teacher-student score gap first within a kind. A path in
    several error sets keeps its first kind in that order (its title names that kind)."""
    if errors is None or errors.empty or k <= 0:
        return pd.DataFrame()
    order = {"disagree": 0, "false_accept": 1, "false_reject": 2}
    gap = (
        errors.get("student_score", errors["score"]) - errors.get("teacher_score", errors["score"])
    ).abs()
    ranked = errors.assign(_o=errors["kind"].map(order).fillna(3), _g=-gap)
    ranked = ranked.sort_values(["_o", "_g"], kind="stable").drop_duplicates("path")
    return ranked.head(k).drop(columns=["_o", "_g"]).reset_index(drop=True)


def chosen_rows(errors: pd.DataFrame | None, paths: Sequence[str]) -> pd.DataFrame:
    """The error rows of ``paths`` (in that order), one per path, each the row ``pick_samples``
    ranks first: a sample offered as "disagree" keeps that title in the report."""
    ranked = pick_samples(errors, len(errors) if errors is not None else 0)
    if ranked.empty or not paths:
        return pd.DataFrame()
    by_path = ranked.set_index("path", drop=False)
    return by_path.loc[[p for p in paths if p in by_path.index]].reset_index(drop=True)
