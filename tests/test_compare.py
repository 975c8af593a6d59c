"""Comparison logic on hand-made score tables, then on a fake run store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fascore import metrics
from fascore.errors import FascoreError
from fascore.eval import compare
from tests.fakes import make_fake_store

CFG = {"data": ["/data/manifest.csv"], "target_domain": "phone", "level": "video", "shots": 5}


def _frame(scores, labels, attacks=None, role="target", split="test") -> pd.DataFrame:
    """One row per image, one image per video (so frame and video levels agree)."""
    n = len(scores)
    y = np.asarray(labels)
    return pd.DataFrame(
        {
            "sample": np.arange(n),
            "path": [f"/img/{i}.png" for i in range(n)],
            "video": [f"v{i}" for i in range(n)],
            "y": y,
            "label": np.where(y == 1, "spoof", "live"),
            "attack": attacks if attacks is not None else np.where(y == 1, "print", "none"),
            "domain": "phone",
            "role": role,
            "split": split,
            "score": np.asarray(scores, dtype=float),
        }
    )


def test_same_protocol_has_no_differences_even_with_other_spellings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = {**CFG, "data": [str(tmp_path / "m.csv")]}
    b = {**CFG, "data": ["m.csv"], "shots": 0, "method": "source_only"}  # shots may differ
    assert compare.protocol_differences(a, b) == []
    compare.check_protocol(a, b)


def test_a_different_protocol_is_one_error_listing_each_difference():
    other = {**CFG, "target_domain": "kiosk", "level": "frame"}
    assert compare.protocol_differences(CFG, other) == [
        "target_domain: phone vs kiosk",
        "level: video vs frame",
    ]
    with pytest.raises(FascoreError, match=r"teacher and student .*target_domain: phone vs kiosk"):
        compare.check_protocol(CFG, other, ("teacher", "student"))


def test_display_names_prefer_roles_then_methods_then_seeds():
    t, s = {"method": "source_only"}, {"method": "distill", "teacher": "t"}
    assert compare.display_names(t, s, ("t", "s")) == ("teacher", "student")
    assert compare.display_names(s, t, ("s", "t")) == ("student", "teacher")
    assert compare.display_names({**s, "method": "mmd"}, s) == ("mmd", "distill")
    assert compare.display_names({**s, "seed": 1}, {**s, "seed": 2}) == ("distill s1", "distill s2")
    assert compare.display_names(s, s, ("r1", "r2")) == ("r1", "r2")


def test_a_run_without_a_teacher_is_not_called_teacher():
    """target_only has no teacher and is no teacher: the names are the methods (issue 21.1)."""
    alone, student = {"method": "target_only"}, {"method": "distill", "teacher": "t"}
    assert compare.display_names(student, alone, ("s", "o")) == ("distill", "target_only")
    assert compare.display_names(alone, student, ("o", "s")) == ("target_only", "distill")


def test_join_keeps_shared_test_images_of_the_role_with_both_scores():
    a = pd.concat([_frame([0.1, 0.9, 0.4], [0, 1, 1]), _frame([0.5], [0], role="source")])
    b = _frame([0.2, 0.8], [0, 1]).assign(sample=[7, 8])
    joined = compare.join_scores({"teacher": a, "student": b})
    assert joined["path"].tolist() == ["/img/0.png", "/img/1.png"]
    assert joined["score_teacher"].tolist() == [0.1, 0.9]
    assert joined["score_student"].tolist() == [0.2, 0.8]
    assert joined["sample_student"].tolist() == [7, 8]
    with pytest.raises(FascoreError, match="share no scored target test image"):
        compare.join_scores({"teacher": a, "student": b.assign(path="/elsewhere.png")})


def _sets(a_scores, b_scores, labels, attacks=None):
    joined = compare.join_scores(
        {"a": _frame(a_scores, labels, attacks), "b": _frame(b_scores, labels, attacks)}
    )
    return joined, compare.score_sets(joined, ["a", "b"], "video")


LABELS = [0, 0, 0, 0, 1, 1, 1, 1]
ATTACKS = ["none"] * 4 + ["print", "print", "replay", "replay"]
A = [0.1, 0.2, 0.6, 0.3, 0.7, 0.8, 0.4, 0.9]  # at 0.5: one live and one replay wrong
B = [0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9]  # separable


def test_paired_deltas_match_hand_computed_rates():
    _, sets = _sets(A, B, LABELS, ATTACKS)
    table = compare.paired_deltas(sets, {"a": 0.5, "b": 0.5}, n_boot=200).set_index("metric")
    # a: BPCER 1/4, APCER print 0 / replay 1/2 -> max 1/2, pooled 1/4; ACER 3/8; HTER 1/4
    assert table.loc["bpcer", "a"] == 0.25 and table.loc["apcer", "a"] == 0.5
    assert table.loc["acer", "a"] == 0.375 and table.loc["hter", "a"] == 0.25
    assert table.loc["hter", "b"] == 0.0 and table.loc["auc", "b"] == 1.0
    assert table.loc["hter", "delta"] == -0.25
    lo, hi = table.loc["hter", ["delta_lo", "delta_hi"]]
    assert lo <= -0.25 * 0.5 and hi <= 0.0 + 1e-12  # b is never worse on any resample
    assert table.loc["auc", "a"] == pytest.approx(metrics.auc(np.array(LABELS), np.array(A)))


def test_identical_models_have_zero_deltas_with_zero_width():
    _, sets = _sets(A, A, LABELS, ATTACKS)
    table = compare.paired_deltas(sets, {"a": 0.5, "b": 0.5}, n_boot=50)
    assert (table["delta"] == 0).all()
    assert (table["delta_lo"] == 0).all() and (table["delta_hi"] == 0).all()


def test_rates_at_a_threshold_and_the_sweep_ends():
    _, sets = _sets(A, B, LABELS, ATTACKS)
    rates = compare.rates_at(sets, 0.5).set_index("model")
    assert rates.loc["a", "apcer"] == 0.5 and rates.loc["b", "bpcer"] == 0.0
    sweep = compare.error_rate_sweep(sets, n=11)
    ends = sweep[sweep["threshold"].isin([0.0, 1.0])].set_index(["model", "threshold"])
    assert ends.loc[("a", 0.0), "apcer"] == 0 and ends.loc[("a", 0.0), "bpcer"] == 1
    assert ends.loc[("b", 1.0), "apcer"] == 1 and ends.loc[("b", 1.0), "bpcer"] == 0


def test_disagreements_are_the_images_decided_differently_largest_gap_first():
    joined, _ = _sets(A, B, LABELS, ATTACKS)
    dis = compare.disagreements(joined, {"a": 0.5, "b": 0.5})
    # image 2: a 0.6 (spoof) vs b 0.3 (live), live -> b right; image 6: a 0.4 vs b 0.8, spoof
    assert dis["path"].tolist() == ["/img/6.png", "/img/2.png"]
    assert dis["correct"].tolist() == ["b", "b"]
    assert dis["gap"].tolist() == pytest.approx([0.4, 0.3])


def test_compare_runs_reads_a_teacher_and_student_from_their_folders(tmp_path):
    teacher, student, *_ = make_fake_store(tmp_path, n_students=1)
    cmp = compare.compare_runs(teacher, student)
    assert cmp.names == ("teacher", "student") and cmp.level == "video"
    assert cmp.thresholds["student"] == student.read_json("final")["target_test"]["threshold"]
    assert set(cmp.joined["role"]) == {"target"} and set(cmp.joined["split"]) == {"test"}
    deltas = cmp.deltas(n_boot=20)
    assert deltas["teacher_ci"][0] == teacher.read_json("final")["target_test"]["hter_ci"]
    cfg = student.config() | {"target_domain": "kiosk"}
    student.write_config(cfg)
    with pytest.raises(FascoreError, match="target_domain: phone vs kiosk"):
        compare.compare_runs(teacher, student)


def test_an_unfinished_run_is_a_readable_error(tmp_path):
    teacher, student, *_ = make_fake_store(tmp_path, n_students=1)
    student.file("final").unlink()
    with pytest.raises(FascoreError, match="no target test results yet"):
        compare.compare_runs(teacher, student)


def test_vectorised_replicates_equal_each_resample_scored_on_its_own():
    """Every replicate of ``metrics.paired_replicates`` equals ``_point`` on the resampled rows
    (the video-weight vector turned back into repeated rows), for every compared metric."""
    rng = np.random.default_rng(3)
    y = np.repeat(rng.integers(0, 2, 40), 4)
    attack = np.where(y == 1, np.repeat(rng.choice(["print", "replay"], 40), 4), "none")
    video = np.repeat(np.arange(40), 4).astype(str)
    sets = [
        metrics.ScoreSet(y, (y * 0.4 + rng.random(len(y)) * 0.6).round(2), attack, video)
        for _ in range(2)
    ]
    reps = metrics.paired_replicates(sets, [0.5, 0.45], n_boot=20, seed=1)
    weights, inv = metrics._video_weights(sets[0], 20, np.random.default_rng(1))
    for b in range(20):
        rows = np.repeat(np.arange(len(inv)), weights[b][inv].astype(int))
        for s, thr, rep in zip(sets, [0.5, 0.45], reps, strict=True):
            sub = metrics.ScoreSet(s.y[rows], s.score[rows], s.attack[rows], s.video[rows])
            for key, value in compare._point(sub, thr).items():
                assert rep[key][b] == pytest.approx(value, abs=1e-12), key
