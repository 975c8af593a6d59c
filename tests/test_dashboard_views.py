"""The Compare, Alignment, Grad-CAM and Report pages via AppTest: fake, empty and real stores."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.fakes import make_fake_store

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard" / "app.py")
TIMEOUT = 60
PAGES = ("compare", "alignment", "gradcam", "report")


def _page(page: str, **params: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    at.switch_page(f"../pages/{page}.py").run()
    _ok(at)
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not [e for e in at.error if "Something went wrong" in str(e.value)]


def _texts(at: AppTest, kind: str) -> str:
    return " ".join(str(e.value) for e in getattr(at, kind))


def _charts(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


def _image_captions(at: AppTest) -> list[str]:
    return [im.caption for el in at.image for im in el.proto.imgs]


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("views") / "runs"
    make_fake_store(root, n_students=2, weights=True)  # random weights, so Grad-CAM runs
    return root


@pytest.fixture()
def fake(fake_root, monkeypatch):
    monkeypatch.setenv("FASCORE_RUNS_DIR", str(fake_root))
    monkeypatch.delenv("FASCORE_SHARE", raising=False)
    return sorted(p.name for p in fake_root.iterdir() if not p.name.startswith("."))


@pytest.mark.parametrize("page", PAGES)
def test_every_view_on_an_empty_store_says_what_to_do(page, tmp_path, monkeypatch):
    monkeypatch.setenv("FASCORE_RUNS_DIR", str(tmp_path / "empty"))
    at = _page(page)
    assert "Overview page" in _texts(at, "info")


def test_compare_defaults_to_the_students_own_teacher(fake):
    student = next(r for r in fake if r.startswith("distill"))
    teacher = next(r for r in fake if r.startswith("source_only"))
    at = _page("compare", run=student)
    assert [s.value for s in at.selectbox] == [student, teacher]
    assert at.query_params["teacher"] == [teacher] or at.query_params["teacher"] == teacher
    table = at.dataframe[0].value
    assert "HTER (non-ISO)" in table["metric (%)"].tolist()
    assert "delta (second − first), points" in table
    assert _charts(at) == 2  # the first tab: ROC and DET
    assert f"compare?run={student}&teacher={teacher}" in _texts(at, "caption")
    at = _page("compare", run=student, view="Disagreements")
    assert "gradcam?run=" + student in _texts(at, "caption")  # the gallery links to Grad-CAM
    assert "view=Disagreements" in _texts(at, "caption")  # the link reopens this tab
    at = _page("compare", run=student, view="Distributions")
    assert _charts(at) == 1
    at.radio(key="cmp_by").set_value("attack").run()
    _ok(at)


def _without_teacher(run: Path) -> str:
    """Make ``run`` a student without a teacher (as target_only is); returns the old config."""
    import json

    config = (run / "config.json").read_text()
    (run / "config.json").write_text(json.dumps({**json.loads(config), "teacher": None}))
    return config


def test_compare_columns_hold_the_numbers_of_the_run_they_name(fake, fake_root):
    """A run without a teacher picked as "student", a student as the run to compare against: each
    column and each histogram panel is headed by its own run's method (issue 21, item 1)."""
    import json

    alone = next(r for r in fake if r.startswith("mmd"))
    other = next(r for r in fake if r.startswith("distill"))
    config = _without_teacher(fake_root / alone)
    try:
        at = _page("compare", run=alone, teacher=other)
        table = at.dataframe[0].value.set_index("metric (%)")
        for run, method in ((alone, "mmd"), (other, "distill")):
            hter = json.loads((fake_root / run / "final.json").read_text())["target_test"]["hter"]
            assert table.loc["HTER (non-ISO)", method].startswith(f"{100 * hter:.1f} [")
        assert "teacher" not in table and "student" not in table
        at = _page("compare", run=alone, teacher=other, view="Distributions")
        spec = json.loads(at.get("plotly_chart")[0].proto.spec)
        titles = [a["text"] for a in spec["layout"]["annotations"]]
        assert titles == ["distill", "mmd"]  # the run compared against first, as in the table
    finally:
        (fake_root / alone / "config.json").write_text(config)


