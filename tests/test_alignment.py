"""Domain-alignment statistics: MMD² tests against closed forms, p-value validity, the proxy
A-distance, per-class tests and the view bookkeeping."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fascore.eval.analysis import alignment as A
from fascore.train.losses import mmd2_from_kernel


def _blobs(n: int, d: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, d)) + 3.0
    y = rng.normal(0, 1, (n, d)) + 3.0
    y[:, 0] += shift
    return x.astype(np.float32), y.astype(np.float32)


def test_permutation_null_equals_mmd_of_permuted_kernel():
    x, y = _blobs(30, 5, 1.0, 0)
    K = A.kernel_matrix(x, y[:20]).double()
    perms = torch.stack(
        [torch.randperm(50, generator=torch.Generator().manual_seed(s)) for s in range(7)]
    )
    fast = A.permutation_null(K, 30, perms)
    slow = torch.stack([mmd2_from_kernel(K[p][:, p], 30) for p in perms])
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-12)


def test_identical_sets_have_zero_mmd_and_p_one():
    x, _ = _blobs(40, 4, 0.0, 1)
    out = A.permutation_test(x, x.copy(), n_perm=50)
    assert out["mmd2"] == pytest.approx(0.0, abs=1e-7)
    assert out["p_value"] == 1.0  # every relabelling is at least as extreme as 0


def test_shifted_sets_are_detected_and_p_is_never_zero():
    x, y = _blobs(100, 8, 1.5, 2)
    out = A.permutation_test(x, y, n_perm=200, seed=3)
    assert out["mmd2"] > 0.01
    assert out["p_value"] == pytest.approx(1 / 201)
    assert (out["n_source"], out["n_target"]) == (100, 100)


def test_rejection_rate_under_the_null_is_near_the_level():
    # same distribution on both sides: p-values are uniform, so about 5% fall below 0.05
    p = [
        A.permutation_test(*_blobs(40, 4, 0.0, 100 + s), n_perm=100, seed=s)["p_value"]
        for s in range(30)
    ]
    assert np.mean(np.array(p) <= 0.05) <= 0.2
    assert 0.3 < np.mean(p) < 0.7


def test_the_bandwidth_rule_ignores_feature_scale():
    # L2-normalised embeddings and a fixed base: features that merely grow keep their MMD
    x, y = _blobs(50, 6, 1.0, 4)
    assert A.mmd2(10 * x, 10 * y) == pytest.approx(A.mmd2(x, y), rel=1e-5)
    assert A.mmd2(x, y) == pytest.approx(A.mmd2(x, 7 * y), rel=1e-4)


def test_too_few_samples_give_none_not_an_error():
    x, y = _blobs(5, 3, 0.0, 5)
    assert A.permutation_test(x[:1], y)["mmd2"] is None
    assert A.proxy_a_distance(x[:3], y[:3])["proxy_a_distance"] is None


def test_proxy_a_distance_separable_vs_identical():
    x, y = _blobs(100, 8, 6.0, 6)
    far = A.proxy_a_distance(x, y)
    assert far["proxy_a_distance"] >= 1.8
    assert far["domain_error"] <= 0.05
    x, y = _blobs(100, 8, 0.0, 7)
    near = A.proxy_a_distance(x, y)
    assert 0.0 <= near["proxy_a_distance"] < 0.6
    assert near["n_per_side"] == 100


def test_per_class_tests_separate_label_shift_from_domain_shift():
    # the class-conditional distributions match across domains, only the class mix differs:
    # the pooled test sees a difference, the per-class tests do not
    rng = np.random.default_rng(8)
    ls = np.array(["live"] * 90 + ["spoof"] * 30)
    lt = np.array(["live"] * 30 + ["spoof"] * 90)

    def draw(labels):
        z = rng.normal(0, 1, (len(labels), 6)) + 3.0
        z[labels == "spoof", 0] += 4.0
        return z.astype(np.float32)

    out = A.view_statistics(draw(ls), draw(lt), ls, lt, n_perm=200, seed=0)
    assert out["p_value"] < 0.01
    for c in ("live", "spoof"):
        assert out["per_class"][c]["mmd2"] < 0.5 * out["mmd2"]
        assert out["per_class"][c]["p_value"] > 0.01
    assert out["per_class"]["spoof"]["n_source"] == 30


def _frame(n_src: int, n_tgt: int) -> pd.DataFrame:
    role = ["source"] * n_src + ["target"] * n_tgt
    label = ["live", "spoof"] * ((n_src + n_tgt) // 2)
    return pd.DataFrame({"role": role, "label": label, "split": "test"})


def test_domain_statistics_views_and_sampling():
    rng = np.random.default_rng(9)
    df = _frame(60, 40)
    teacher = rng.normal(0, 1, (100, 5)).astype(np.float32) + 2
    only = A.domain_statistics({"teacher": teacher}, df, n_per_side=50, n_perm=50, seed=1)
    assert list(only["views"]) == ["shift"]
    assert only["sampling"]["n_source"] == 50 and only["sampling"]["n_target"] == 40
    assert only["sampling"]["seed"] == 1 and only["sampling"]["permutations"] == 50
    both = A.domain_statistics(
        {"teacher": teacher, "student": teacher}, df, n_per_side=50, n_perm=50, seed=1
    )
    assert list(both["views"]) == ["shift", "aligned", "student"]
    assert both["views"]["aligned"]["models"] == ["teacher", "student"]
    # the same rows on each side for every view: equal embeddings give equal statistics
    assert both["views"]["aligned"]["mmd2"] == pytest.approx(both["views"]["shift"]["mmd2"])
    assert both["kernel"]["base"] == A.BASE


def test_sample_sides_is_seeded_and_capped():
    df = _frame(300, 100)
    a = A.sample_sides(df, 120, seed=0)
    b = A.sample_sides(df, 120, seed=0)
    assert len(a[0]) == 120 and len(a[1]) == 100
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    assert not np.array_equal(a[0], A.sample_sides(df, 120, seed=1)[0])


def test_views_for_and_headline():
    assert A.views_for({"teacher": 0}) == ["shift"]
    assert A.views_for(["student"]) == ["student"]
    assert A.headline_view(["shift", "aligned", "student"]) == "aligned"
    assert A.headline_view(["shift"]) == "shift"
    assert A.headline_view([]) is None


def _null_domain(rng, n_videos=40, frames=10, dim=16):
    """One domain's videos: a per-video mean plus small frame noise (near-duplicate frames)."""
    means = rng.normal(size=(n_videos, dim))
    z = np.repeat(means, frames, axis=0) + 0.1 * rng.normal(size=(n_videos * frames, dim))
    return np.abs(z), np.repeat(np.arange(n_videos), frames).astype(str)  # post-ReLU-like


