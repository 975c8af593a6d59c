"""The dashboard shell (navigation, shared widgets), the Overview and Train pages, via AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from fascore.config import RunConfig
from fascore.jobs import launchers
from fascore.store.runs import RunStore
from tests.fakes import EXPERIMENT, make_fake_store

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard" / "app.py")
TIMEOUT = 60


def _app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    if page:
        at.switch_page(f"../pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture()
def empty(tmp_path, monkeypatch) -> RunStore:
    monkeypatch.setenv("FASCORE_RUNS_DIR", str(tmp_path / "empty"))
    monkeypatch.delenv("FASCORE_SHARE", raising=False)
    return RunStore()


@pytest.fixture()
def fake(tmp_path, monkeypatch):
    monkeypatch.setenv("FASCORE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("FASCORE_SHARE", raising=False)
    # running=True: one student "runs" under this test's own pid. Never press its Cancel button.
    return make_fake_store(tmp_path / "runs", n_students=3, running=True)


@pytest.fixture()
def started(monkeypatch) -> list[list[str]]:
    """Record what the local launcher would start instead of starting it."""
    calls: list[list[str]] = []

    def start(self, run, argv, env):
        calls.append(argv)
        return {"pid": None}

    monkeypatch.setattr(launchers.LocalLauncher, "start", start)
    return calls


def _texts(at: AppTest, kind: str) -> list[str]:
    return [str(e.value) for e in getattr(at, kind)]


# -- Overview -------------------------------------------------------------------------------------
def test_overview_on_an_empty_store_offers_the_demo(empty):
    at = _app()
    assert _texts(at, "title") == ["Runs"]
    assert any("No runs yet" in t for t in _texts(at, "info"))
    assert [b.label for b in at.button] == ["Build the demo experiment"]


def test_building_the_demo_submits_every_run(empty, started, monkeypatch, tmp_path):
    configs = [RunConfig(data=("/x/manifest.csv",), method="source_only", shots=0)]
    configs.append(configs[0].replace(method="distill", teacher=configs[0].run_id(), shots=5))
    monkeypatch.setattr("fascore.jobs.control.demo_configs", lambda preset: configs)
    at = _app()
    at.button[0].click().run()
    assert not at.exception
    assert [argv[:2] for argv in started] == [["train", "--run"]] * 2
    assert {r.id for r in empty.runs()} == {c.run_id() for c in configs}
    assert "⏳ queued" in at.dataframe[0].value["state"].tolist()


def _run_ids(table) -> set[str]:
    return {link.removeprefix("compare?run=") for link in table["run"]}


def test_overview_lists_runs_by_experiment_with_metrics(fake):
    at = _app()
    assert _texts(at, "subheader") == [f"Experiment · {EXPERIMENT}"]
    table = at.dataframe[0].value
    assert _run_ids(table) == {r.id for r in fake}
    assert table["run"].str.startswith("compare?run=").all()  # each id opens Compare
    done = table[table["run"] == f"compare?run={fake[1].id}"].iloc[0]
    final = fake[1].read_json("final")["target_test"]
    assert done["hter"] == pytest.approx(100 * final["hter"])
    assert {m.label: m.value for m in at.metric}["🔄 running"] == "1"


def test_overview_labels_each_hter_with_its_own_regimes_budget(fake):
    """The few-shot HTER sits beside the few-shot label count, the target-dev HTER beside the
    target-dev one (shots + target dev videos), and the caption says where thresholds come from
    (issue 21, item 2)."""
    at = _app()
    table = at.dataframe[0].value
    run = fake[1]
    row = table[table["run"] == f"compare?run={run.id}"].iloc[0]
    regimes = run.read_json("final")["regimes"]
    for column, hter, regime in (
        ("labels", "hter", "few-shot"),
        ("labels_dev", "hter_dev", "target-dev"),
    ):
        budget = regimes[regime]["label_budget"]
        assert row[column] == budget["train"]["videos"] + budget["extra"]["videos"]
        assert row[hter] == pytest.approx(100 * regimes[regime]["target_test"]["hter"])
    assert row["labels_dev"] > row["labels"]
    caption = " ".join(_texts(at, "caption"))
    assert "threshold from the source dev split" in caption and "target dev split" in caption


def test_overview_shows_how_far_the_running_experiment_is(fake):
    """Runs done and left, the running run's epoch, and an estimate from the time measured so
    far (issue 21, item 12)."""
    at = _app()
    running = next(r for r in fake if r.state() == "running")
    bar = at.get("progress")[0].proto
    assert "0 of 1 runs done, 1 left" in bar.text  # the others finished before it was submitted
    assert "left at the pace so far" in bar.text
    progress = running.status()["progress"]
    assert f"`{running.id}` epoch {progress['epoch']}/{progress['epochs']}" in " ".join(
        _texts(at, "caption")
    )


def test_group_progress_estimates_from_the_pace_so_far():
    from fascore.jobs.watch import current_batch, group_progress, remaining_time

    assert remaining_time(100.0, 0.25) == pytest.approx(300.0) and remaining_time(5.0, 0) is None
    runs = [
        (
            "t",
            "done",
            {"started": 900.0, "finished": 950.0, "progress": {"epochs": 8, "fraction": 1.0}},
        ),
        (
            "a",
            "running",
            {"started": 950.0, "progress": {"epoch": 4, "epochs": 8, "fraction": 0.5}},
        ),
        ("b", "queued", {}),
        (
            "c",
            "failed",
            {"started": 950.0, "progress": {"epoch": 2, "epochs": 8, "fraction": 0.25}},
        ),
    ]
    p = group_progress(runs, now=1000.0)
    assert (p.done, p.left, p.running) == (2, 2, (("a", 4, 8),))
    # 8 + 4 + 0 + 2 epochs of 8 + 8 + 8 + 2 (a failed run brings no more): 14/26 in 100 s
    assert p.fraction == pytest.approx(14 / 26) and p.elapsed_s == pytest.approx(100.0)
    # t took 50 s: b (queued) will too; a is half-way after 50 s: 50 s more at its own pace
    assert p.per_run_s == pytest.approx(50.0) and p.remaining_s == pytest.approx(100.0)
    before = group_progress(runs[1:], now=1000.0)  # nothing finished yet: the epochs' pace
    # 4 + 0 + 2 of 8 + 8 + 2 epochs in 50 s: a third, so twice that again
    assert before.per_run_s is None and before.remaining_s == pytest.approx(100.0)
    assert group_progress([("q", "queued", {})], now=1.0).remaining_s is None
    # the batch still going: active runs and those finished since the first of them was submitted
    old = ("o", "done", {"finished": 100.0})
    new = ("n", "done", {"finished": 960.0})
    batch = current_batch([(*old, 50.0), (*new, 900.0), ("a", "running", {}, 950.0)])
    assert [rid for rid, *_ in batch] == ["n", "a"]
    assert current_batch([(*old, 50.0)]) == []


def test_share_mode_hides_launching(empty, monkeypatch):
    monkeypatch.setenv("FASCORE_SHARE", "1")
    assert not _app().button
    at = _app("train")
    assert not at.expander and not at.button
    assert any("share mode" in t for t in _texts(at, "caption"))


# -- Train ----------------------------------------------------------------------------------------
def _manifest_form(at: AppTest, path: str) -> AppTest:
    """Open the launch form (it loads only when opened) and pick a manifest."""
    assert [b.label for b in at.button if b.label == "Launch"] == []
    at.session_state["train-launch"] = True
    at.run().radio(key="train-kind").set_value("Manifest").run()
    at.multiselect(key="train-manifest").set_value([path]).run()
    assert not at.exception
    return at


def _widget(at: AppTest, kind: str, label: str):
    return next(w for w in getattr(at, kind) if w.label == label)


def test_train_page_launches_a_teacher_and_its_student(fake, started):
    manifest = fake[0].config()["data"][0]
    at = _manifest_form(_app("train"), manifest)
    assert _widget(at, "multiselect", "Source domains").value == ["phone"]  # custom: first domain
    _widget(at, "multiselect", "Source domains").set_value(["studio"])
    _widget(at, "selectbox", "Target domain").set_value("phone")
    _widget(at, "multiselect", "Methods").set_value(["mmd"])
    _widget(at, "number_input", "Epochs").set_value(2)
    _widget(at, "button", "Launch").click().run()
    assert not at.exception and not at.error, _texts(at, "error")
    assert any("Launched 2 run(s)" in t for t in _texts(at, "success"))
    teacher_id, student_id = (argv[2] for argv in started)
    student = RunStore().get(student_id).config()
    assert student["method"] == "mmd" and student["teacher"] == teacher_id
    assert student["epochs"] == 2 and student["experiment"] == "studio-to-phone-k5"
    assert at.query_params["run"] == student_id


def test_train_page_explains_bad_input(fake, started):
    at = _manifest_form(_app("train"), fake[0].config()["data"][0])
    _widget(at, "multiselect", "Source domains").set_value(["phone"])
    _widget(at, "selectbox", "Target domain").set_value("phone")
    _widget(at, "button", "Launch").click().run()
    assert not at.exception and not started
    assert any("target domain must not also be a source" in t for t in _texts(at, "error"))


def test_train_page_explains_a_missing_manifest(fake):
    cfg = fake[2].config()
    fake[2].write_config({**cfg, "data": ["/no/such/manifest.csv"]})  # a known manifest, now gone
    at = _manifest_form(_app("train"), "/no/such/manifest.csv")
    assert any("manifest not found" in t for t in _texts(at, "error"))


def test_train_page_watches_a_run_from_a_deep_link(fake):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["run"] = fake[1].id
    at.run().switch_page("../pages/train.py").run()
    assert not at.exception
    assert at.selectbox(key="train-run").value == fake[1].id
    assert any(fake[1].id in t and "done" in t for t in _texts(at, "markdown"))
    assert {m.label for m in at.metric} >= {"ETA", "images/s", "MMD² (last evaluation)"}
    assert not [b for b in at.button if b.label.startswith(("Cancel", "Resume"))]


def test_train_page_resumes_an_interrupted_run(fake, started):
    run = fake[1]
    run.update_status(state="failed", message="boom")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["run"] = run.id
    at.run().switch_page("../pages/train.py").run()
    _widget(at, "button", "Resume from the last checkpoint").click().run()
    assert not at.exception
    assert started == [["train", "--run", run.id, "--resume"]]
    assert run.status()["state"] == "queued"


def test_running_job_offers_cancel(fake):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["run"] = fake[-1].id  # the "running" fake (this process): do not click
    at.run().switch_page("../pages/train.py").run()
    assert not at.exception
    assert [b.label for b in at.button if b.label.startswith("Cancel")] == ["Cancel this job"]
    assert any("running" in t for t in _texts(at, "markdown"))


# -- shared widgets -------------------------------------------------------------------------------
SAFE = """
import streamlit as st
from dashboard import ui
from fascore.errors import FascoreError