def test_compare_threshold_slider_moves_apcer_and_bpcer(fake):
    at = _page("compare", run=next(r for r in fake if r.startswith("distill")), view="Threshold")
    assert _charts(at) == 1  # only the open tab is drawn: the APCER/BPCER sweep
    at.slider(key="cmp_t").set_value(0.0).run()
    _ok(at)
    values = {m.label: m.value for m in at.metric}
    assert values["student APCER"] == "0.0%" and values["student BPCER"] == "100.0%"
    at.slider(key="cmp_t").set_value(1.0).run()
    assert {m.label: m.value for m in at.metric}["student APCER"] == "100.0%"


def test_compare_refuses_two_different_protocols(fake, fake_root, tmp_path):
    student = next(r for r in fake if r.startswith("mmd"))
    run = fake_root / student
    config = (run / "config.json").read_text()
    try:
        (run / "config.json").write_text(config.replace('"phone"', '"kiosk"'))
        at = _page("compare", run=student)
        assert "target_domain: phone vs kiosk" in _texts(at, "error")
    finally:
        (run / "config.json").write_text(config)


def test_alignment_shows_the_linked_view_with_its_statistics(fake):
    student = next(r for r in fake if r.startswith("distill"))
    at = _page("alignment", run=student, view="shift")
    assert at.radio(key="view").value == "shift"
    assert at.radio(key="view").options == ["shift", "aligned", "student"]
    assert "MMD²" in at.dataframe[0].value and "p-value" in at.dataframe[0].value
    assert "seed 0" in _texts(at, "caption")  # the sampling is stated
    assert _charts(at) >= 4  # map, MMD per epoch, epoch map, animation
    at.radio(key="al_color").set_value("model").run()
    _ok(at)
    at.radio(key="view").set_value("student").run()
    assert "alignment?run=" + student + "&view=student" in _texts(at, "caption")
    assert _page("alignment", run=student).radio(key="view").value == "aligned"  # the default


def test_alignment_of_a_run_without_a_teacher_shows_its_one_view(fake, fake_root):
    """Without a teacher the three views are one network's map: one view, a caption that speaks
    of no teacher, and only its rows in the MMD table (issue 21, item 4)."""
    run = next(r for r in fake if r.startswith("mmd"))
    config = _without_teacher(fake_root / run)
    try:
        at = _page("alignment", run=run)
        assert not [r for r in at.radio if r.key == "view"]  # nothing to choose between
        captions = _texts(at, "caption")
        assert "has no teacher" in captions and "teacher on source" not in captions
        assert set(at.dataframe[0].value["view"]) == {"student"}
    finally:
        (fake_root / run / "config.json").write_text(config)
    teacher = next(r for r in fake if r.startswith("source_only"))
    at = _page("alignment", run=teacher)
    assert "a teacher run" in _texts(at, "caption")


def test_alignment_p_values_at_the_floor_say_so(fake, fake_root):
    """p = 1/201 is the smallest a 200-permutation test can give: "< 0.005 (200 permutations)"."""
    import json

    from fascore.share.numbers import p_value_text

    assert p_value_text(1 / 201, 200) == "< 0.005 (200 permutations)"
    assert p_value_text(1 / 1001, 1000) == "< 0.001 (1000 permutations)"
    assert p_value_text(0.2, 200) == "0.200" and p_value_text(None, 200) == "—"
    student = next(r for r in fake if r.startswith("distill"))
    alignment = json.loads((fake_root / student / "alignment.json").read_text())
    n = alignment["sampling"]["permutations"]
    at = _page("alignment", run=student)
    shown = at.dataframe[0].value.set_index(["view", "class"])["p-value"]
    for view, stats in alignment["views"].items():
        p = stats["p_value"]
        want = f"< {0.005 if n == 200 else ''}" if p <= 1 / (n + 1) + 1e-12 else f"{p:.3f}"
        assert shown.loc[(view, "all")].startswith(want), (shown.loc[(view, "all")], p)


def test_alignment_clicks_back_to_a_seen_view_rebuild_nothing(fake, monkeypatch):
    """Cache by input: going back to a view and colour already drawn builds no figure (issue 21,
    item 11)."""
    from fascore.share import figures

    built: list[str] = []
    for name in ("umap_figure", "umap_animation"):
        real = getattr(figures, name)
        monkeypatch.setattr(
            figures,
            name,
            lambda *a, _real=real, _n=name, **k: (built.append(_n), _real(*a, **k))[1],
        )
    import streamlit as st

    st.cache_data.clear()  # figures cached by an earlier test would hide a rebuild
    student = next(r for r in fake if r.startswith("mmd"))
    at = _page("alignment", run=student)
    at.radio(key="view").set_value("shift").run()
    _ok(at)
    drawn = len(built)
    for view in ("aligned", "shift", "aligned"):
        at.radio(key="view").set_value(view).run()
        _ok(at)
    assert len(built) == drawn and drawn > 0


