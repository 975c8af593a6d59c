"""The results tables and verdicts are computed from run rows, never typed."""

import numpy as np
import pandas as pd

from fascore.jobs.results import ceiling_note, sweep_table, table, verdict


def _rows():
    rows = []
    for seed in (0, 1):
        rows.append({"method": "source_only", "shots": 0, "seed": seed, "hter": 0.30})
        for method, hter in (("finetune", 0.20), ("kd", 0.25), ("distill", 0.10)):
            rows.append({"method": method, "shots": 5, "seed": seed, "hter": hter + 0.01 * seed})
        rows.append({"method": "target_only", "shots": None, "seed": seed, "hter": 0.05})
    df = pd.DataFrame(rows)
    for m in ("auc", "apcer", "bpcer", "acer"):
        df[m] = 0.5
    return df


def test_table_shows_mean_and_std_over_seeds():
    text = table(_rows(), ("finetune", "distill"))
    assert "| finetune | 2 | 20.5 ± 0.7 |" in text
    assert "| distill | 2 | 10.5 ± 0.7 |" in text


def test_verdict_and_headroom_follow_the_numbers():
    df = _rows()
    assert "lowest mean HTER" in verdict(df) and "`finetune`" in verdict(df)
    worse = df.assign(hter=np.where(df["method"] == "distill", 0.4, df["hter"]))
    assert "does **not** beat" in verdict(worse)
    assert "25.0-point gap" in ceiling_note(df)


def test_sweep_table_has_one_column_per_k():
    text = sweep_table(_rows())
    assert "k = all" in text.splitlines()[0]
    assert "| target_only | n/a | n/a | n/a | n/a | 5.0 ± 0.0 |" in text
