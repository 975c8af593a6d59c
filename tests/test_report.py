"""The HTML report: one self-contained file that opens offline, with the numbers and figures."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from fascore.cli import main
from fascore.errors import FascoreError
from fascore.share import htmldoc, links, report, report_tables, samples
from fascore.share.figures import fmt_ci
from fascore.share.numbers import p_value_text
from fascore.train.models import create_model
from tests.fakes import make_fake_store

SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.S | re.I)
EXTERNAL = re.compile(r"""\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


@pytest.fixture(scope="module")
def fake_runs(tmp_path_factory):
    return make_fake_store(tmp_path_factory.mktemp("runs"), n_students=2)


@pytest.fixture(scope="module")
def page(fake_runs) -> str:
    panel = samples.Panel("sample 3", {"input": np.zeros((8, 8, 3), np.uint8)}, {"input": "x"})
    return report.build_report(fake_runs, [panel], n_boot=30, dashboard="http://127.0.0.1:8501")


def test_the_report_is_one_offline_html_file(page):
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    markup = SCRIPT.sub("", page)  # plotly.js itself mentions URLs in strings; tags must not
    assert not EXTERNAL.search(markup), EXTERNAL.search(markup)
    scripts = re.findall(r"<script\b[^>]*>", page, re.I)
    assert not any("src=" in tag for tag in scripts)  # every script is inline
    assert page.count("window.PlotlyConfig") == 1  # plotly.js inlined exactly once
    assert "<link" not in markup


def test_the_report_holds_metrics_records_and_figures(page, fake_runs):
    teacher, student = fake_runs[0], fake_runs[1]
    hter = teacher.read_json("final")["target_test"]
    assert fmt_ci(hter["hter"], hter["hter_ci"]) in page.replace("\u00a0", " ")  # no-break
    for text in ("Protocol", "dev EER", "Preprocessing record", "tests/fakes.py", "Shots",
                 "HTER (non-ISO)", "oracle threshold", "minus its teacher", "MMD²", "proxy A-distance",
                 "per epoch", "Sampling:", "Grad-CAM on spoof decisions"):  # fmt: skip
        assert text in page, text
    assert page.count("Plotly.newPlot") >= 8  # ROC, DET, 3 distributions, MMD² per epoch
    assert page.count('<svg class="map"') >= 3  # the UMAP views
    assert 'src="data:image/png;base64,' in page
    assert f"compare?run={student.id}&amp;teacher={teacher.id}" in page


def test_write_report_wants_an_html_path(tmp_path, fake_runs):
    with pytest.raises(FascoreError, match="should end in .html"):
        report.write_report(tmp_path / "r.pdf", fake_runs[:1])
    with pytest.raises(FascoreError, match="no run to report"):
        report.build_report([])


def test_cli_writes_the_report_and_explains_unknown_runs(tmp_path, fake_runs, monkeypatch, capsys):
    monkeypatch.setenv("FASCORE_RUNS_DIR", str(fake_runs[0].path.parent))
    out = tmp_path / "out" / "r.html"
    assert (
        main(["report", fake_runs[0].id, fake_runs[1].id, "--out", str(out), "--n-boot", "20"]) == 0
    )
    assert out.read_text().count("Plotly.newPlot") >= 5
    assert main(["report", "no-such-run", "--out", str(out)]) == 1
    assert "no run 'no-such-run'" in capsys.readouterr().err


def test_deep_links_point_at_one_view_of_one_run():
    assert links.deep_link("http://h:8501/alignment?run=x", "compare", run="a", teacher=None) == (
        "http://h:8501/compare?run=a"
    )
    assert links.deep_link("http://h:8501/", "gradcam", run="a", sample=3) == (
        "http://h:8501/gradcam?run=a&sample=3"
    )
    assert links.deep_link("http://h/base/compare", "report") == "http://h/base/report"
    assert links.deep_link(None, "compare").startswith(links.DASHBOARD_URL)


