"""Distillation losses as pure torch functions: CE, KD, MMD and the paired-similarity terms.

Nothing here holds state; a method combines these terms with its weights. Shapes: ``B`` batch,
``C`` classes, ``N`` source samples, ``M`` target samples, ``D`` feature dimension.
Every estimator is tested against a closed form in ``tests/test_losses.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from fascore.errors import FascoreError
from fascore.registry import Registry

# Multiples of the median heuristic: one kernel per scale, averaged (Gretton et al. 2012, sec. 8
# suggests the median; a small family around it is robust when the median is off by 2-4x).
DEFAULT_SCALES: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
ESTIMATORS = ("biased", "unbiased", "linear")
KERNELS = ("gaussian", "linear")


def cross_entropy(logits: Tensor, y: Tensor) -> Tensor:
    """Mean cross-entropy, ``-mean_i log softmax(logits_i)[y_i]``; logits (B, C), y (B,)."""
    return F.cross_entropy(logits, y)


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, T: float = 4.0) -> Tensor:
    """Soft-target distillation (Hinton et al. 2015), logits (B, C) -> scalar.

    ``T^2 * mean_i KL(softmax(t_i / T) || softmax(s_i / T))``; the ``T^2`` keeps the gradient's
    scale independent of ``T``. The teacher side is detached.
    """
    log_p_s = F.log_softmax(student_logits / T, dim=1)
    log_p_t = F.log_softmax(teacher_logits.detach() / T, dim=1)
    return F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * T**2


def _sq_dists(x: Tensor, y: Tensor) -> Tensor:
    """Pairwise squared Euclidean distances (N, M), clamped at 0 against round-off.

    Expanded as ``|a|^2 + |b|^2 - 2 a.b`` (no sqrt, so the gradient is finite at distance 0).
    """
    xx = (x * x).sum(dim=1, keepdim=True)
    yy = (y * y).sum(dim=1, keepdim=True)
    return (xx + yy.T - 2.0 * x @ y.T).clamp_min(0.0)


def median_bandwidth(x: Tensor, y: Tensor) -> Tensor:
    """Median heuristic: median of the squared distances between distinct points of ``[x; y]``.

    x (N, D), y (M, D) -> 0-d tensor, detached (the bandwidth is a constant of the loss). Falls
    back to 1.0 when all points coincide, so the kernel never divides by zero.
    """
    z = torch.cat([x, y]).detach()
    d2 = _sq_dists(z, z)
    i, j = torch.triu_indices(len(z), len(z), offset=1, device=z.device)
    pairs = d2[i, j]
    med = pairs.median() if pairs.numel() else z.new_tensor(0.0)
    return med if med > 0 else z.new_tensor(1.0)


def _scales(bandwidths: Sequence[float] | Tensor, ref: Tensor) -> Tensor:
    return torch.as_tensor(bandwidths, dtype=ref.dtype, device=ref.device).reshape(-1, 1, 1)


def gaussian_kernel(
    x: Tensor,
    y: Tensor,
    bandwidths: Sequence[float] | Tensor = DEFAULT_SCALES,
    base: Tensor | float | None = None,
) -> Tensor:
    """Multi-bandwidth Gaussian kernel matrix (N, M).

    ``k(a, b) = (1/|S|) sum_{s in S} exp(-|a - b|^2 / (s * base))`` with ``S = bandwidths`` and
    ``base`` the median heuristic of the pooled sample unless given. Default
    ``S = (0.25, 0.5, 1, 2, 4)``: a family around the median, robust to a mis-set median.
    """
    base = median_bandwidth(x, y) if base is None else torch.as_tensor(base).detach()
    d2 = _sq_dists(x, y)
    s = _scales(bandwidths, d2)
    return torch.exp(-d2.unsqueeze(0) / (s * base)).mean(dim=0)


def _kernel_rows(
    a: Tensor, b: Tensor, kernel: str, scales: Sequence[float] | Tensor, base: Tensor | None
) -> Tensor:
    """Kernel of matched rows, ``k(a_i, b_i)`` -> (P,), for the linear-time estimator."""
    if kernel == "linear":
        return (a * b).sum(dim=1)
    d2 = ((a - b) ** 2).sum(dim=1)
    s = _scales(scales, d2).reshape(-1, 1)
    return torch.exp(-d2.unsqueeze(0) / (s * base)).mean(dim=0)


def _check_kernel(kernel: str) -> None:
    if kernel not in KERNELS:
        raise FascoreError(f"unknown MMD kernel {kernel!r}; choose one of {KERNELS}")


def joint_kernel(
    x: Tensor,
    y: Tensor,
    *,
    kernel: str = "gaussian",
    scales: Sequence[float] | Tensor = DEFAULT_SCALES,
    bandwidth: Tensor | float | None = None,
) -> Tensor:
    """Kernel matrix of the pooled sample ``z = [x; y]``: (N+M, N+M).

    ``kernel="linear"`` is ``k(a, b) = a.b``; ``"gaussian"`` is :func:`gaussian_kernel` with the
    median heuristic of ``z`` as base unless ``bandwidth`` is given. A permutation test computes
    this once and permutes its rows and columns (:func:`mmd2_from_kernel`).
    """
    _check_kernel(kernel)
    z = torch.cat([x, y])
    if kernel == "linear":
        return z @ z.T
    return gaussian_kernel(z, z, scales, median_bandwidth(x, y) if bandwidth is None else bandwidth)


def mmd2_from_kernel(K: Tensor, n: int, estimator: str = "biased") -> Tensor:
    """MMD^2 from the pooled kernel matrix K (N+M, N+M) whose first ``n`` rows are x.

    biased (V-statistic, >= 0): ``mean K_xx + mean K_yy - 2 mean K_xy``;
    unbiased (U-statistic, Gretton et al. 2012 eq. 3): the K_xx and K_yy means skip the
    diagonal, ``sum_{i!=j} k / (n (n-1))``, so it can be negative when the sets match.
    """
    if estimator not in ("biased", "unbiased"):
        raise FascoreError(f"mmd2_from_kernel supports 'biased' or 'unbiased', not {estimator!r}")
    m = K.shape[0] - n
    kxx, kyy, kxy = K[:n, :n], K[n:, n:], K[:n, n:]
    if estimator == "biased":
        return kxx.mean() + kyy.mean() - 2.0 * kxy.mean()
    if n < 2 or m < 2:
        raise FascoreError(
            f"the unbiased MMD needs at least 2 samples per set (got {n} and {m}); "
            "use a larger batch or estimator='biased'."
        )
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return sxx + syy - 2.0 * kxy.mean()


def _mmd2_linear_time(
    x: Tensor, y: Tensor, kernel: str, scales: Sequence[float] | Tensor, base: Tensor | None
) -> Tensor:
    """Gretton et al. 2012, Lemma 14: mean over i of h((x_2i, y_2i), (x_2i+1, y_2i+1)).

    ``h = k(x, x') + k(y, y') - k(x, y') - k(x', y)``; uses ``P = min(N, M) // 2`` pairs.
    """
    p = min(len(x), len(y)) // 2
    if p < 1:
        raise FascoreError(
            "the linear-time MMD needs at least 2 samples per set; use a larger batch."
        )
    x1, x2, y1, y2 = x[0 : 2 * p : 2], x[1 : 2 * p : 2], y[0 : 2 * p : 2], y[1 : 2 * p : 2]
    h = (
        _kernel_rows(x1, x2, kernel, scales, base)
        + _kernel_rows(y1, y2, kernel, scales, base)
        - _kernel_rows(x1, y2, kernel, scales, base)
        - _kernel_rows(x2, y1, kernel, scales, base)
    )
    return h.mean()


def mmd2(
    x: Tensor,
    y: Tensor,
    *,
    estimator: str = "biased",
    kernel: str = "gaussian",
    scales: Sequence[float] | Tensor = DEFAULT_SCALES,
    bandwidth: Tensor | float | None = None,
) -> Tensor:
    """Squared maximum mean discrepancy (Gretton et al., JMLR 2012) between x (N, D), y (M, D).

    ``MMD^2 = E k(x, x') + E k(y, y') - 2 E k(x, y)``, estimated as ``"biased"`` (V-statistic),
    ``"unbiased"`` (U-statistic) or ``"linear"`` (linear time, Lemma 14). With
    ``kernel="linear"`` the biased estimate equals ``|mean(x) - mean(y)|^2``. Differentiable in
    x and y; the Gaussian bandwidth (median heuristic unless given) is a constant.
    """
    _check_kernel(kernel)
    if estimator not in ESTIMATORS:
        raise FascoreError(f"unknown MMD estimator {estimator!r}; choose one of {ESTIMATORS}")
    if estimator == "linear":
        base = None
        if kernel == "gaussian":
            base = median_bandwidth(x, y) if bandwidth is None else torch.as_tensor(bandwidth)
        return _mmd2_linear_time(x, y, kernel, scales, base)
    K = joint_kernel(x, y, kernel=kernel, scales=scales, bandwidth=bandwidth)
    return mmd2_from_kernel(K, len(x), estimator)


def class_mmd2(x: Tensor, y: Tensor, lx: Tensor, ly: Tensor, **options: object) -> Tensor:
    """Class-conditional MMD²: the mean over classes c present on both sides of
    ``mmd2(x[lx == c], y[ly == c], **options)``, x (N, D) with labels lx (N,), y (M, D) with ly (M,).

    Aligns live with live and spoof with spoof, so a batch whose class mix differs between the
    source and the target sides is not pulled towards the wrong class (Long et al., "Deep
    transfer learning with joint adaptation networks", ICML 2017, align conditionals; here with
    the labels both sides have). A class needs two samples a side for the unbiased and linear
    estimators. Zero (with a gradient path) when no class qualifies.
    """
    need = 1 if options.get("estimator", "biased") == "biased" else 2
    terms = [
        mmd2(x[lx == c], y[ly == c], **options)
        for c in torch.unique(torch.cat([lx, ly]))
        if int((lx == c).sum()) >= need and int((ly == c).sum()) >= need
    ]
    return torch.stack(terms).mean() if terms else (x.sum() + y.sum()) * 0.0


def _cos_matrix(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarity of every row of a (N, D) with every row of b (M, D): (N, M)."""
    return F.normalize(a, dim=1) @ F.normalize(b, dim=1).T


