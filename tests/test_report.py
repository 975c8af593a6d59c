"""The HTML report: one self-contained file that opens offline, with the numbers and figures."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from fascore.cli import main
from fascore.errors import FascoreError
from fascore.share import htmldoc, links, report, samples
from fascore.share.figures import fmt_ci
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
    assert fmt_ci(hter["hter"], hter["hter_ci"]) in page
    for text in ("Protocol", "dev EER", "Preprocessing record", "tests/fakes.py", "Shots",
                 "HTER (non-ISO)", "oracle threshold", "minus its teacher", "MMD²", "proxy A-distance",
                 "per epoch", "Sampling:", "Grad-CAM on spoof decisions"):  # fmt: skip
        assert text in page, text
    assert page.count("Plotly.newPlot") >= 10  # ROC, DET, 3 distributions, UMAP views, epochs
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