def test_pick_samples_prefers_disagreements_then_big_gaps():
    errors = pd.DataFrame(
        {
            "path": ["a", "b", "c", "c", "d"],
            "kind": ["false_reject", "disagree", "disagree", "false_accept", "false_accept"],
            "score": [0.9, 0.2, 0.6, 0.6, 0.1],
            "teacher_score": [0.9, 0.6, 0.1, 0.1, 0.3],
            "student_score": [0.9, 0.2, 0.6, 0.6, 0.1],
        }
    )
    assert samples.pick_samples(errors, 3)["path"].tolist() == ["c", "b", "d"]
    assert samples.pick_samples(None, 3).empty and samples.pick_samples(errors, 0).empty


def test_explain_images_gives_input_and_one_overlay_per_model():
    models = {m: create_model("alexnet_mini", input_size=64).eval() for m in ("teacher", "student")}
    from PIL import Image

    images = [Image.new("RGB", (100, 80), (200, 150, 120)), Image.new("RGB", (64, 64))]
    panels = samples.explain_images(models, images, ["one", "two"], alpha=0.4)
    assert [p.title for p in panels] == ["one", "two"]
    assert list(panels[0].images) == ["input", "teacher", "student"]
    assert all(im.shape == (64, 64, 3) and im.dtype == np.uint8 for im in panels[1].images.values())
    assert re.fullmatch(r"P\(spoof\) \d\.\d\d", panels[0].captions["student"])
    assert htmldoc.data_uri(panels[0].images["teacher"]).startswith("data:image/png;base64,")


def test_open_image_explains_a_moved_file(tmp_path):
    with pytest.raises(FascoreError, match="data set moved"):
        samples.open_image(tmp_path / "gone.png")


# -- issue 21, items 7 and 8: what the report says must match the pages and the runs ---------------
MAP = re.compile(r'<svg class="map".*?</svg>', re.S)


def _build(runs, **kwargs) -> str:
    return report.build_report(runs, n_boot=20, **kwargs)


def test_the_report_lists_teachers_before_their_students(fake_runs):
    teacher, students = fake_runs[0], fake_runs[1:]
    page = _build([*students, teacher])
    protocol = page.split("<h2>Protocol</h2>", 1)[1]
    first_row = re.search(r"<tbody>\s*<tr>\s*<td>([^<]*)</td>", protocol).group(1)
    assert first_row == teacher.config()["method"]
    assert [r.id for r in report.teacher_first([*students, teacher])][0] == teacher.id


def test_maps_are_inline_svg_with_every_point_and_equal_maps_drawn_once(fake_runs):
    page = _build(fake_runs)
    drawn, distinct = MAP.findall(page), {}  # SVG, no WebGL: a browser keeps ~16 contexts
    for run in fake_runs:
        for _, part in run.read_table("projection").groupby("view", sort=False):
            distinct.setdefault(report._map_key(part), len(part))
    assert len(drawn) == len(distinct) < sum(len(r.read_table("projection")) for r in fake_runs)
    groups = [re.findall(r'<g class="pts".*?</g>', m) for m in drawn]
    counts = [sum(g.count("<title>") for g in gs) for gs in groups]  # one marker, one tooltip
    assert sorted(counts) == sorted(distinct.values())  # every point of every distinct map
    assert "The same map as" in page  # the students' shared 'shift' view is named, not redrawn


def test_p_values_at_the_permutation_floor_read_as_bounds(page, fake_runs):
    p = fake_runs[1].read_json("alignment")["views"]["shift"]["p_value"]
    assert p == pytest.approx(1 / 201)  # the fake domains differ: no permutation reaches them
    assert "&lt; 0.005 (200 permutations)" in page
    assert "0.004975" not in page and "0.00497" not in page
    assert p_value_text(1 / 1001, 1000) == "< 0.001 (1000 permutations)"  # the one formatter
    assert p_value_text(7 / 201, 200) == "0.035" and p_value_text(None, 200) == "—"