def _halves(rng, z, videos):
    """A true null: the domain's videos split at random into two halves."""
    ids = np.unique(videos)
    left = np.isin(videos, rng.permutation(ids)[: len(ids) // 2])
    return z[left], z[~left], videos[left], videos[~left]


def _subject_domain(rng, n_subjects=16, videos=4, frames=2, dim=8):
    """One domain's samples: a per-subject face, a per-video capture offset and small frame
    noise, so a subject's videos are alike (as on face data); live and spoof videos alternate."""
    n_v = n_subjects * videos
    subject = np.repeat(np.arange(n_subjects), videos)
    video_mean = rng.normal(size=(n_subjects, dim))[subject] + 0.4 * rng.normal(size=(n_v, dim))
    z = np.repeat(video_mean, frames, axis=0) + 0.1 * rng.normal(size=(n_v * frames, dim))
    rows = pd.DataFrame({
        "video": np.repeat(np.arange(n_v), frames).astype(str),
        "subject": np.repeat(subject, frames).astype(str),
        "label": np.where(np.repeat(np.arange(n_v) % 2, frames) == 1, "spoof", "live"),
        "split": "test",
    })  # fmt: skip
    return np.abs(z).astype(np.float32), rows


def test_subject_permutation_test_is_calibrated_on_a_true_null(monkeypatch, request):
    """One domain's subjects split in two at random, 200 times: the domain statistics' MMD test
    rejects at p < 0.05 in 3-8 % of the nulls. (Moving videos instead of subjects rejects far
    more often on such data: a subject's videos are not independent.)"""
    monkeypatch.setattr(A, "proxy_a_distance", lambda *a, **k: {})  # not under test; slow
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small kernels: thread hand-offs cost more than they save
    request.addfinalizer(lambda: torch.set_num_threads(threads))
    rng = np.random.default_rng(0)
    trials, hits = 200, 0
    for t in range(trials):
        z, rows = _subject_domain(rng)
        people = rows["subject"].unique()
        left = rows["subject"].isin(rng.permutation(people)[: len(people) // 2])
        samples = rows.assign(role=np.where(left, "source", "target"))
        out = A.domain_statistics({"teacher": z}, samples, n_per_side=10_000, n_perm=200, seed=t)
        hits += out["views"]["shift"]["p_value"] < 0.05
    assert 0.03 * trials <= hits <= 0.08 * trials, hits
    assert out["sampling"]["unit"] == "subject"


def test_video_units_over_reject_where_subjects_share_a_face():
    """The same nulls with videos as the unit reject far above 5 % (why subjects are the unit)."""
    rng = np.random.default_rng(1)
    hits = 0
    for t in range(20):
        z, rows = _subject_domain(rng)
        people = rows["subject"].unique()
        left = rows["subject"].isin(rng.permutation(people)[: len(people) // 2]).to_numpy()
        v = rows["video"].to_numpy()
        out = A.permutation_test(z[left], z[~left], n_perm=100, seed=t, groups_x=v[left],
                                 groups_y=v[~left])  # fmt: skip
        hits += out["p_value"] < 0.05
    assert hits >= 5, hits


def test_video_grouped_proxy_a_distance_is_near_zero_on_a_true_null():
    rng = np.random.default_rng(1)
    grouped, by_frame = [], []
    for t in range(10):
        x, y, vx, vy = _halves(rng, *_null_domain(rng, n_videos=80, frames=5))
        grouped.append(
            A.proxy_a_distance(x, y, seed=t, groups_x=vx, groups_y=vy)["proxy_a_distance"]
        )
        by_frame.append(A.proxy_a_distance(x, y, seed=t)["proxy_a_distance"])
    assert np.mean(grouped) < 0.15 and max(grouped) < 0.4  # 0 up to the noise of 40 units a side
    assert np.mean(by_frame) > 0.4  # frame folds memorise videos: a "shift" that is not there


def test_domain_statistics_sample_whole_videos_and_permute_subjects():
    rng = np.random.default_rng(2)
    z, videos = _null_domain(rng, n_videos=30, frames=6)
    df = pd.DataFrame({"role": np.where(np.isin(videos, videos[::12]), "source", "target"),
                       "label": "live", "video": videos, "split": "test",
                       "subject": np.char.add("s", (videos.astype(int) // 2).astype(str))})  # fmt: skip
    src, tgt = A.sample_sides(df, 20, seed=0)
    for rows in (src, tgt):  # whole videos only: every sampled video keeps its 6 frames
        assert (df.iloc[rows].groupby("video").size() == 6).all() and len(rows) <= 20
    out = A.domain_statistics({"teacher": z}, df, n_per_side=60, n_perm=50, seed=0)
    assert out["sampling"]["unit"] == "subject" and out["sampling"]["pad_folds_by"] == "subject"
    # permutations move subjects; one subject's videos on the two sides are two units
    src, tgt = A.sample_sides(df, 60, seed=0)
    units = df.iloc[np.r_[src, tgt]].groupby(["role", "subject"]).ngroups
    assert out["views"]["shift"]["n_units"] == units
