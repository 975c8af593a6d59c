"""The Experiment page via AppTest: the aggregated table shows the run folders' numbers, both
regimes side by side with their label budgets, the error-bar figure and the paired table."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from fascore.eval.results import tables
from fascore.eval.results.figure import experiment_figure
from fascore.store.runs import RunStore
from tests.fakes import EXPERIMENT, make_fake_store

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")


@pytest.fixture()
def store(tmp_path, monkeypatch) -> RunStore:
    root = tmp_path / "runs"
    make_fake_store(root, n_students=2)
    monkeypatch.setenv("FASCORE_RUNS_DIR", str(root))
    monkeypatch.delenv("FASCORE_SHARE", raising=False)
    return RunStore(root)


def _page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("../pages/experiment.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


COLUMN = {
    "few-shot": "few-shot, source-dev threshold",
    "zero-shot": "few-shot, shots threshold",
    "target-dev": "target-dev",
}  # the fake runs predate threshold rules: source dev


def test_experiment_page_shows_each_regimes_numbers_and_budgets(store):
    at = _page()
    assert at.selectbox(key="exp").value == EXPERIMENT
    table = at.dataframe[0].value.set_index("method")
    for run in store:
        cfg, final = run.config(), run.read_json("final")
        zero = cfg["method"] == "source_only"
        row = table.loc[f"{cfg['method']} (zero-shot teacher)" if zero else cfg["method"]]
        for name, res in final["regimes"].items():
            tag = COLUMN[name]
            hter, auc = res["target_test"]["hter"] * 100, res["target_test"]["auc"] * 100
            assert row[f"HTER % ({tag})"] == f"{hter:.1f} (n = 1)"  # one episode: no spread
            assert row[f"AUC % ({tag})"] == f"{auc:.1f} (n = 1)"  # % as on Overview
            budget = res["label_budget"]
            used = budget["train"]["videos"] + budget["extra"]["videos"]
            assert row[f"target videos ({tag})"] == f"{used} ({budget['extra']['videos']} extra)"
    assert not any("±" in str(v) for v in table.to_numpy().ravel())
    student = table.drop(index=[i for i in table.index if "zero-shot" in i]).iloc[0]
    assert student[f"target videos ({COLUMN['few-shot']})"].endswith("(0 extra)")
    assert not student["target videos (target-dev)"].endswith("(0 extra)")
    assert len(at.get("plotly_chart")) == 1
    pairs = at.dataframe[1].value
    baseline = at.selectbox[1].value
    assert "source_only" not in at.selectbox[1].options  # the teacher has no episodes to pair
    assert list(pairs.columns) == tables.PAIR_HEADINGS
    assert set(pairs["vs"]) == {baseline} and len(pairs) == 2  # the other student, two regimes
    assert set(pairs["verdict"]) == {"not tested"}  # one episode: no test, no verdict


def test_a_metric_click_reuses_the_paired_tests(store, monkeypatch):
    """Issue 21 item 11: a radio click recomputes nothing that did not change."""
    import streamlit as st

    from fascore.eval.results import stats

    st.cache_data.clear()  # earlier tests in this process may have filled the page's cache
    calls = []
    real = stats.paired_differences
    monkeypatch.setattr(
        stats, "paired_differences", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    at = _page()
    first = len(calls)
    at.radio(key="exp-metric").set_value("auc").run()
    at.radio(key="exp-metric").set_value("apcer").run()
    assert not at.exception and first == 1 and len(calls) == first


def test_experiment_page_without_runs_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("FASCORE_RUNS_DIR", str(tmp_path / "empty"))
    at = _page()
    assert "launch a sweep on the Train page" in " ".join(str(i.value) for i in at.info)


def test_experiment_figure_k_is_numeric_teacher_is_zero_shot_and_units_are_percent():
    import pandas as pd

    summary = pd.DataFrame({
        "regime": ["few-shot", "few-shot", "target-dev", "zero-shot"],
        "threshold_rule": ["shots", "shots", "target_dev", "source_dev"],
        "method": ["distill", "distill", "distill", "source_only"], "shots": [1, 5, 5, 0],
        "n": [3, 3, 3, 1], "hter_mean": [0.3, 0.2, 0.1, 0.4], "hter_lo": [0.25, 0.18, 0.09, None],
        "hter_hi": [0.35, 0.22, 0.11, None], "auc_mean": [0.8, 0.85, 0.9, 0.7],
        "auc_lo": [0.7, 0.8, 0.85, None], "auc_hi": [0.9, 0.9, 0.95, None],
    })  # fmt: skip
    fig = experiment_figure(summary)
    names = [t.name for t in fig.data]
    assert names == ["distill · few-shot", "distill · target-dev", "source_only · zero-shot"]
    assert list(fig.data[0].x) == [1.0, 5.0] and fig.layout.xaxis.type == "linear"
    assert list(fig.data[0].y) == pytest.approx([30.0, 20.0])
    assert list(fig.data[0].error_y.array) == pytest.approx([5.0, 2.0])
    assert list(fig.data[2].error_y.array) == [0.0]  # one teacher seed: no bar
    assert list(experiment_figure(summary, "auc").data[0].y) == pytest.approx([80.0, 85.0])


def test_train_page_launches_a_sweep_in_the_background(store, monkeypatch):
    import subprocess

    from tests.test_dashboard_shell import _app, _manifest_form, _widget

    calls = []

    class Recorder:
        def __init__(self, argv, **kw):
            calls.append(argv)
            self.pid = 0

        def wait(self):
            return 0

    monkeypatch.setattr(subprocess, "Popen", Recorder)
    manifest = next(iter(store)).config()["data"][0]
    at = _manifest_form(_app("train"), manifest)
    _widget(at, "multiselect", "Source domains").set_value(["studio"])
    _widget(at, "selectbox", "Target domain").set_value("phone")
    _widget(at, "multiselect", "Methods").set_value(["finetune", "distill"])
    _widget(at, "text_input", "Experiment name").set_value("sw1")
    _widget(at, "text_input", "Sweep over shots (optional)").set_value("1 5 all")
    _widget(at, "button", "Launch").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Sweep `sw1` started" in str(s.value) for s in at.success)
    (argv,) = calls
    i = argv.index("sweep")
    assert argv[i + 1 : i + 4] == ["--methods", "finetune", "distill"]
    assert argv[argv.index("--shots") + 1 : argv.index("--out")] == ["1", "5", "all"]
    assert argv[argv.index("--out") + 1] == str(store.root / "sweeps" / "sw1")
    _widget(at, "text_input", "Sweep over shots (optional)").set_value("1 five")
    _widget(at, "button", "Launch").click().run()
    assert any("shots must be a whole number" in str(e.value) for e in at.error) and len(calls) == 1