def test_the_shots_section_is_a_table_not_json(page, fake_runs):
    shots = page.split("<h3>Shots", 1)[1].split("<h2>", 1)[0]
    assert "<table" in shots and "&quot;" not in shots and "{" not in shots
    record = fake_runs[1].read_json("shots")
    assert f"{len(record['videos'])} videos" in shots and "k per class" in shots
    assert "none: no target label" in shots  # the zero-shot teacher


def test_both_regimes_with_their_own_label_budgets(page, fake_runs):
    student = fake_runs[1].read_json("final")["regimes"]
    few, dev = student["few-shot"], student["target-dev"]
    assert "Target test, few-shot" in page and "Target test, target-dev regime" in page
    for block in (few, dev):
        test = block["target_test"]
        assert fmt_ci(test["hter"], test["hter_ci"]) in page.replace("\u00a0", " ")
        assert report_tables.budget_cell(block) in page
    extra = dev["label_budget"]["extra"]["videos"]
    train = dev["label_budget"]["train"]["videos"]
    assert extra > 0 and report_tables.budget_cell(dev).startswith(f"{train + extra} videos")


def test_dashboard_links_on_this_machine_are_said_to_be_local(fake_runs):
    local = _build(fake_runs[:2], dashboard="http://127.0.0.1:8501")
    assert "local links" in local and "open only there" in local
    shared = _build(fake_runs[:2], dashboard="https://lab.example.org/fascore")
    assert "Open in the dashboard" in shared and "local links" not in shared
    assert "Open in the dashboard" not in _build(fake_runs[:2])
    for url, is_local in (("http://127.0.0.1:8501", True), ("http://localhost:8501/x", True),
                          ("http://[::1]:8501", True), ("http://0.0.0.0:8501", True),
                          ("https://lab.example.org", False), ("http://10.1.2.3:8501", False)):  # fmt: skip
        assert links.is_local(url) is is_local, url


def test_a_sample_keeps_the_error_set_name_the_picker_showed():
    errors = pd.DataFrame(
        {
            "path": ["c", "c", "d"],
            "sample": [3, 3, 4],
            "label": ["spoof"] * 3,
            "attack": ["print"] * 3,
            "domain": ["phone"] * 3,
            "kind": ["false_accept", "disagree", "false_reject"],
            "model": ["teacher", "", "student"],
            "score": [0.1, 0.6, 0.9],
            "teacher_score": [0.1, 0.1, 0.9],
            "student_score": [0.6, 0.6, 0.9],
        }
    )
    shown = {r.path: samples.sample_title(r) for r in samples.pick_samples(errors, 9).itertuples()}
    assert shown["c"].endswith("disagree")
    rows = samples.chosen_rows(errors, ["d", "c"])  # the order the user picked them in
    assert [samples.sample_title(r) for r in rows.itertuples()] == [shown["d"], shown["c"]]
    assert samples.chosen_rows(errors, []).empty and samples.chosen_rows(None, ["c"]).empty


def test_a_run_without_a_teacher_shows_one_view(tmp_path):
    runs = make_fake_store(tmp_path / "runs", n_students=6)
    alone = next(r for r in runs if r.config()["method"] == "target_only")
    alone.write_config({**alone.config(), "teacher": None})  # as the demo trains it
    page = _build([alone])
    assert "has no teacher" in page and len(MAP.findall(page)) == 1
    assert "own model on source vs on target" in page
    assert "teacher on source" not in page  # no caption speaks of a teacher it does not have


def test_the_report_page_leaves_loopback_links_out_and_says_so(fake_runs, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("FASCORE_RUNS_DIR", str(fake_runs[0].path.parent))
    monkeypatch.delenv("FASCORE_SHARE", raising=False)
    at = AppTest.from_file("../dashboard/app.py", default_timeout=60)
    at.query_params["run"] = fake_runs[1].id
    at.run()
    at.switch_page("../pages/report.py").run()
    assert not at.exception, [e.value for e in at.exception]
    captions = " ".join(str(c.value) for c in at.caption)
    assert "left out of the report" in captions and "loopback" in captions
    assert at.multiselect(key="rep_runs").label == "Runs (the report lists teachers first)"
