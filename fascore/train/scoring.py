"""A run's PAD evaluation: its per-sample scores table and the metrics of one regime.

Every regime's weights score the target test set under every threshold rule of
``fascore.train.regimes`` (``thresholds``: HTER, AUC, APCER, BPCER, the threshold and its label
budget); the regime's headline (``target_test``, with bootstrap CIs) uses its own rule: the
run's ``threshold_rule`` in the few-shot regime, the target dev EER in the target-dev regime.
The source test set is scored at the source dev's EER threshold.
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
SCORED_PARTS = ("source_dev", "source_test", "target_dev", "target_test")
#: Target test metrics recorded for every threshold rule.
RULE_METRICS = ("hter", "auc", "apcer", "bpcer", "acer", "threshold")


def score_frame(data: TrainData, predict, parts: tuple[str, ...] = SCORED_PARTS) -> pd.DataFrame:
    """Scores of the rows of ``parts`` (default: every dev and test part, source and target)
    from ``predict(rows) -> scores``; ``parts=("target_train",)`` scores the shots."""
    rows = np.concatenate([data.rows(p) for p in parts])
    df = data.frame.iloc[rows].assign(sample=rows, path=lambda d: d["abspath"])
    df["score"] = predict(rows) if len(rows) else []
    return df[SCORE_COLUMNS].reset_index(drop=True)


def _part(scores: pd.DataFrame, role: str, split: str) -> metrics.ScoreSet | None:
    sub = scores[(scores["role"] == role) & (scores["split"] == split)]
    return metrics.ScoreSet.from_frame(sub) if sub["y"].nunique() == 2 else None


def rule_threshold(
    rule: str, scores: pd.DataFrame, shots: pd.DataFrame | None, level: str
) -> float:
    """The threshold of ``rule`` (``regimes.THRESHOLD_RULES``) at the scoring ``level``: NaN
    where its split lacks a class (``shots`` is the shots' own score table)."""
    if rule == "fixed":
        return regimes.FIXED_THRESHOLD
    if rule == "shots":
        if shots is None or shots["y"].nunique() < 2:
            return float("nan")
        units = metrics.at_level(metrics.ScoreSet.from_frame(shots), level)
        return metrics.midpoint_threshold(units.y, units.score)
    dev = _part(scores, *regimes.EER_SPLITS[rule])
    if dev is None:
        return float("nan")
    units = metrics.at_level(dev, level)
    return metrics.eer(units.y, units.score)[1]


def evaluate_scores(
    data: TrainData,
    scores: pd.DataFrame,
    cfg: RunConfig,
    regime: str,
    shots: pd.DataFrame | None = None,
) -> dict:
    """PAD metrics of one regime (see ``fascore.train.regimes``) from one set of scores.

    ``shots`` holds the scores of the k shots (``score_frame(..., parts=("target_train",))``)
    for the ``shots`` rule. Returns ``{"target_test", "source_test", "label_budget",
    "threshold_rule", "threshold_text", "threshold_from", "thresholds"}`` (a test entry is
    missing where its dev or test split lacks a class); ``thresholds`` maps every rule to its
    target test metrics and label budget.
    """
    uses_target = METHODS.get(cfg.method).uses_target
    has_shots = uses_target and shots is not None and shots["y"].nunique() == 2
    rule = regimes.threshold_rule(regime, cfg.threshold_rule, has_shots)
    budget = regimes.label_budget(data.frame, regime, cfg.select, uses_target, rule)
    out = {
        "threshold_rule": rule,
        "threshold_text": regimes.RULE_TEXT[rule] + " (at the scoring level), applied to the "
        "target test split; the source test split uses the source dev threshold",
        "threshold_from": rule,
        "label_budget": budget,
        "thresholds": {},
    }
    test = _part(scores, "target", "test")
    for name in regimes.THRESHOLD_RULES:
        t = rule_threshold(name, scores, shots if has_shots else None, cfg.level)
        if test is None or not np.isfinite(t):
            continue
        res = metrics.evaluate(None, test, level=cfg.level, n_boot=0, threshold=t)
        out["thresholds"][name] = {
            **{m: res[m] for m in RULE_METRICS},
            "label_budget": regimes.label_budget(data.frame, regime, cfg.select, uses_target,
                                                 name),
        }  # fmt: skip
        if name == rule:
            out["target_test"] = metrics.evaluate(
                None, test, level=cfg.level, n_boot=cfg.n_boot, seed=cfg.seed, threshold=t
            )
    src_dev, src_test = _part(scores, "source", "dev"), _part(scores, "source", "test")
    if src_dev is not None and src_test is not None:
        out["source_test"] = metrics.evaluate(
            src_dev, src_test, level=cfg.level, n_boot=cfg.n_boot, seed=cfg.seed
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
