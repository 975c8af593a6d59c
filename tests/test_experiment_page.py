"""The Experiment page via AppTest: the aggregated table shows the run folders' numbers, both
regimes side by side with their label budgets, the error-bar figure and the paired table."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from fascore.share.figures import experiment_figure
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


def test_experiment_page_shows_each_regimes_numbers_and_budgets(store):
    at = _page()
    assert at.selectbox(key="exp").value == EXPERIMENT
    table = at.dataframe[0].value.set_index("method")
    for run in store:
        cfg, final = run.config(), run.read_json("final")
        zero = cfg["method"] == "source_only"
        row = table.loc[f"{cfg['method']} (zero-shot)" if zero else cfg["method"]]
        for name, res in final["regimes"].items():
            tag = "few-shot" if name == "zero-shot" else name
            hter = res["target_test"]["hter"] * 100
            assert row[f"HTER % ({tag})"] == f"{hter:.1f} ± 0.0"  # one seed: std 0
            budget = res["label_budget"]
            used = budget["train"]["videos"] + budget["extra"]["videos"]
            assert row[f"target videos ({tag})"] == f"{used} ({budget['extra']['videos']} extra)"
    student = table.drop(index=[i for i in table.index if "zero-shot" in i]).iloc[0]
    assert student["target videos (few-shot)"].endswith("(0 extra)")
    assert not student["target videos (target-dev)"].endswith("(0 extra)")
    assert len(at.get("plotly_chart")) == 1
    pairs = at.dataframe[1].value
    baseline = at.selectbox[1].value
    hter = {(r.config()["method"], name): res["target_test"]["hter"]
            for r in store for name, res in r.read_json("final")["regimes"].items()}  # fmt: skip
    assert set(pairs["vs"]) == {baseline} and len(pairs) == 2  # the other student, two regimes
    for row in pairs.itertuples(index=False):
        diff = (hter[row.method, row.regime] - hter[baseline, row.regime]) * 100
        assert row[5] == f"{diff:.1f} ± 0.0" and row[6] == "n/a"  # one seed: no test


def test_experiment_page_without_runs_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("FASCORE_RUNS_DIR", str(tmp_path / "empty"))
    at = _page()
    assert "launch a sweep on the Train page" in " ".join(str(i.value) for i in at.info)


def test_experiment_figure_has_error_bars_per_method_and_regime():
    import pandas as pd

    summary = pd.DataFrame({
        "regime": ["few-shot", "few-shot", "target-dev", "zero-shot"],
        "method": ["distill", "distill", "distill", "source_only"], "shots": [1, 5, 5, 0],
        "n": [3, 3, 3, 3], "hter_mean": [0.3, 0.2, 0.1, 0.4], "hter_std": [0.05, 0.02, 0.01, 0.0],
    })  # fmt: skip
    fig = experiment_figure(summary)
    names = [t.name for t in fig.data]
    assert names == ["distill · few-shot", "distill · target-dev", "source_only · few-shot"]
    assert list(fig.data[0].y) == [30.0, 20.0] and list(fig.data[0].error_y.array) == [5.0, 2.0]


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
    assert any("shots must be whole numbers" in str(e.value) for e in at.error) and len(calls) == 1
