"""The Shift debugger page through AppTest (no browser): the view from a link, the grid and the
inspector, a case saved to the run folder, and one message for an empty store or a bad link."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from fascore.eval.shift import selection as sel
from fascore.eval.shift.data import load_shift
from fascore.share.cases import read_cases
from fascore.store.runs import Run
from tests.fakes import make_fake_store

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard" / "app.py")


def _page(**params: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    at.switch_page("../pages/shift.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not [e for e in at.error if "Something went wrong" in str(e.value)]
    return at


def _grid(at: AppTest) -> list[int]:
    keys = [b.key or "" for b in at.button]
    return [int(k.removeprefix("inspect_")) for k in keys if k.startswith("inspect_")]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shift-page") / "runs"
    make_fake_store(root, n_students=1, weights=True)
    return root


@pytest.fixture()
def student(store, monkeypatch) -> Run:
    monkeypatch.setenv("FASCORE_RUNS_DIR", str(store))
    monkeypatch.delenv("FASCORE_SHARE", raising=False)
    return next(Run(p) for p in store.iterdir() if p.name.startswith("distill"))


def test_changing_the_regime_judges_at_its_thresholds(student):
    at = _page(run=student.id, sel="slice:attack=print")
    regimes = at.selectbox(key="sh_regime").options
    assert len(regimes) == 2
    at.selectbox(key="sh_regime").set_value(regimes[1]).run()
    data = load_shift(student, regimes[1])
    assert at.query_params["regime"] == regimes[1]
    assert f"Thresholds: {regimes[1]}" in " ".join(str(c.value) for c in at.caption)
    expected = sel.worst_first(data.samples[data.samples["attack"] == "print"])
    assert _grid(at) == expected["sample"].head(48).tolist()


def test_a_link_with_a_lasso_shows_its_samples_worst_first(student):
    lasso = "lasso:t:-10,-10;10,-10;10,10;-10,10"
    at = _page(run=student.id, sel=lasso, err="student_wrong")
    samples = load_shift(student).samples
    state, _ = sel.from_params({"sel": lasso, "err": "student_wrong"})
    expected = sel.worst_first(samples[sel.selected_mask(samples, state)])["sample"].tolist()
    assert _grid(at) == expected[:48] and expected
    assert at.query_params["sel"] == lasso and at.query_params["err"] == "student_wrong"


def test_the_inspector_and_a_saved_case(student):
    at = _page(run=student.id, sel="slice:attack=print")
    first = _grid(at)[0]
    at.button(key=f"inspect_{first}").click().run()
    headings = [h.value for h in at.subheader]
    assert any(h.startswith(f"Sample {first}:") for h in headings)
    captions = [im.caption for el in at.image for im in el.proto.imgs]
    assert any("teacher Grad-CAM" in c for c in captions)
    assert any("student Grad-CAM" in c for c in captions)
    assert at.query_params["inspect"] == str(first)
    said = " ".join(str(c.value) for c in at.caption)
    for model in ("teacher", "student"):
        assert f"of 5 nearest source training samples under the {model} are live" in said
    before = len(read_cases(student))
    next(b for b in at.button if b.label.startswith("Add this selection")).click().run()
    cases = read_cases(student)
    assert len(cases) == before + 1 and cases[-1]["params"]["sel"] == "slice:attack=print"


def test_a_garbage_link_and_an_empty_store_get_one_message(student, tmp_path, monkeypatch):
    at = _page(run=student.id, sel="box:s:nan", inspect="'; drop")
    warnings = [str(w.value) for w in at.warning]
    assert len(warnings) == 1 and "partly unreadable" in warnings[0]
    at = _page(run=student.id, inspect="987654")
    assert "is not on this run's maps" in " ".join(str(w.value) for w in at.warning)
    assert "inspect" not in at.query_params  # the link drops what it cannot show
    monkeypatch.setenv("FASCORE_RUNS_DIR", str(tmp_path / "empty"))
    at = _page()
    assert "needs a finished run" in " ".join(str(i.value) for i in at.info)


def test_a_huge_selection_gets_one_warning_and_still_its_worst(student, monkeypatch):
    from dashboard import shift_view

    monkeypatch.setattr(shift_view, "MAX_SELECTED", 10)  # the store is small; the rule is the same
    at = _page(run=student.id, sel="box:s:-1e9,1e9,-1e9,1e9")
    warnings = [str(w.value) for w in at.warning]
    assert len(warnings) == 1 and "more than the 10 worth looking" in warnings[0]
    assert len(_grid(at)) == min(48, len(load_shift(student).samples))
    at = _page(run=student.id, sel="box:s:1e6,2e6,1e6,2e6")
    assert "holds no sample" in " ".join(str(i.value) for i in at.info) and not _grid(at)


def test_a_shared_dashboard_saves_no_case(student, monkeypatch):
    monkeypatch.setenv("FASCORE_SHARE", "1")
    at = _page(run=student.id, sel="slice:attack=print")
    assert _grid(at) and not [b for b in at.button if b.label.startswith("Add this selection")]


def _said(at: AppTest) -> str:
    return " ".join(str(c.value) for c in at.caption)


def test_over_training_draws_the_selected_samples_scores_per_epoch(student):
    import json

    from fascore.eval.shift.epochs import MAX_LINES

    at = _page(run=student.id, sel="slice:attack=print")
    data = load_shift(student)
    n = int((data.samples["attack"] == "print").sum())
    assert f"{n:,} of the {n:,} selected samples are in the subset the run tracked" in _said(at)
    charts = [c for c in at.get("plotly_chart") if "P(spoof) per epoch" in c.proto.spec]
    spec = json.loads(charts[0].proto.spec)
    assert len(spec["data"]) == min(n, MAX_LINES)  # one line per drawn sample
    dashed = [s for s in spec["layout"]["shapes"] if s["line"]["dash"] == "dash"]
    roles = set(data.samples.loc[data.samples["attack"] == "print", "role"])
    expected = {round(t, 6) for r, t in data.thresholds["student"].items() if r in roles}
    assert {round(s["y0"], 6) for s in dashed} == expected and expected


def test_a_run_from_before_per_epoch_scores_says_so(student):
    old = student.read_arrays("epoch_embeddings")
    try:
        student.write_arrays(
            "epoch_embeddings", {k: v for k, v in old.items() if not k.startswith("score_")}
        )
        at = _page(run=student.id, sel="slice:attack=print")
        assert "predates per-epoch scores" in _said(at)
        assert not [c for c in at.get("plotly_chart") if "P(spoof) per epoch" in c.proto.spec]
    finally:
        student.write_arrays("epoch_embeddings", old)