@ui.safe_page
def showing_things():
    kind = st.query_params.get("kind")
    if kind == "user":
        raise FascoreError("no manifest: give one with --data")
    if kind == "bug":
        raise ValueError("secret internals")
    st.write("fine")

showing_things()
"""


@pytest.mark.parametrize(
    ("kind", "message"),
    [("user", "no manifest: give one with --data"),
     ("bug", "Something went wrong while showing showing things — details are in the server log.")],
)  # fmt: skip
def test_safe_page_turns_errors_into_one_line(kind, message):
    at = AppTest.from_string(SAFE, default_timeout=TIMEOUT)
    at.query_params["kind"] = kind
    at.run()
    assert not at.exception and _texts(at, "error") == [message]


PICKER = """
from dashboard import ui
run = ui.run_picker("Run", key="pick")
ui.empty_state("none") if run is None else ui.st.write(f"picked {run.id}")
"""


def test_run_picker_follows_and_writes_the_link(fake):
    at = AppTest.from_string(PICKER, default_timeout=TIMEOUT)
    at.query_params["run"] = "not-a-run"
    at.run()
    newest = fake[-1].id
    assert at.selectbox(key="pick").value == newest and at.query_params["run"] == newest
    at.selectbox(key="pick").set_value(fake[0].id).run()
    assert at.query_params["run"] == fake[0].id
    assert f"picked {fake[0].id}" in _texts(at, "markdown")


# -- on real runs (the lead's tiny demo experiment) -----------------------------------------------
@pytest.mark.slow
def test_overview_and_train_on_real_runs(tiny_store, monkeypatch):
    monkeypatch.setenv("FASCORE_RUNS_DIR", str(tiny_store))
    monkeypatch.delenv("FASCORE_SHARE", raising=False)
    runs = RunStore(tiny_store).runs()
    table = _app().dataframe[0].value
    assert _run_ids(table) == {r.id for r in runs} and set(table["state"]) == {"✅ done"}
    assert table["hter"].between(0, 100).all() and table["auc"].between(0, 100).all()
    student = next(r for r in runs if r.config().get("teacher"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["run"] = student.id
    at.run().switch_page("../pages/train.py").run()
    assert not at.exception and not at.error
    assert any(student.id in t and "done" in t for t in _texts(at, "markdown"))
    assert len(at.get("arrow_line_chart") or at.get("vega_lite_chart")) >= 1
