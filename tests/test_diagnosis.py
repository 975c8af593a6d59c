"""The results page's diagnosis reads the analysed runs' own views (alignment, Grad-CAM)."""

import numpy as np
from PIL import Image

from fascore.eval import diagnosis
from fascore.eval.results.lab import lab_views
from tests.fakes import make_fake_store


def _store(tmp_path):
    runs = make_fake_store(tmp_path / "store", n_students=3, weights=True)
    return runs[0], {r.config()["method"]: r for r in runs[1:]}


def test_pearson_is_one_on_itself_and_undefined_on_a_flat_map():
    a = np.random.default_rng(0).random(64)
    assert diagnosis._pearson(a, a) == 1.0
    assert diagnosis._pearson(a, -a) == -1.0
    assert np.isnan(diagnosis._pearson(a, np.zeros(64)))


def test_alignment_rows_read_each_students_aligned_view(tmp_path):
    _, students = _store(tmp_path)
    rows = {r["method"]: r for r in diagnosis.alignment_rows(students)}
    assert set(rows) == set(students)
    for method, run in students.items():
        view = run.read_json("alignment")["views"]["aligned"]
        assert rows[method]["mmd2"] == view["mmd2"]
        assert rows[method]["proxy_a_distance"] == view["proxy_a_distance"]
        assert rows[method]["epochs"] == len(run.read_json("alignment")["per_epoch"])


def test_gradcam_agreement_compares_every_student_with_the_teacher(tmp_path):
    teacher, students = _store(tmp_path)
    rows, explained = diagnosis.gradcam_agreement(teacher, students, n=6)
    assert [r["model"] for r in rows] == ["teacher", *students]
    # the teacher agrees with itself wherever its map is not flat (random weights: some are)
    assert rows[0]["frames_with_maps"] == 0 or rows[0]["cam_corr_with_teacher"] == 1.0
    corr = [r["cam_corr_with_teacher"] for r in rows if r["frames_with_maps"]]
    assert all(-1.0 <= c <= 1.0 for c in corr)
    assert all(0.0 <= r["mean_p_spoof"] <= 1.0 for r in rows)
    # the frames are target test spoof frames, species interleaved
    scores = next(iter(students.values())).read_table("scores")
    spoof = scores[(scores["role"] == "target") & (scores["split"] == "test")
                   & (scores["label"] == "spoof")]  # fmt: skip
    assert set(explained["attacks"]) <= set(spoof["attack"])
    assert len(set(explained["attacks"][:2])) == min(2, spoof["attack"].nunique())
    path = diagnosis.gradcam_grid(explained, tmp_path / "grid.png", rows=3)
    with Image.open(path) as im:
        side = explained["images"].shape[1] * 2
        assert im.size[0] == (1 + 1 + len(students)) * (side + 2)


def test_lab_views_writes_its_figure_and_computed_tables(tmp_path):
    teacher, students = _store(tmp_path)
    text = lab_views([teacher, *students.values()], tmp_path / "results-gradcam.png")
    assert (tmp_path / "results-gradcam.png").exists()
    assert "proxy A-distance" in text and "Grad-CAM correlation" in text
    for method in students:
        assert f"| {method} |" in text
    mmd = students[next(iter(students))].read_json("alignment")["views"]["aligned"]["mmd2"]
    assert f"{mmd:.3f}" in text
    assert "not finished" in lab_views([teacher], tmp_path / "x.png")
    assert np.isfinite(len(text))
