"""Evaluation regimes: which labelled target data a run may use, and how much it used.

Every run is trained once and evaluated under both regimes, so the two sit side by side without
retraining (the loop keeps one selected checkpoint per regime, see ``fascore.train.loop``):

- ``few-shot`` (the default, the realistic one; called ``zero-shot`` for a run with no target
  shots): the only labelled target data are the k shots the method trains on. Model selection
  follows ``select`` (``last``: a fixed schedule, the default; or ``source_dev``), and the
  decision threshold is the EER threshold of the **source** dev split. The shots are not used for
  the threshold: they are training data, so their scores are optimistic and, with k = 1..5, the
  equal-error interval on them is wide and the threshold within it arbitrary. The source dev split
  is held out and is what cross-data-set papers threshold on.
- ``target-dev`` (common in the literature): the labelled target dev split selects the epoch and
  sets the threshold; its videos are counted as extra target labels.

``label_budget`` counts the labelled target images and videos a regime used for training, for
model selection and for the threshold, and how many of those are extra (outside the training
shots). The run's ``regime`` field only says which of the two is its headline (the weights
analysed, ``final.json``'s ``target_test``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

REGIMES = ("few-shot", "target-dev")
#: How each regime selects the epoch ("config" = the run's ``select`` field) and thresholds.
SELECTION = {"few-shot": "config", "target-dev": "target_dev"}
THRESHOLD_FROM = {"few-shot": "source_dev", "target-dev": "target_dev"}


def selection_rule(regime: str, select: str) -> str:
    """The selection rule a regime uses: ``last``, ``source_dev`` or ``target_dev``."""
    rule = SELECTION[regime]
    return select if rule == "config" else rule


def display_name(regime: str, shots: int | None, uses_target: bool) -> str:
    """``few-shot`` reads ``zero-shot`` for a run that trains on no target label."""
    if regime == "few-shot" and (shots == 0 or not uses_target):
        return "zero-shot"
    return regime


def _count(frame: pd.DataFrame, part: str) -> dict[str, int]:
    rows = frame[frame["part"] == part]
    return {"images": len(rows), "videos": int(rows["video"].nunique())}


def label_budget(frame: pd.DataFrame, regime: str, select: str, uses_target: bool) -> dict:
    """Labelled target images and videos used per purpose under ``regime``.

    ``frame`` holds the run's protocol rows (column ``part``: ``target_train`` = the shots,
    ``target_dev`` ...). Returns ``{"train", "selection", "threshold", "extra"}`` each
    ``{"images", "videos"}``; ``extra`` counts those outside the training shots.
    """
    none = {"images": 0, "videos": 0}
    train = _count(frame, "target_train") if uses_target else dict(none)
    dev = _count(frame, "target_dev")
    uses_dev = (
        selection_rule(regime, select) == "target_dev" or THRESHOLD_FROM[regime] == "target_dev"
    )
    return {
        "train": train,
        "selection": dev if selection_rule(regime, select) == "target_dev" else dict(none),
        "threshold": dev if THRESHOLD_FROM[regime] == "target_dev" else dict(none),
        "extra": dev if uses_dev else dict(none),
    }


def selection_value(record: dict, rule: str) -> float:
    """Lower is better: the dev EER of the rule's split, or ``-epoch`` for ``last``.

    A missing or non-finite EER (no dev split, one class, diverged scores) never wins.
    """
    if rule == "last":
        return -float(record["epoch"])
    dev = record.get(rule) or {}
    value = dev.get("eer")
    return float(value) if value is not None and np.isfinite(value) else float("inf")