def test_gradcam_shows_teacher_and_student_side_by_side(fake):
    student = next(r for r in fake if r.startswith("distill"))
    at = _page("gradcam", run=student)
    captions = _image_captions(at)
    assert len(captions) == 3 and captions[0].startswith("input")
    assert captions[1].startswith("teacher · P(spoof)") and captions[2].startswith("student · P(")
    at.slider(key="gc_alpha").set_value(0.9).run()
    _ok(at)
    at.radio(key="gc_source").set_value("Any scored image").run()
    _ok(at)
    assert len(_image_captions(at)) == 3


def test_gradcam_shows_each_models_threshold_and_decision_on_one_scale(fake, fake_root):
    """Beside each score: the model's own run's threshold and its decision (right or wrong); the
    maps share one absolute scale by default, per-map on request (issue 21, item 5)."""
    import json
    import re

    student = next(r for r in fake if r.startswith("distill"))
    teacher = next(r for r in fake if r.startswith("source_only"))
    at = _page("gradcam", run=student)
    assert at.radio(key="gc_scale").value.startswith("shared")
    finals = {
        name: json.loads((fake_root / run / "final.json").read_text())
        for name, run in (("teacher", teacher), ("student", student))
    }
    for caption in _image_captions(at)[1:]:
        name, score, sign, threshold, says = re.match(
            r"(\w+) · P\(spoof\) ([\d.]+) ([<≥]) ([\d.]+) → (live|spoof)", caption
        ).groups()
        role = "target" if "phone" in at.subheader[0].value else "source"
        assert float(threshold) == pytest.approx(
            finals[name][f"{role}_test"]["threshold"], abs=5e-4
        )
        assert (float(score) >= float(threshold)) == (says == "spoof") == (sign == "≥")
        assert caption.endswith(("(right)", "(wrong: live)", "(wrong: spoof)"))
    assert "One colour scale for both models" in _texts(at, "caption")
    at.radio(key="gc_scale").set_value("each map on its own").run()
    _ok(at)
    assert "Each map scaled to its own maximum" in _texts(at, "caption")


def test_gradcam_titles_a_frame_both_models_miss_with_both(fake, fake_root):
    student = next(r for r in fake if r.startswith("mmd"))
    path = fake_root / student / "errors.parquet"
    saved = path.read_bytes()
    try:
        import pandas as pd

        errors = pd.read_parquet(path)
        disagree = set(errors.loc[errors["kind"] == "disagree", "path"])
        teacher_fa = (errors["kind"] == "false_accept") & (errors["model"] == "teacher")
        row = errors[teacher_fa & ~errors["path"].isin(disagree)].iloc[[0]]
        both = row.assign(model="student")
        pd.concat([both, errors], ignore_index=True).to_parquet(path)  # the student's row first
        at = _page("gradcam", run=student, sample=str(row["sample"].iloc[0]))
        assert at.subheader[0].value.endswith("false_accept (teacher and student)")
    finally:
        path.write_bytes(saved)


def _png(size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (180, 120, 90)).save(buf, format="PNG")
    return buf.getvalue()


def test_gradcam_explains_an_upload_and_rejects_a_bad_one(fake):
    at = _page("gradcam", run=next(r for r in fake if r.startswith("distill")))
    at.radio(key="gc_source").set_value("Upload an image").run()
    at.file_uploader[0].set_value(("face.png", _png(), "image/png")).run()
    _ok(at)
    assert len(_image_captions(at)) == 3
    assert at.subheader[0].value == "upload face.png"  # no internal id in the title
    at.file_uploader[0].set_value(("face.png", b"not an image at all", "image/png")).run()
    _ok(at)
    assert "could not be read as an image" in _texts(at, "error")


