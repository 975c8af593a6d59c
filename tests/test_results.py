"""The results home: rows, episode statistics, Holm, detectable differences and tables, all
computed from run rows, never typed."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from fascore.eval.results import frame, stats, tables

HTER = {"finetune": 0.20, "kd": 0.25, "target_only": 0.30, "distill": 0.10}


def _rows(distill: float = 0.10, episodes: int = 3) -> pd.DataFrame:
    rows = []
    for e in range(episodes):
        rows.append({"method": "source_only", "shots": 0, "seed": 0, "episode": 0, "hter": 0.40,
                     "regime": "zero-shot", "threshold_rule": "source_dev",
                     "train_videos": 0, "extra_videos": 0})  # fmt: skip
        for regime, rule, extra in (("few-shot", "shots", 0), ("few-shot", "source_dev", 0),
                                    ("target-dev", "target_dev", 96)):  # fmt: skip
            for method, hter in (HTER | {"distill": distill}).items():
                rows.append({"method": method, "shots": 5, "seed": 0, "episode": e,
                             "regime": regime, "threshold_rule": rule,
                             "hter": hter + 0.01 * e * (method == "distill"),
                             "train_videos": 10, "extra_videos": extra})  # fmt: skip
    df = pd.DataFrame(rows).drop_duplicates(["method", "regime", "threshold_rule", "episode"])
    for m in ("auc", "apcer", "bpcer", "acer"):
        df[m] = 0.5
    for b in frame.BUDGET:
        df[b] = df.get(b, 0)
    return df


def test_run_rows_give_one_row_per_regime_and_threshold_rule():
    final = {"regimes": {"few-shot": {
        "threshold_rule": "shots", "label_budget": {"train": {"videos": 10}},
        "target_test": {"hter": 0.2, "auc": 0.9},
        "thresholds": {"shots": {"hter": 0.2, "auc": 0.9, "label_budget": {}},
                       "source_dev": {"hter": 0.4, "auc": 0.9, "label_budget": {}}},
    }, "target-dev": {"target_test": {"hter": 0.1}, "label_budget": {}}}}  # fmt: skip
    cfg = {"method": "distill", "seed": 1, "shots": 5, "episode": 7}
    df = frame.results_frame(frame.run_rows("r", cfg, final))
    assert list(df.columns) == list(frame.COLUMNS)
    got = df.set_index(["regime", "threshold_rule"])
    assert got.loc[("few-shot", "source_dev"), "hter"] == 0.4
    assert (
        got.loc[("few-shot", "shots"), "headline"]
        and got.loc[("few-shot", "shots"), "train_videos"] == 10
    )
    assert got.loc[("target-dev", "target_dev"), "hter"] == 0.1  # a run without rules: its regime's
    assert set(df["episode"]) == {7}


def test_summary_is_a_t_interval_over_episodes():
    df = _rows()
    s = stats.summarise(df).set_index(["regime", "threshold_rule", "method"])
    row = s.loc[("few-shot", "shots", "distill")]
    v = np.array([0.10, 0.11, 0.12])
    half = sps.t.ppf(0.975, 2) * v.std(ddof=1) / np.sqrt(3)
    assert row["n"] == 3 and row["hter_mean"] == pytest.approx(0.11)
    assert row["hter_lo"] == pytest.approx(0.11 - half) and row["hter_hi"] == pytest.approx(
        0.11 + half
    )


def test_paired_t_and_holm_match_scipy_and_the_definition():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=12), rng.normal(size=12)
    assert stats.paired_t(a - b) == pytest.approx(sps.ttest_rel(a, b).pvalue)
    p = np.array([0.01, 0.04, np.nan, 0.03, 0.2])
    # sorted: 0.01*4=0.04, 0.03*3=0.09, 0.04*2=0.08 -> 0.09 (monotone), 0.2*1 -> 0.2
    assert np.allclose(stats.holm(p), [0.04, 0.09, np.nan, 0.09, 0.2], equal_nan=True)


def test_detectable_difference_shrinks_with_episodes_and_grows_with_the_family():
    five = stats.detectable_difference(0.1, 5, 1)
    thirty = stats.detectable_difference(0.1, 30, 1)
    assert thirty < five / 2
    assert stats.detectable_difference(0.1, 30, 20) > thirty
    # the normal approximation at large n: (z_{0.975} + z_{0.8}) sd / sqrt(n)
    assert stats.detectable_difference(1.0, 10_000, 1) == pytest.approx(2.8016 / 100, rel=1e-3)


def test_pairs_are_per_episode_with_verdicts_and_holm_over_the_family():
    pairs = stats.paired_differences(_rows(), "finetune")
    distill = pairs[(pairs["method"] == "distill") & (pairs["threshold_rule"] == "shots")].iloc[0]
    assert distill["n"] == 3 and distill["diff_mean"] == pytest.approx(-0.09)
    assert distill["verdict"] == "better" and distill["p_holm"] >= distill["p_value"]
    # equal differences in every episode cannot be tested: said so, never "better"
    kd = pairs[(pairs["method"] == "kd") & (pairs["threshold_rule"] == "shots")].iloc[0]
    assert kd["verdict"] == "not tested"
    worse = stats.paired_differences(_rows(distill=0.5), "finetune")
    assert (worse.loc[worse["method"] == "distill", "verdict"] == "worse").all()


def test_tables_use_percent_ci_and_say_n_for_one_episode():
    summary = stats.summarise(_rows())
    table = tables.side_by_side(summary).set_index("method")
    cell = table.loc["distill", "HTER % (few-shot, shots threshold)"]
    assert cell.startswith("11.0 [") and "±" not in cell
    assert table.loc["finetune", "AUC % (few-shot, shots threshold)"].startswith("50.0")
    assert table.loc["distill", "target videos (target-dev)"] == "106 (96 extra)"
    teacher = table.loc["source_only (zero-shot teacher)"]
    assert teacher["HTER % (few-shot, shots threshold)"] == "40.0 (n = 1)"  # one teacher seed
    one = tables.side_by_side(stats.summarise(_rows(episodes=1))).set_index("method")
    assert one.loc["distill", "HTER % (few-shot, shots threshold)"] == "10.0 (n = 1)"
    rules = tables.rules_table(summary).set_index("method")
    assert rules.loc["distill", "source-dev EER"].startswith("11.0")


def test_an_empty_pair_table_keeps_readable_headings():
    empty = tables.paired_table(stats.paired_differences(_rows(), "nobody"))
    assert list(empty.columns) == tables.PAIR_HEADINGS and "diff_mean" not in empty.columns


def test_summary_intervals_stay_within_the_unit_interval():
    df = _rows(episodes=2)
    df.loc[df["method"] == "finetune", "auc"] = [0.99, 0.6] * (
        len(df[df["method"] == "finetune"]) // 2
    )
    s = stats.summarise(df)
    assert (s["auc_hi"].dropna() <= 1.0).all() and (s["hter_lo"].dropna() >= 0.0).all()


def test_the_docs_page_is_written_from_run_folders(tmp_path):
    from types import SimpleNamespace

    from fascore.eval.results.doc import write_doc
    from tests.fakes import make_fake_store

    runs = make_fake_store(tmp_path / "runs", n_students=6)
    out = tmp_path / "docs" / "results.md"
    args = SimpleNamespace(preset="demo", seeds=[0])
    write_doc(out, {"main": runs}, args, seconds=1.0, cpu=1.0)
    text = out.read_text()
    assert "## Verdicts against `finetune`" in text and "not tested" in text  # one episode
    assert "± 0.0" not in text and "(n = 1)" in text
    csv = pd.read_csv(out.with_name("results.csv"))
    assert {"episode", "threshold_rule"} <= set(csv.columns) and set(csv["run"]) == {
        r.id for r in runs
    }
