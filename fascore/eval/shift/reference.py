"""The neighbours' reference set: the source domain's training samples, embedded by the run's
models (the run folder stores embeddings of the test splits only).

Built on demand and cached by the caller: the rows of the run's manifests in its source domains
and ``train`` split (at most ``MAX_REFERENCE``, a seeded sample of whole videos beyond that),
decoded through the image cache of ``fascore.data.images`` and embedded with
``fascore.eval.analysis.embed.embed`` (eval mode, no gradients), L2-normalised.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fascore.data.images import load_images
from fascore.data.protocols import load_manifests
from fascore.errors import FascoreError
from fascore.eval.analysis.embed import embed
from fascore.store.runs import Run

MAX_REFERENCE = 5_000
COLUMNS = ["path", "label", "attack", "domain", "subject", "video"]


@dataclass
class Reference:
    """``samples`` (R rows: ``COLUMNS``), ``embeddings`` {model: (R, D) float32, unit rows} and
    ``images`` uint8 (R, H, W, 3) for the thumbnails."""

    samples: pd.DataFrame
    embeddings: dict[str, np.ndarray]
    images: np.ndarray


def source_train(run: Run, most: int = MAX_REFERENCE, seed: int = 0) -> pd.DataFrame:
    """The run's source training rows (``COLUMNS``, ``path`` absolute); whole videos are sampled
    (seeded) down to about ``most`` rows."""
    cfg = run.config()
    frame = load_manifests([Path(p) for p in cfg.get("data") or ()])
    rows = frame[
        frame["domain"].isin(cfg.get("source_domains") or ()) & (frame["split"] == "train")
    ]
    if rows.empty:
        raise FascoreError(f"run {run.id}'s manifest has no source training rows to compare with")
    if len(rows) > most:
        videos = rows["video"].unique()
        keep = np.random.default_rng(seed).permutation(videos)
        per_video = len(rows) / len(videos)
        rows = rows[rows["video"].isin(keep[: max(1, int(most / per_video))])]
    out = rows.assign(path=rows["abspath"])
    if "subject" not in out:
        out = out.assign(subject="")
    return out[COLUMNS].reset_index(drop=True)


def build_reference(run: Run, models: dict, cache_dir: Path | None = None) -> Reference:
    """The source training samples embedded by every model in ``models`` (``FASModel``s)."""
    rows = source_train(run)
    size = int(run.config().get("image_size") or 64)
    decoded = load_images(rows, size, cache_dir, log=lambda _: None)
    bad = np.flatnonzero(~decoded.ok.numpy())
    if len(bad):
        raise FascoreError(
            f"{len(bad)} of {len(rows)} source training images cannot be read (first: "
            f"{rows['path'].iloc[bad[0]]}): the data set moved since the run was trained"
        )
    images = decoded.images.numpy().transpose(0, 2, 3, 1)
    return Reference(rows, embed_images(models, images), images)


def embed_images(models: dict, images: np.ndarray) -> dict[str, np.ndarray]:
    """uint8 images (N, H, W, 3) -> {model: (N, D) float32 unit rows}, rounded through float16
    as the run folder stores embeddings. The inspector embeds its one sample this way, so the
    query and the reference always come from the same weights."""
    x = torch.from_numpy(np.ascontiguousarray(np.asarray(images).transpose(0, 3, 1, 2)))
    out = {}
    for name, model in models.items():
        z = embed(model, x)[0].astype(np.float16).astype(np.float32)
        out[name] = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    return out