def _balanced_mean(per_pair: Tensor, same: Tensor, generator: torch.Generator | None) -> Tensor:
    """Mean over k same-label and k different-label pairs, ``k = min(#same, #different)``.

    Pairs are drawn uniformly without replacement, afresh at each call. When a batch holds only
    one kind of pair (one class on both sides) there is nothing to balance: all pairs are used.
    """
    flat, same = per_pair.reshape(-1), same.reshape(-1)
    pos, neg = flat[same], flat[~same]
    k = min(len(pos), len(neg))
    if k == 0:
        return flat.mean()

    def pick(v: Tensor) -> Tensor:
        return v[torch.randperm(len(v), generator=generator)[:k].to(v.device)]

    return torch.cat([pick(pos), pick(neg)]).mean()


def pair_contrastive(
    z_s: Tensor,
    y_s: Tensor,
    z_t: Tensor,
    y_t: Tensor,
    *,
    margin: float = 1.0,
    normalize: bool = True,
    pairs: str = "all",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Paired sample similarity, contrastive reading (Hadsell et al. 2006), -> scalar.

    z_s (N, D): teacher embeddings of source samples, y_s (N,); z_t (M, D): student embeddings
    of target samples, y_t (M,). For every source-target pair, ``d = |z^_s - z^_t|`` (rows
    L2-normalised when ``normalize``, so ``d`` lies in [0, 2]); the pair costs ``d^2`` when the
    labels agree and ``max(0, margin - d)^2`` when they differ. ``pairs="all"`` averages all N*M
    pairs; ``"balanced"`` see :func:`_balanced_mean` (same-label pairs dominate otherwise).
    """
    if pairs not in ("all", "balanced"):
        raise FascoreError(f"unknown pair sampling {pairs!r}; choose 'all' or 'balanced'")
    if len(z_s) == 0 or len(z_t) == 0:
        return (z_s.sum() + z_t.sum()) * 0.0
    if normalize:
        z_s, z_t = F.normalize(z_s, dim=1), F.normalize(z_t, dim=1)
    d2 = ((z_s.unsqueeze(1) - z_t.unsqueeze(0)) ** 2).sum(dim=2)
    # sqrt only for the hinge; the clamp keeps its gradient finite for coincident points
    d = d2.clamp_min(1e-12).sqrt()
    same = y_s.reshape(-1, 1) == y_t.reshape(1, -1)
    per_pair = torch.where(same, d2, F.relu(margin - d) ** 2)
    if pairs == "all":
        return per_pair.mean()
    return _balanced_mean(per_pair, same, generator)


def pair_relational(zt_s: Tensor, zt_t: Tensor, zs_t: Tensor, zs_s: Tensor | None = None) -> Tensor:
    """Paired sample similarity, relational reading (relational KD, Park et al. CVPR 2019).

    zt_s (N, D) teacher on source, zt_t (M, D) teacher on target, zs_t (M, D') student on target,
    zs_s (N, D') student on source or None. ``S_T = cos(zt_s, zt_t)`` (N, M) is the teacher's
    source-target similarity structure. Loss ``mean_{ij} (S_S - S_T)^2`` with:

    - ``zs_s`` given (what the ``pair``/``distill`` methods use): ``S_S = cos(zs_s, zs_t)``, the
      student's own structure. It is unchanged by any rotation of the student's feature space,
      so the student matches which target samples resemble which source samples **without**
      copying the teacher's features (pinned in tests: a rotated teacher scores 0, and descent
      from random features reaches ~0 loss while ``cos(zs_t, zt_t)`` stays near 0);
    - ``zs_s`` None (anchored): ``S_S = cos(zt_s, zs_t)`` against the frozen teacher anchors
      (needs D' = D). With N >= D anchors in general position its only minimiser is
      ``zs_t`` parallel to ``zt_t``: minimising it **copies the teacher's feature direction**
      on every target image (descent drives ``cos(zs_t, zt_t)`` to 1; pinned in tests).
    """
    s_teacher = _cos_matrix(zt_s, zt_t).detach()
    anchors = zt_s.detach() if zs_s is None else zs_s
    return ((_cos_matrix(anchors, zs_t) - s_teacher) ** 2).mean()


@dataclass(frozen=True)
class PairFeatures:
    """The embeddings one pair step sees: (N, D) source rows and (M, D) target rows."""

    teacher_src: Tensor
    y_src: Tensor
    student_tgt: Tensor
    y_tgt: Tensor
    teacher_tgt: Tensor | None = None
    student_src: Tensor | None = None


PAIR_LOSSES: Registry[Callable[..., Tensor]] = Registry("pair loss")


@PAIR_LOSSES.register("contrastive")
def _contrastive(f: PairFeatures, **options: object) -> Tensor:
    return pair_contrastive(f.teacher_src, f.y_src, f.student_tgt, f.y_tgt, **options)


@PAIR_LOSSES.register("relational")
def _relational(f: PairFeatures, **options: object) -> Tensor:
    if f.teacher_tgt is None:
        raise FascoreError("the relational pair loss needs the teacher's target embeddings")
    return pair_relational(f.teacher_src, f.teacher_tgt, f.student_tgt, f.student_src, **options)


def pair_loss(name: str, feats: PairFeatures, **options: object) -> Tensor:
    """Dispatch to a registered pair loss (``PAIR_LOSSES.names()``) with its keyword options."""
    return PAIR_LOSSES.get(name)(feats, **options)
