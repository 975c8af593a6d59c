"""The Train page tells the truth about a job (issue 21, item 6), via AppTest: a finished job
shows no live speed, the teacher picker starts on a finished teacher that fits, and the two
MMD² figures say which samples and which weights they use."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from fascore.config import RunConfig
from fascore.store.runs import RunStore
from tests.fakes import make_fake_store
from tests.test_dashboard_shell import APP, TIMEOUT, _app, _manifest_form, _texts, _widget


@pytest.fixture()
def fake(tmp_path, monkeypatch):
    monkeypatch.setenv("FASCORE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("FASCORE_SHARE", raising=False)
    return make_fake_store(tmp_path / "runs", n_students=2, running=True)


def _watch(run_id: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["run"] = run_id
    at.run().switch_page("../pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _metric(at: AppTest, label: str):
    return next(m for m in at.metric if m.label == label)


def test_a_finished_job_shows_no_live_speed_and_a_running_one_does(fake):
    done, running = fake[1], fake[-1]
    assert done.status()["progress"]["images_per_s"] > 0  # the last rate it reported
    assert _metric(_watch(done.id), "images/s").value == "–"
    assert _metric(_watch(running.id), "images/s").value != "–"


def test_both_mmd_figures_say_what_they_measure(fake):
    at = _watch(fake[1].id)
    mmd = _metric(at, "MMD² (last evaluation)")
    assert "test images" in mmd.proto.help and "training step" in mmd.proto.help
    caption = next(t for t in _texts(at, "caption") if t.startswith("Loss terms"))
    assert "unweighted" in caption and "not the evaluation MMD²" in caption
    weights = fake[1].config()
    if "mmd" in fake[1].status()["progress"]["loss"]:
        assert f"mmd × {weights['w_mmd']:g}" in caption


def test_the_teacher_picker_starts_on_a_finished_teacher_that_fits(fake):
    manifest = fake[0].config()["data"][0]
    at = _manifest_form(_app("train"), manifest)
    sources = _widget(at, "multiselect", "Source domains").value
    assert sources == ["phone"]  # the custom protocol's default: the data's first domain
    # no finished teacher on phone yet: the picker offers a new one first
    assert _widget(at, "selectbox", "Teacher (for student methods)").value.startswith("(train")
    base = RunConfig.from_dict({**fake[0].config(), "source_domains": ["phone"],
                                "target_domain": "studio"})  # fmt: skip
    teacher = RunStore().run(base.run_id())
    teacher.write_config(base.to_dict())
    teacher.update_status(state="done", message="done")
    teacher.mark_done()
    at.run()
    assert _widget(at, "selectbox", "Teacher (for student methods)").value == teacher.id
