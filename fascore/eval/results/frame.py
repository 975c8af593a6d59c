"""``results.csv``: one row per finished run, evaluation regime and threshold rule.

A run's ``final.json`` holds, per regime (``fascore.train.regimes``), the target test metrics
under every threshold rule (``thresholds``) and the rule of its headline (``threshold_rule``).
Each row carries its label budget (target images and videos used for training, selection,
threshold, and those outside the shots), so no number travels without the labels it cost.
Runs written before threshold rules were recorded give one row per regime, under the rule that
regime then used (``source_dev`` for few-shot, ``target_dev`` for target-dev).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fascore.store.runs import Run

METRICS = ("hter", "auc", "apcer", "bpcer", "acer")
BUDGET = (
    "train_images",
    "train_videos",
    "selection_images",
    "selection_videos",
    "threshold_images",
    "threshold_videos",
    "extra_images",
    "extra_videos",
)
COLUMNS = ("run", "method", "seed", "episode", "shots", "regime", "threshold_rule", "headline",
           *METRICS, *BUDGET)  # fmt: skip
LEGACY_RULE = {"few-shot": "source_dev", "zero-shot": "source_dev", "target-dev": "target_dev"}


def _budget_cells(budget: dict) -> dict:
    return {
        f"{purpose}_{unit}": (budget.get(purpose) or {}).get(unit, np.nan)
        for purpose in ("train", "selection", "threshold", "extra")
        for unit in ("images", "videos")
    }


def _rule_results(name: str, res: dict) -> dict[str, dict]:
    """{rule: {metrics..., label_budget}} of one regime, headline included."""
    head = res.get("threshold_rule") or LEGACY_RULE.get(name, "source_dev")
    out = dict(res.get("thresholds") or {})
    test = res.get("target_test") or {}
    out[head] = {**out.get(head, {}), **{m: test.get(m, np.nan) for m in METRICS},
                 "label_budget": res.get("label_budget") or {}}  # fmt: skip
    return {rule: {**r, "headline": rule == head} for rule, r in out.items()}


def run_rows(run_id: str, config: dict, final: dict | None) -> list[dict]:
    """One row per regime and threshold rule a finished run reports (none without
    ``final.json``)."""
    rows = []
    for name, res in ((final or {}).get("regimes") or {}).items():
        for rule, r in _rule_results(name, res).items():
            rows.append({
                "run": run_id, "method": config["method"], "seed": config["seed"],
                "episode": int(config.get("episode") or 0),
                "shots": "all" if config.get("shots") is None else int(config["shots"]),
                "regime": name, "threshold_rule": rule, "headline": r["headline"],
                **{m: r.get(m, np.nan) for m in METRICS},
                **_budget_cells(r.get("label_budget") or {}),
            })  # fmt: skip
    return rows


def results_frame(rows: list[dict]) -> pd.DataFrame:
    """The rows as a frame with exactly ``COLUMNS`` (an empty frame when there are none)."""
    return pd.DataFrame(rows, columns=list(COLUMNS))


def collect(runs: list[Run], fields: tuple[str, ...] = ()) -> pd.DataFrame:
    """``results.csv``'s frame from run folders (done runs only), plus config ``fields``
    (e.g. ``w_mmd``) as extra columns."""
    rows = []
    for run in runs:
        if run.state() == "done":
            cfg = run.config()
            extra = {f: cfg.get(f) for f in fields}
            rows += [r | extra for r in run_rows(run.id, cfg, run.read_json("final"))]
    return pd.DataFrame(rows, columns=[*COLUMNS, *fields])


def shots_key(value) -> float:
    """Sort key of a shots value: numbers in order, ``all`` last."""
    return np.inf if value == "all" else float(value)
