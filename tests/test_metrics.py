"""PAD metrics against scikit-learn and hand-made examples."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from fascore.errors import FascoreError
from fascore.metrics import (
    ScoreSet,
    _boot_auc,
    _video_weights,
    auc,
    bootstrap_ci,
    bpcer_at_apcer,
    det_points,
    eer,
    error_rates,
    evaluate,
    roc_points,
    video_scores,
)


def _videos(rng, n_videos, frames=5, shift=1.5, spread=1.0, offset=0.0) -> ScoreSet:
    """Synthetic scores: one label and species per video, spoof scores shifted up."""
    y_v = np.r_[np.zeros(n_videos // 2, int), np.ones(n_videos - n_videos // 2, int)]
    species_v = np.where(y_v == 1, rng.choice(["print", "replay"], n_videos), "none")
    y, att = np.repeat(y_v, frames), np.repeat(species_v, frames)
    vid = np.repeat([f"v{i}" for i in range(n_videos)], frames)
    score = rng.normal(y * shift + offset, spread)
    return ScoreSet(y, score, att, vid)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_and_auc_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.normal(y, 1.0), 1)  # rounding makes ties
    fpr, tpr, thr = roc_points(y, s)
    ref_fpr, ref_tpr, ref_thr = roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)
    np.testing.assert_allclose(thr[1:], ref_thr[1:])
    assert math.isclose(auc(y, s), roc_auc_score(y, s), rel_tol=1e-12)


def test_eer_is_zero_for_separable_scores_and_the_threshold_separates():
    y = np.array([0, 0, 0, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    rate, thr = eer(y, s)
    assert rate == 0.0 and 0.3 < thr <= 0.7
    assert auc(y, s) == 1.0


def test_eer_is_one_half_for_identical_distributions():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(4000, int), np.ones(4000, int)]
    rate, _ = eer(y, rng.normal(size=8000))
    assert abs(rate - 0.5) < 0.03
    assert eer(np.array([0, 1]), np.array([0.4, 0.4]))[0] == pytest.approx(0.5)


def test_eer_interpolates_at_the_crossing():
    # live 0.1 0.5 0.6, spoof 0.55 0.9; (APCER - BPCER) is 1/6 at t = 0.6 and -1/3 at t = 0.55,
    # so the crossing is a third of the way: EER = 1/3 + 0 = 1/2 - 1/6. The threshold: flagging
    # {0.9, 0.6} has the smallest |APCER - BPCER| (1/6); thresholds in (0.55, 0.6] do that.
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.5, 0.6, 0.55, 0.9])
    rate, thr = eer(y, s)
    assert rate == pytest.approx(1 / 3)
    assert thr == pytest.approx(0.575)


def test_eer_threshold_is_the_midpoint_of_the_equal_error_interval():
    # separable: every threshold in (0.3, 0.7] gives 0 errors; the midpoint is 0.5
    y, s = np.array([0, 0, 0, 1, 1, 1]), np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    assert eer(y, s) == (0.0, pytest.approx(0.5))
    # APCER = BPCER = 1/2 only when {0.9, 0.6} are flagged: thresholds in (0.4, 0.6]; the old
    # rule took the top edge 0.6, where a test live score of 0.6 counts as an attack
    y, s = np.array([0, 0, 1, 1]), np.array([0.2, 0.6, 0.4, 0.9])
    rate, thr = eer(y, s)
    assert rate == pytest.approx(0.5) and thr == pytest.approx(0.5)
    rates = error_rates(ScoreSet(y, s), thr)
    assert rates["apcer"] == rates["bpcer"] == 0.5


def test_eer_threshold_on_ties_and_tiny_dev_sets():
    # one live and one spoof with the same score: flag both (BPCER 1, APCER 0) or neither;
    # they tie at |APCER - BPCER| = 1 and the rule takes the one that flags more
    y, s = np.array([0, 1]), np.array([0.4, 0.4])
    rate, thr = eer(y, s)
    assert rate == pytest.approx(0.5) and thr <= 0.4
    # one of each, separable: halfway between them
    assert eer(np.array([0, 1]), np.array([0.2, 0.8]))[1] == pytest.approx(0.5)
    # ties across classes at the crossing: live 0.3 0.5 0.5, spoof 0.5 0.5 0.9
    y, s = np.array([0, 0, 0, 1, 1, 1]), np.array([0.3, 0.5, 0.5, 0.5, 0.5, 0.9])
    rate, thr = eer(y, s)
    r = error_rates(ScoreSet(y, s), thr)
    # flagging {0.9} gives APCER 2/3, BPCER 0; adding the tied 0.5s gives APCER 0, BPCER 2/3:
    # equal gaps, so the threshold flags the ties, halfway between 0.5 and 0.3
    assert (
        thr == pytest.approx(0.4) and r["apcer_pooled"] == 0 and r["bpcer"] == pytest.approx(2 / 3)
    )
    assert rate == pytest.approx(1 / 3)
    # the threshold always reproduces the smallest |APCER - BPCER| the dev scores allow
    rng = np.random.default_rng(1)
    for n in (2, 3, 5, 8):
        for _ in range(50):
            y = rng.permutation(np.r_[0, 1, rng.integers(0, 2, n - 2)])
            s = rng.integers(0, 4, n) / 4.0
            _, thr = eer(y, s)
            r = error_rates(ScoreSet(y, s), thr)
            gaps = [abs(error_rates(ScoreSet(y, s), t)["apcer_pooled"]
                        - error_rates(ScoreSet(y, s), t)["bpcer"])
                    for t in (*np.unique(s), 2.0)]  # fmt: skip
            assert abs(r["apcer_pooled"] - r["bpcer"]) == pytest.approx(min(gaps))


def test_eer_and_auc_are_nan_with_one_class():
    assert all(math.isnan(v) for v in eer(np.zeros(5), np.arange(5.0)))
    assert math.isnan(auc(np.ones(5), np.arange(5.0)))
    assert math.isnan(bpcer_at_apcer(np.ones(5), np.arange(5.0)))


def test_det_points_and_probit_scale():
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.6, 0.4, 0.9])
    apcer, bpcer = det_points(y, s)
    np.testing.assert_allclose(apcer, [1, 0.5, 0.5, 0, 0])
    np.testing.assert_allclose(bpcer, [0, 0, 0.5, 0.5, 1])
    pa, pb = det_points(y, s, probit=True)
    assert np.isfinite(pa).all() and np.isfinite(pb).all() and pa[2] == pytest.approx(0.0)


def _hand_set() -> ScoreSet:
    # live: 0.1 0.2 0.6 0.9 | print: 0.7 0.8 0.9 0.3 | replay: 0.2 0.9
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.6, 0.9, 0.7, 0.8, 0.9, 0.3, 0.2, 0.9])
    att = np.array(["none"] * 4 + ["print"] * 4 + ["replay"] * 2)
    return ScoreSet(y, s, att)


def test_apcer_is_the_max_over_species_and_hter_pools_attacks():
    r = error_rates(_hand_set(), threshold=0.5)
    # print: 1 of 4 below 0.5; replay: 1 of 2; live at or above 0.5: 2 of 4
    assert r["apcer_per_species"] == {"print": 0.25, "replay": 0.5}
    assert r["apcer"] == 0.5 and r["apcer_pooled"] == pytest.approx(2 / 6)
    assert r["bpcer"] == 0.5
    assert r["acer"] == pytest.approx((0.5 + 0.5) / 2)
    assert r["hter"] == pytest.approx((2 / 6 + 0.5) / 2)


def test_decision_is_spoof_at_exactly_the_threshold():
    r = error_rates(_hand_set(), threshold=0.6)
    assert r["bpcer"] == 0.5  # live 0.6 and 0.9 are flagged
    assert r["apcer_per_species"]["print"] == 0.25  # 0.7, 0.8, 0.9 flagged; 0.3 passes


def test_bpcer_at_apcer_uses_max_species_apcer():
    ss = _hand_set()
    # max-species APCER over the distinct scores 0.1 0.2 0.3 0.6 0.7 0.8 0.9 is
    # 0 0 1/2 1/2 1/2 1/2 3/4 (replay 0.2 passes from t = 0.3 on): APCER <= 1/2 up to t = 0.8,
    # where only the live 0.9 is flagged
    assert bpcer_at_apcer(ss.y, ss.score, ss.attack, target=0.5) == 0.25
    # APCER <= 0 needs every attack flagged: t = 0.2, all live but 0.1 flagged
    assert bpcer_at_apcer(ss.y, ss.score, ss.attack, target=0.0) == 0.75
    # at 0.34 the species differ from pooling: max-species allows t <= 0.2, pooled (2/6 at 0.8)
    assert bpcer_at_apcer(ss.y, ss.score, ss.attack, target=0.34) == 0.75
    assert bpcer_at_apcer(ss.y, ss.score, None, target=0.34) == 0.25


def test_video_scores_average_frames_by_hand():
    df = pd.DataFrame(
        {
            "video": ["a", "a", "b", "b", "b", "c"],
            "y": [1, 1, 0, 0, 0, 1],
            "attack": ["print", "print", "none", "none", "none", "replay"],
            "score": [0.2, 0.6, 0.1, 0.2, 0.6, 0.9],
        }
    )
    v = video_scores(df)
    assert list(v.video) == ["a", "b", "c"] and list(v.y) == [1, 0, 1]
    np.testing.assert_allclose(v.score, [0.4, 0.3, 0.9])
    assert list(v.attack) == ["print", "none", "replay"]
    df.loc[1, "y"] = 0
    with pytest.raises(FascoreError, match="mix labels"):
        video_scores(df)


def test_score_set_from_frame_accepts_labels_and_rejects_bad_input():
    df = pd.DataFrame({"label": ["live", "spoof"], "score": [0.1, 0.9]})
    ss = ScoreSet.from_frame(df)
    assert list(ss.y) == [0, 1] and list(ss.attack) == ["none", "attack"]
    with pytest.raises(FascoreError, match="columns score and y"):
        ScoreSet.from_frame(pd.DataFrame({"score": [0.1]}))
    with pytest.raises(FascoreError, match="NaN"):
        ScoreSet([0, 1], [0.1, float("nan")])
    with pytest.raises(FascoreError, match="same length"):
        ScoreSet([0, 1], [0.1])


def test_dev_threshold_differs_from_the_oracle_under_a_shift():
    rng = np.random.default_rng(3)
    dev = _videos(rng, 200)
    test = _videos(rng, 200, offset=1.0)  # the test camera scores everything higher
    r = evaluate(dev, test, n_boot=0)
    assert r["threshold_oracle"] > r["threshold"] + 0.5
    assert r["hter"] > r["hter_oracle"] + 0.05
    assert r["bpcer"] > r["apcer"]  # live presentations now cross the dev threshold
    assert r["auc"] == pytest.approx(auc(test.y, test.score))


def test_evaluate_video_level_and_its_fields_are_json_plain():
    rng = np.random.default_rng(4)
    dev, test = _videos(rng, 40, frames=8), _videos(rng, 60, frames=8)
    r = evaluate(dev, test, level="video", n_boot=200)
    assert r["level"] == "video" and r["n_videos"] == 60
    assert r["n_live"] + r["n_attack"] == 60
    frame = evaluate(dev, test, level="frame", n_boot=0)
    assert frame["n_live"] + frame["n_attack"] == 480
    assert frame["threshold"] != r["threshold"]
    assert json.loads(json.dumps(r)) == r
    assert set(r["apcer_per_species"]) == {"print", "replay"}
    assert r["apcer"] == max(r["apcer_per_species"].values())
    with pytest.raises(FascoreError, match="scoring level"):
        evaluate(dev, test, level="clip")


def test_bootstrap_ci_contains_the_estimate_and_narrows_with_more_videos():
    rng = np.random.default_rng(5)
    widths = []
    for n in (40, 400):
        dev, test = _videos(rng, n, frames=3), _videos(rng, n, frames=3)
        r = evaluate(dev, test, n_boot=400, seed=1)
        for m in ("hter", "auc", "apcer", "bpcer", "acer"):
            lo, hi = r[f"{m}_ci"]
            assert lo <= r[m] <= hi, m
        widths.append(r["hter_ci"][1] - r["hter_ci"][0])
    assert widths[1] < widths[0] / 2  # ~ 1/sqrt(10)


def test_bootstrap_auc_matches_a_direct_resample():
    # replicate b's weighted AUC equals the AUC of the frames of the drawn videos, repeated
    rng = np.random.default_rng(6)
    ss = _videos(rng, 30, frames=4)
    ss = ScoreSet(ss.y, np.round(ss.score, 1), ss.attack, ss.video)  # ties count one half
    ci = bootstrap_ci(ss, threshold=0.75, n_boot=1, seed=9)
    w, inv = _video_weights(ss, 1, np.random.default_rng(9))
    rows = np.repeat(np.arange(len(ss)), w[0][inv].astype(int))
    assert _boot_auc(ss, w, inv)[0] == pytest.approx(auc(ss.y[rows], ss.score[rows]))
    assert ci["auc_ci"][0] == pytest.approx(auc(ss.y[rows], ss.score[rows]))
    direct = error_rates(ScoreSet(ss.y[rows], ss.score[rows], ss.attack[rows]), 0.75)
    for m in ("hter", "apcer", "bpcer", "acer"):
        assert ci[f"{m}_ci"][0] == pytest.approx(direct[m]), m
    # every stratum keeps its number of videos: 15 live videos in every replicate
    assert w[:, (ss.y[np.unique(inv, return_index=True)[1]] == 0)].sum() == 15


def test_evaluate_is_deterministic_under_a_seed():
    rng = np.random.default_rng(7)
    dev, test = _videos(rng, 50), _videos(rng, 50)
    a, b = evaluate(dev, test, seed=3), evaluate(dev, test, seed=3)
    c = evaluate(dev, test, seed=4)
    assert a == b
    assert a["hter_ci"] != c["hter_ci"] or a["auc_ci"] != c["auc_ci"]


def test_degenerate_sets_give_nan_and_a_note_not_a_crash():
    rng = np.random.default_rng(8)
    dev = _videos(rng, 20)
    live_only = ScoreSet(np.zeros(6, int), rng.normal(size=6))
    r = evaluate(dev, live_only, n_boot=50)
    assert math.isnan(r["apcer"]) and math.isnan(r["hter"]) and math.isnan(r["auc"])
    assert math.isfinite(r["bpcer"]) and math.isnan(r["hter_ci"][0])
    assert any("no attack" in n for n in r["notes"])
    r = evaluate(live_only, dev, n_boot=50)
    assert math.isnan(r["threshold"]) and math.isnan(r["hter"]) and math.isfinite(r["auc"])
    assert any("dev set has no attack" in n for n in r["notes"])


def test_bootstrap_resamples_whole_subjects_when_the_scores_name_them():
    """Videos of one subject move together in every replicate, and where subjects shift their
    videos' scores together the subject bootstrap's CI is wider than the video bootstrap's."""
    rng = np.random.default_rng(0)
    n_subj, per = 20, 6
    subject = np.repeat(np.arange(n_subj), per).astype(str)
    y = np.tile([0, 1], n_subj * per // 2)
    offset = np.repeat(rng.normal(0, 1.5, n_subj), per)
    score = 1 / (1 + np.exp(-(2 * y - 1 + offset + 0.3 * rng.normal(size=len(y)))))
    videos = np.arange(len(y)).astype(str)
    by_subject = ScoreSet(y, score, video=videos, subject=subject)
    weights, inv = _video_weights(by_subject, 50, np.random.default_rng(1))
    for s in np.unique(subject):
        cols = weights[:, inv[subject == s]]
        assert (cols == cols[:, :1]).all()  # one count per subject in each replicate
    wide = bootstrap_ci(by_subject, 0.5, n_boot=400)["hter_ci"]
    narrow = bootstrap_ci(ScoreSet(y, score, video=videos), 0.5, n_boot=400)["hter_ci"]
    assert wide[1] - wide[0] > 1.2 * (narrow[1] - narrow[0])
    frame = pd.DataFrame({"y": y, "score": score, "video": videos, "subject": subject})
    assert ScoreSet.from_frame(frame).subject is not None
    assert video_scores(ScoreSet.from_frame(frame)).subject is not None