def test_report_builds_one_html_file_to_download(fake):
    student = next(r for r in fake if r.startswith("distill"))
    at = _page("report", run=student)
    assert len(at.multiselect(key="rep_runs").value) == 2  # the student and its teacher
    at.multiselect(key="rep_cams").set_value([]).run()
    at.button(key="rep_build").click().run()
    _ok(at)
    assert "Report ready" in _texts(at, "success")
    assert len(at.download_button) == 1
    assert "python -m fascore report" in _texts(at, "caption")


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_every_view_on_a_real_tiny_experiment(page, tiny_store, monkeypatch):
    monkeypatch.setenv("FASCORE_RUNS_DIR", str(tiny_store))
    student = next(p.name for p in Path(tiny_store).iterdir() if p.name.startswith("distill"))
    at = _page(page, run=student)
    assert not _texts(at, "error"), _texts(at, "error")
    assert _charts(at) or _image_captions(at) or at.multiselect


def test_compare_shows_the_numbers_of_the_comparison(fake, fake_root):
    """The table's HTER cells are the runs' HTERs and their paired delta, as fascore computes them."""
    from fascore.eval import compare
    from fascore.store.runs import RunStore

    student = next(r for r in fake if r.startswith("distill"))
    teacher = next(r for r in fake if r.startswith("source_only"))
    at = _page("compare", run=student)
    table = at.dataframe[0].value.set_index("metric (%)")
    store = RunStore(fake_root)
    cmp = compare.compare_runs(store.get(teacher), store.get(student))  # as the page: first, second
    want = cmp.deltas(n_boot=300).set_index("metric").loc["hter"]
    shown = table.loc["HTER (non-ISO)"]
    a, b = cmp.names
    assert shown[a].startswith(f"{100 * want[a]:.1f}") and shown[b].startswith(
        f"{100 * want[b]:.1f}"
    )
    pct = [f"{100 * want[k]:.1f}" for k in ("delta", "delta_lo", "delta_hi")]
    assert shown["delta (second − first), points"] == f"{pct[0]} [{pct[1]}, {pct[2]}]"
    head = _texts(at, "caption")
    assert "teacher: zero-shot regime, EER on the source dev set" in head  # regime and rule
    assert "student: few-shot regime" in head


def test_gradcam_shows_new_maps_once_the_weights_change(fake, fake_root):
    """A resumed run writes new best weights: the page must not serve the old cached panel."""
    import torch

    student = next(r for r in fake if r.startswith("distill"))
    best = fake_root / student / "best.pt"
    saved = best.read_bytes()
    try:
        before = _image_captions(_page("gradcam", run=student))[2]
        state = torch.load(best, weights_only=True)
        state["model"] = {k: v + 0.5 * torch.randn_like(v.float()).to(v.dtype)
                          for k, v in state["model"].items()}  # fmt: skip
        torch.save(state, best)
        after = _image_captions(_page("gradcam", run=student))[2]
        assert after != before  # the student's P(spoof) caption comes from the new weights
    finally:
        best.write_bytes(saved)


def test_the_run_table_reads_only_runs_whose_files_changed(fake, fake_root, monkeypatch):
    from dashboard import ui
    from fascore.store.runs import Run

    reads: list[str] = []
    real = Run.summary

    def counted(self):
        if self.id in fake:  # not the column template RunStore.summary_frame reads
            reads.append(self.id)
        return real(self)

    monkeypatch.setattr(Run, "summary", counted)
    ui._summary.clear()
    first = ui.runs_table()
    assert sorted(reads) == sorted(fake) and len(first) == len(fake)
    reads.clear()
    assert ui.runs_table().equals(first) and reads == []
    final = fake_root / fake[0] / "final.json"
    final.write_text(final.read_text())  # a new mtime: that run, and only it, is read again
    ui.runs_table()
    assert reads == [fake[0]]


def test_a_runs_threshold_rule_reads_in_a_few_words_old_and_new():
    """Captions quote the rule each run recorded (older runs: the source dev EER; newer ones may
    record the shots rule), never a rule the page assumes."""
    from fascore.share.numbers import threshold_text

    old = (
        "EER threshold of the source dev split (at the scoring level), applied to the target "
        "test split; the source test split uses the source dev threshold"
    )
    assert threshold_text({"threshold_rule": old}) == "EER threshold of the source dev split"
    new = "midpoint of the k shots' class means (at the scoring level), applied to the target"
    assert threshold_text({"threshold_rule": new}) == "midpoint of the k shots' class means"
    assert threshold_text({}) == "threshold rule not recorded"
