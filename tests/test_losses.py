"""Losses against closed forms: MMD estimators, kernels, KD and the two pair readings."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from fascore.errors import FascoreError
from fascore.train.losses import (
    PAIR_LOSSES,
    PairFeatures,
    cross_entropy,
    gaussian_kernel,
    joint_kernel,
    kd_loss,
    median_bandwidth,
    mmd2,
    mmd2_from_kernel,
    pair_contrastive,
    pair_loss,
    pair_relational,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _draw(g: torch.Generator, n: int, d: int, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, d, generator=g, dtype=torch.float64) + shift


# --- MMD --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["gaussian", "linear"])
def test_biased_mmd_of_a_set_with_itself_is_zero(kernel):
    x = _draw(_gen(), 30, 8)
    assert abs(float(mmd2(x, x.clone(), kernel=kernel))) < 1e-10


def test_linear_kernel_biased_mmd_is_squared_distance_of_means():
    g = _gen(1)
    x, y = _draw(g, 17, 6), _draw(g, 23, 6, shift=0.7)
    expected = ((x.mean(0) - y.mean(0)) ** 2).sum()
    assert torch.allclose(mmd2(x, y, kernel="linear"), expected, atol=1e-10)


def _estimates(estimator: str, kernel: str, shift: float, draws: int = 400, **kw) -> torch.Tensor:
    g = _gen(2)
    vals = [
        mmd2(_draw(g, 12, 3), _draw(g, 12, 3, shift), estimator=estimator, kernel=kernel, **kw)
        for _ in range(draws)
    ]
    return torch.stack(vals)


@pytest.mark.parametrize("estimator", ["unbiased", "linear"])
def test_unbiased_estimators_have_the_closed_form_expectation_with_a_linear_kernel(estimator):
    # with k(a, b) = a.b, MMD^2 = |mu_x - mu_y|^2 exactly; here the shift is 0.5 in 3 dims
    truth = 3 * 0.5**2
    vals = _estimates(estimator, "linear", 0.5)
    se = vals.std() / math.sqrt(len(vals))
    assert abs(float(vals.mean()) - truth) < 4 * float(se)


def test_biased_estimator_is_biased_upwards_by_the_trace_term():
    # E[biased] = |delta|^2 + tr(Sigma_x)/N + tr(Sigma_y)/M = 0 + 3/12 + 3/12 for the linear kernel
    vals = _estimates("biased", "linear", 0.0)
    se = vals.std() / math.sqrt(len(vals))
    assert abs(float(vals.mean()) - 0.5) < 4 * float(se)


def test_unbiased_gaussian_is_zero_in_expectation_and_can_be_negative():
    vals = _estimates("unbiased", "gaussian", 0.0, bandwidth=6.0)
    se = vals.std() / math.sqrt(len(vals))
    assert abs(float(vals.mean())) < 4 * float(se)
    assert (vals < 0).any()


def test_linear_time_estimator_agrees_in_expectation_with_the_unbiased_one():
    shift, bw = 0.6, 6.0
    lin = _estimates("linear", "gaussian", shift, bandwidth=bw)
    unb = _estimates("unbiased", "gaussian", shift, bandwidth=bw)
    se = math.sqrt(float(lin.var()) / len(lin) + float(unb.var()) / len(unb))
    assert float(unb.mean()) > 10 * float(unb.std()) / math.sqrt(len(unb))  # a real signal
    assert abs(float(lin.mean() - unb.mean())) < 4 * se


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_mmd_grows_with_mean_shift(estimator):
    g = _gen(3)
    x, noise = _draw(g, 40, 4), _draw(g, 40, 4)
    vals = [float(mmd2(x, noise + s, estimator=estimator)) for s in (0.0, 0.5, 1.0, 2.0)]
    assert vals == sorted(vals) and vals[-1] > vals[0] + 0.1


def test_unbiased_mmd_matches_the_u_statistic_by_brute_force():
    g = _gen(4)
    x, y = _draw(g, 5, 3), _draw(g, 7, 3, shift=0.3)
    bw = 2.5

    def k(a, b):
        return gaussian_kernel(a[None], b[None], base=bw)[0, 0]

    sxx = sum(k(x[i], x[j]) for i in range(5) for j in range(5) if i != j) / 20
    syy = sum(k(y[i], y[j]) for i in range(7) for j in range(7) if i != j) / 42
    sxy = sum(k(x[i], y[j]) for i in range(5) for j in range(7)) / 35
    got = mmd2(x, y, estimator="unbiased", bandwidth=bw)
    assert torch.allclose(got, sxx + syy - 2 * sxy, atol=1e-10)


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
@pytest.mark.parametrize("kernel", ["gaussian", "linear"])
def test_mmd2_from_kernel_equals_mmd2_and_permutes(estimator, kernel):
    g = _gen(5)
    x, y = _draw(g, 9, 4), _draw(g, 6, 4, shift=1.0)
    K = joint_kernel(x, y, kernel=kernel)
    assert torch.allclose(
        mmd2_from_kernel(K, 9, estimator), mmd2(x, y, estimator=estimator, kernel=kernel)
    )
    # a permutation test reuses K: permuting rows/cols equals recomputing on the permuted sets
    perm = torch.randperm(15, generator=g)
    z = torch.cat([x, y])[perm]
    bw = median_bandwidth(x, y)
    direct = mmd2(z[:9], z[9:], estimator=estimator, kernel=kernel, bandwidth=bw)
    assert torch.allclose(mmd2_from_kernel(K[perm][:, perm], 9, estimator), direct)


@pytest.mark.parametrize("estimator", ["biased", "unbiased", "linear"])
def test_mmd_is_differentiable_and_the_bandwidth_is_a_constant(estimator):
    g = _gen(6)
    x0, y0 = _draw(g, 10, 5), _draw(g, 10, 5, shift=0.5)
    x, y = x0.clone().requires_grad_(), y0.clone().requires_grad_()
    mmd2(x, y, estimator=estimator).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0 and y.grad.abs().sum() > 0
    # same value with the median passed in as a constant -> same gradient (median is detached)
    x2 = x0.clone().requires_grad_()
    mmd2(x2, y0, estimator=estimator, bandwidth=median_bandwidth(x0, y0)).backward()
    assert torch.allclose(x.grad, x2.grad)


def test_mmd_has_a_finite_gradient_at_coincident_points():
    x = torch.zeros(4, 3, requires_grad=True)
    mmd2(x, torch.zeros(4, 3)).backward()
    assert torch.isfinite(x.grad).all()


def test_mmd_rejects_bad_options_and_too_small_sets_readably():
    x = torch.randn(4, 2)
    with pytest.raises(FascoreError, match="estimator"):
        mmd2(x, x, estimator="quadratic")
    with pytest.raises(FascoreError, match="kernel"):
        mmd2(x, x, kernel="laplace")
    with pytest.raises(FascoreError, match="at least 2"):
        mmd2(x[:1], x, estimator="unbiased")
    with pytest.raises(FascoreError, match="at least 2"):
        mmd2(x[:1], x, estimator="linear")


# --- kernels and bandwidth --------------------------------------------------------------------


def test_median_bandwidth_by_hand_and_degenerate_fallback():
    x = torch.tensor([[0.0], [1.0]])
    y = torch.tensor([[3.0]])
    # squared distances between distinct points: 1, 9, 4 -> median 4
    assert float(median_bandwidth(x, y)) == 4.0
    assert float(median_bandwidth(torch.ones(3, 2), torch.ones(2, 2))) == 1.0


def test_gaussian_kernel_closed_form():
    x = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([[0.0, 2.0]], dtype=torch.float64)
    K = gaussian_kernel(x, y, bandwidths=[1.0, 2.0], base=4.0)
    d2 = torch.tensor([[4.0], [2.0]], dtype=torch.float64)
    expected = (torch.exp(-d2 / 4.0) + torch.exp(-d2 / 8.0)) / 2
    assert torch.allclose(K, expected)
    assert torch.allclose(gaussian_kernel(x, x).diagonal(), torch.ones(2, dtype=torch.float64))


# --- CE and KD --------------------------------------------------------------------------------


def test_cross_entropy_matches_the_definition():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 0])
    manual = -(torch.log_softmax(logits, 1)[[0, 1], [0, 0]]).mean()
    assert torch.allclose(cross_entropy(logits, y), manual)


def test_kd_loss_is_zero_for_equal_logits_and_matches_the_manual_formula():
    g = _gen(7)
    s = torch.randn(6, 3, generator=g, dtype=torch.float64)
    t = torch.randn(6, 3, generator=g, dtype=torch.float64)
    assert abs(float(kd_loss(s, s.clone()))) < 1e-12
    T = 3.0
    p_t, p_s = torch.softmax(t / T, 1), torch.softmax(s / T, 1)
    manual = T**2 * (p_t * (p_t.log() - p_s.log())).sum(1).mean()
    assert torch.allclose(kd_loss(s, t, T=T), manual)


# --- paired sample similarity -----------------------------------------------------------------


def test_contrastive_is_zero_for_identical_same_label_and_margin_squared_otherwise():
    z = torch.tensor([[3.0, 4.0], [1.0, -2.0]])
    y = torch.tensor([0, 1])
    assert float(pair_contrastive(z[:1], y[:1], z[:1].clone(), y[:1])) == 0.0
    got = pair_contrastive(z[:1], y[:1], z[:1].clone(), y[1:], margin=0.8)
    assert math.isclose(float(got), 0.8**2, rel_tol=1e-5)


def test_contrastive_on_a_hand_made_batch():
    z_s = torch.tensor([[1.0, 0.0]])
    z_t = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])  # distances sqrt(2) and 2 after normalising
    y_s, y_t = torch.tensor([1]), torch.tensor([1, 0])
    got = pair_contrastive(z_s, y_s, z_t, y_t, margin=2.5)
    assert math.isclose(float(got), (2.0 + 0.5**2) / 2, rel_tol=1e-6)
    unnormalised = pair_contrastive(2 * z_s, y_s, z_t, y_t, margin=2.5, normalize=False)
    assert math.isclose(float(unnormalised), (5.0 + 0.0) / 2, rel_tol=1e-6)  # d = 3 > margin


def test_balanced_pairs_weigh_both_kinds_equally():
    # every same-label pair costs 0 and every different-label pair costs margin^2 = 1, with
    # 1 different-label pair among 4: "all" gives 1/4, "balanced" gives 1/2 whatever is drawn
    z = torch.ones(2, 2)
    y_s, y_t = torch.tensor([0, 0]), torch.tensor([0, 1])
    z_t = torch.ones(2, 2)
    all_pairs = pair_contrastive(z, y_s, z_t, y_t)
    balanced = pair_contrastive(z, y_s, z_t, y_t, pairs="balanced", generator=_gen())
    assert math.isclose(float(all_pairs), 0.5, rel_tol=1e-5)  # 2 of 4 pairs differ
    assert math.isclose(float(balanced), 0.5, rel_tol=1e-5)
    y_t3 = torch.tensor([0, 0, 1])
    z_t3 = torch.ones(3, 2)
    assert math.isclose(float(pair_contrastive(z, y_s, z_t3, y_t3)), 2 / 6, rel_tol=1e-5)
    got = pair_contrastive(z, y_s, z_t3, y_t3, pairs="balanced", generator=_gen())
    assert math.isclose(float(got), 0.5, rel_tol=1e-5)


def test_balanced_sampling_is_deterministic_under_a_generator():
    g = _gen(8)
    z_s, z_t = torch.randn(8, 4, generator=g), torch.randn(10, 4, generator=g)
    y_s, y_t = torch.randint(0, 2, (8,), generator=g), torch.randint(0, 2, (10,), generator=g)
    a = pair_contrastive(z_s, y_s, z_t, y_t, pairs="balanced", generator=_gen(1))
    b = pair_contrastive(z_s, y_s, z_t, y_t, pairs="balanced", generator=_gen(1))
    assert torch.equal(a, b)


@pytest.mark.parametrize("pairs", ["all", "balanced"])
def test_contrastive_has_no_nan_with_a_single_class_or_coincident_points(pairs):
    z_s = torch.zeros(3, 4, requires_grad=True)
    z_t = torch.zeros(5, 4, requires_grad=True)
    ones_s, ones_t = torch.ones(3, dtype=torch.long), torch.ones(5, dtype=torch.long)
    loss = pair_contrastive(z_s, ones_s, z_t, ones_t, pairs=pairs)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z_t.grad).all()
    z_t2 = z_t.detach().clone().requires_grad_()
    loss2 = pair_contrastive(z_s, ones_s, z_t2, 0 * ones_t, pairs=pairs)
    loss2.backward()
    assert torch.isfinite(loss2) and torch.isfinite(z_t2.grad).all()
    empty = pair_contrastive(z_s, ones_s, z_t[:0], ones_t[:0], pairs=pairs)
    assert float(empty.detach()) == 0.0


def test_relational_is_zero_when_the_student_is_the_teacher():
    g = _gen(9)
    t_s, t_t = torch.randn(6, 5, generator=g), torch.randn(4, 5, generator=g)
    assert float(pair_relational(t_s, t_t, t_t.clone())) < 1e-12
    assert float(pair_relational(t_s, t_t, t_t.clone(), t_s.clone())) < 1e-12


def test_relational_matches_its_equation_and_trains_only_the_student():
    g = _gen(10)
    t_s, t_t = torch.randn(6, 5, generator=g), torch.randn(4, 5, generator=g)
    s_t = torch.randn(4, 5, generator=g, requires_grad=True)
    t_s.requires_grad_()
    loss = pair_relational(t_s, t_t, s_t)
    s_teacher = F.cosine_similarity(t_s[:, None], t_t[None], dim=2)
    s_student = F.cosine_similarity(t_s[:, None], s_t[None], dim=2)
    assert torch.allclose(loss, ((s_student - s_teacher) ** 2).mean(), atol=1e-6)
    loss.backward()
    assert s_t.grad.abs().sum() > 0 and t_s.grad is None
    # the student-on-both-sides reading may use another embedding width
    s_s, s_t8 = torch.randn(6, 8, generator=g), torch.randn(4, 8, generator=g)
    assert float(pair_relational(t_s.detach(), t_t, s_t8, s_s)) > 0


def _descend(t_s, t_t, own: bool, g) -> tuple[float, float, float]:
    """Minimise the relational loss over free student features from a random start:
    (initial loss, final loss, final mean cos(student target, teacher target))."""
    zs_t = torch.randn(len(t_t), t_t.shape[1], generator=g).requires_grad_()
    zs_s = torch.randn(len(t_s), t_s.shape[1], generator=g).requires_grad_()
    opt = torch.optim.Adam([zs_t, zs_s], lr=0.05)
    first = None
    for _ in range(400):
        opt.zero_grad()
        loss = pair_relational(t_s, t_t, zs_t, zs_s if own else None)
        first = float(loss.detach()) if first is None else first
        loss.backward()
        opt.step()
    final = float(pair_relational(t_s, t_t, zs_t, zs_s if own else None).detach())
    return first, final, float(F.cosine_similarity(zs_t, t_t).mean().detach())


@pytest.mark.slow
def test_relational_anchored_copies_the_teachers_direction_own_source_does_not():
    """What the gradient does (docs/method.md): against the teacher's source anchors, descent
    drives cos(student, teacher) on target images to 1; with the student's own source features
    (the methods' form) it matches the similarity structure and leaves the direction free."""
    g = _gen(12)
    t_s, t_t = torch.randn(32, 8, generator=g), torch.randn(16, 8, generator=g)
    first, final, cos = _descend(t_s, t_t, own=False, g=g)
    assert final < 1e-3 * first and cos > 0.99
    first, final, cos = _descend(t_s, t_t, own=True, g=g)
    assert final < 0.01 * first and abs(cos) < 0.5
    rot, _ = torch.linalg.qr(torch.randn(8, 8, generator=g))  # a rotated teacher: loss 0
    assert float(pair_relational(t_s, t_t, t_t @ rot, t_s @ rot)) < 1e-10
    assert float(F.cosine_similarity(t_t @ rot, t_t).mean()) < 0.9


def test_pair_losses_dispatch_by_name():
    g = _gen(11)
    f = PairFeatures(
        teacher_src=torch.randn(4, 3, generator=g),
        y_src=torch.tensor([0, 1, 0, 1]),
        student_tgt=torch.randn(2, 3, generator=g),
        y_tgt=torch.tensor([1, 0]),
        teacher_tgt=torch.randn(2, 3, generator=g),
    )
    assert set(PAIR_LOSSES.names()) == {"contrastive", "relational"}
    direct = pair_contrastive(f.teacher_src, f.y_src, f.student_tgt, f.y_tgt, margin=0.5)
    assert torch.equal(pair_loss("contrastive", f, margin=0.5), direct)
    direct = pair_relational(f.teacher_src, f.teacher_tgt, f.student_tgt)
    assert torch.equal(pair_loss("relational", f), direct)
    with pytest.raises(FascoreError, match="teacher's target"):
        pair_loss("relational", PairFeatures(f.teacher_src, f.y_src, f.student_tgt, f.y_tgt))
    with pytest.raises(FascoreError, match="choose one of"):
        pair_loss("triplet", f)


def test_class_conditional_mmd_is_the_mean_of_per_class_squared_mean_distances():
    """With a linear kernel, the biased class MMD² is the mean over shared classes of
    |mean(x_c) - mean(y_c)|²; a class missing on one side is left out."""
    from fascore.train.losses import class_mmd2

    g = _gen(7)
    x, y = _draw(g, 20, 5), _draw(g, 16, 5, shift=0.5)
    lx, ly = torch.tensor([0, 1] * 10), torch.tensor([0] * 10 + [1] * 6)
    expected = sum(((x[lx == c].mean(0) - y[ly == c].mean(0)) ** 2).sum() for c in (0, 1)) / 2
    assert torch.allclose(class_mmd2(x, y, lx, ly, kernel="linear"), expected, atol=1e-10)
    lx2 = torch.tensor([0] * 20)  # spoof only on the target side: the live term alone
    live = ((x.mean(0) - y[ly == 0].mean(0)) ** 2).sum()
    assert torch.allclose(class_mmd2(x, y, lx2, ly, kernel="linear"), live, atol=1e-10)
    none = class_mmd2(x, y, lx2, torch.ones(16, dtype=torch.long), kernel="linear")
    assert float(none) == 0.0
    # aligned classes but shifted marginals (a class-mix difference): only the marginal sees it
    a = torch.cat([torch.zeros(15, 2), torch.ones(5, 2)])
    b = torch.cat([torch.zeros(5, 2), torch.ones(15, 2)])
    la, lb = torch.tensor([0] * 15 + [1] * 5), torch.tensor([0] * 5 + [1] * 15)
    assert float(class_mmd2(a, b, la, lb, kernel="linear")) == 0.0
    assert float(mmd2(a, b, kernel="linear")) > 0.2
