"""A run's PAD evaluation: its per-sample scores table and the metrics of one regime.

The target test set is scored at the EER threshold of the regime's dev split; the source test set
at the source dev's (see ``fascore.train.regimes``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from fascore import metrics
from fascore.config import RunConfig
from fascore.data.images import normalize_bytes_
from fascore.train import regimes
from fascore.train.methods import METHODS
from fascore.train.models import FASModel
from fascore.train.trainset import TrainData

#: Columns of the per-sample scores table (see docs/run-folder.md).
SCORE_COLUMNS = [
    "sample",
    "path",
    "domain",
    "role",
    "split",
    "label",
    "y",
    "attack",
    "subject",
    "video",
    "score",
]


def score_frame(data: TrainData, predict) -> pd.DataFrame:
    """Scores of every dev and test row (source and target) from ``predict(rows) -> scores``."""
    rows = np.concatenate(
        [data.rows(p) for p in ("source_dev", "source_test", "target_dev", "target_test")]
    )
    df = data.frame.iloc[rows].assign(sample=rows, path=lambda d: d["abspath"])
    df["score"] = predict(rows) if len(rows) else []
    return df[SCORE_COLUMNS].reset_index(drop=True)


def evaluate_scores(data: TrainData, scores: pd.DataFrame, cfg: RunConfig, regime: str) -> dict:
    """PAD metrics of one regime (see ``fascore.train.regimes``) from one set of scores.

    The target test set is scored at the EER threshold of the regime's dev split (source dev
    for few-shot, target dev for target-dev); the source test set at the source dev's.
    Returns ``{"target_test", "source_test", "label_budget", "threshold_from"}`` (a test
    entry is missing where its dev or test split lacks a class).
    """

    def part(role: str, split: str) -> metrics.ScoreSet | None:
        sub = scores[(scores["role"] == role) & (scores["split"] == split)]
        return metrics.ScoreSet.from_frame(sub) if sub["y"].nunique() == 2 else None

    uses_target = METHODS.get(cfg.method).uses_target
    source_from = regimes.THRESHOLD_FROM[regime]
    out = {
        "threshold_from": source_from,
        "label_budget": regimes.label_budget(data.frame, regime, cfg.select, uses_target),
    }
    pairs = {
        "target_test": (part(*source_from.split("_")), part("target", "test")),
        "source_test": (part("source", "dev"), part("source", "test")),
    }
    for key, (dev, test) in pairs.items():
        if dev is not None and test is not None:
            out[key] = metrics.evaluate(
                dev, test, level=cfg.level, n_boot=cfg.n_boot, seed=cfg.seed
            )
    return out


@torch.no_grad()
def predict_scores(model: FASModel, data: TrainData, rows: np.ndarray, device) -> np.ndarray:
    """Spoof probabilities for ``rows`` of the decoded images, in batches, eval mode."""
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(rows), 256):
        idx = torch.as_tensor(rows[start : start + 256])
        x = normalize_bytes_(data.images.images.index_select(0, idx).to(device).float())
        out.append(torch.softmax(model(x).float(), dim=1)[:, 1].cpu())
    model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros(0)


def dev_summary(model: FASModel, data: TrainData, part: str, device, level: str) -> dict | None:
    """AUC and EER of a development part at the reported scoring level (selection uses it)."""
    rows = data.rows(part)
    y = data.frame.loc[data.frame.index[rows], "y"].to_numpy()
    if len(rows) == 0 or len(set(y)) < 2:
        return None
    s = predict_scores(model, data, rows, device)
    if not np.isfinite(s).all():
        return {"auc": float("nan"), "eer": float("nan"), "level": level}
    units = metrics.ScoreSet(y, s, video=data.frame["video"].to_numpy()[rows])
    if level == "video":
        units = metrics.video_scores(units)
    out = {"auc": metrics.auc(units.y, units.score), "eer": metrics.eer(units.y, units.score)[0]}
    return {**out, "level": level}
