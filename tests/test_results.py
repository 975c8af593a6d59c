"""The results tables and verdicts are computed from run rows, never typed."""

import numpy as np
import pandas as pd

from fascore.eval import experiment
from fascore.jobs.results import grid_table, main_table, paired_table, verdict

HTER = {"finetune": 0.20, "kd": 0.25, "target_only": 0.30, "distill": 0.10}


def _rows(distill: float = 0.10) -> pd.DataFrame:
    rows = []
    for seed in (0, 1, 2):
        rows.append({"method": "source_only", "shots": 0, "seed": seed, "hter": 0.40,
                     "regime": "zero-shot", "train_videos": 0, "extra_videos": 0})  # fmt: skip
        for regime, extra in (("few-shot", 0), ("target-dev", 96)):
            for method, hter in (HTER | {"distill": distill}).items():
                rows.append({"method": method, "shots": 5, "seed": seed, "regime": regime,
                             "hter": hter + 0.01 * seed * (method == "distill"),
                             "train_videos": 10, "extra_videos": extra,
                             "w_mmd": 1.0, "w_pair": 1.0})  # fmt: skip
    df = pd.DataFrame(rows)
    for m in ("auc", "apcer", "bpcer", "acer"):
        df[m] = 0.5
    for b in experiment.BUDGET:
        df[b] = df.get(b, 0)
    return df


def test_main_table_puts_both_regimes_and_their_label_budgets_side_by_side():
    summary = experiment.summarise(_rows().drop(columns=["w_mmd", "w_pair"]))
    table = main_table(summary, ("source_only", "finetune", "distill"))
    rows = table.set_index("method")
    assert rows.loc["finetune", "HTER % (few-shot)"] == "20.0 ± 0.0"
    assert rows.loc["distill", "HTER % (target-dev)"] == "11.0 ± 1.0"
    assert rows.loc["distill", "target labels, videos (target-dev)"] == "106 (96 extra)"
    assert rows.loc["source_only (zero-shot)", "target labels, videos (few-shot)"] == "0 (0 extra)"


def test_verdict_follows_the_numbers_per_regime():
    text = verdict(_rows())
    assert "**few-shot**: `distill` 9.0 HTER points below the best baseline (`finetune`)" in text
    worse = verdict(_rows(distill=0.5))
    assert "above the best baseline (`finetune`)" in worse and "significant at 0.05" in worse


def test_paired_table_and_grid_count_seeds():
    pairs = paired_table(_rows(), "finetune").set_index(["regime", "method"])
    assert pairs.loc[("few-shot", "distill"), "ΔHTER points"] == "-9.0 ± 1.0"
    assert pairs.loc[("few-shot", "distill"), "seeds"] == 3
    grid = grid_table(_rows(), "few-shot").set_index("w_mmd \\ w_pair")
    assert grid.loc[1.0, "1.0"] == "11.0 ± 1.0 (n=3)"
    assert grid.loc[0.3, "3.0"].startswith("n/a") and np.isclose(grid.index[0], 0.3)
