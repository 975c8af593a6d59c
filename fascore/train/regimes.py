"""Evaluation regimes and threshold rules: which labelled target data a run may use, and how much.

Every run is trained once and evaluated under both regimes, so the two sit side by side without
retraining (the loop keeps one selected checkpoint per regime, see ``fascore.train.loop``):

- ``few-shot`` (the default, the realistic one; called ``zero-shot`` for a run with no target
  shots): the only labelled target data are the k shots the method trains on. Model selection
  follows ``select`` (``last``: a fixed schedule, the default; or ``source_dev``), and the
  decision threshold follows the run's ``threshold_rule`` (default ``shots``, below).
- ``target-dev`` (common in the literature): the labelled target dev split selects the epoch and
  sets the threshold; its videos are counted as extra target labels.

Threshold rules (``THRESHOLD_RULES``; every run reports the target test metrics under each, and
its headline under its own):

- ``shots``: the midpoint of the k shots' class means (``fascore.metrics.midpoint_threshold``),
  at the scoring level. It uses no label beyond the shots already counted for training. The
  shots are training images, so their scores are optimistic (pushed towards 0 and 1); the
  midpoint of the class *means* is far less sensitive to that than an EER point on the shots
  (whose equal-error interval is wide and arbitrary when the shots are separated), and at k = 1
  it is the midpoint of the two shot videos' scores. docs/method.md gives the measured gap to
  the oracle. A run without shots of both classes (the zero-shot teacher) falls back to
  ``source_dev`` and records that it did.
- ``source_dev``: the EER threshold of the held-out source dev split (what cross-data-set papers
  use; on a shifted target it sits above most spoofs, see docs/method.md).
- ``fixed``: 0.5 on P(spoof).
- ``target_dev``: the target dev split's EER threshold; its videos are extra target labels.
- ``oracle``: the target test split's own EER threshold: optimistic, a reference only.

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
THRESHOLD_RULES = ("shots", "source_dev", "fixed", "target_dev", "oracle")
#: Rules whose threshold is an EER point of a labelled split, and that split's (role, split).
EER_SPLITS = {
    "source_dev": ("source", "dev"),
    "target_dev": ("target", "dev"),
    "oracle": ("target", "test"),
}
FIXED_THRESHOLD = 0.5
RULE_TEXT = {
    "shots": "midpoint of the k shots' class means",
    "source_dev": "EER threshold of the source dev split",
    "fixed": "fixed threshold 0.5 on P(spoof)",
    "target_dev": "EER threshold of the target dev split (extra target labels)",
    "oracle": "EER threshold of the target test split itself (optimistic, reference only)",
}


def threshold_rule(regime: str, rule: str, has_shots: bool) -> str:
    """The rule a regime's headline uses: ``target_dev`` for the target-dev regime; else the
    run's ``rule``, with ``shots`` falling back to ``source_dev`` when there are no shots of
    both classes (a zero-shot teacher)."""
    if regime == "target-dev":
        return "target_dev"
    return "source_dev" if rule == "shots" and not has_shots else rule


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


def label_budget(
    frame: pd.DataFrame, regime: str, select: str, uses_target: bool, rule: str | None = None
) -> dict:
    """Labelled target images and videos used per purpose under ``regime`` and threshold
    ``rule`` (default: the regime's EER split, ``THRESHOLD_FROM``).

    ``frame`` holds the run's protocol rows (column ``part``: ``target_train`` = the shots,
    ``target_dev`` ...). Returns ``{"train", "selection", "threshold", "extra"}`` each
    ``{"images", "videos"}``; ``extra`` counts those outside the training shots (the target dev
    split for selection or threshold; the test split itself for the oracle).
    """
    none = {"images": 0, "videos": 0}
    rule = rule or THRESHOLD_FROM[regime]
    train = _count(frame, "target_train") if uses_target else dict(none)
    dev = _count(frame, "target_dev")
    threshold = {
        "shots": train,
        "target_dev": dev,
        "oracle": _count(frame, "target_test"),
    }.get(rule, dict(none))
    selected_on_dev = selection_rule(regime, select) == "target_dev"
    extra = dict(none)
    for part, used in (("target_dev", selected_on_dev or rule == "target_dev"),
                       ("target_test", rule == "oracle")):  # fmt: skip
        if used:
            extra = {u: extra[u] + _count(frame, part)[u] for u in extra}
    return {
        "train": train,
        "selection": dev if selected_on_dev else dict(none),
        "threshold": threshold,
        "extra": extra,
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
