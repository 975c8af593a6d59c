"""Domain-alignment statistics: MMD² with permutation p-values and a proxy A-distance, per view.

A *view* pairs the source side, embedded by one model, with the target side, embedded by another:

- ``shift``: teacher on source vs teacher on target (the domain shift the teacher sees),
- ``aligned``: teacher on source vs student on target (what distillation's MMD term aligns),
- ``student``: student on source vs student on target.

Bandwidth rule (one for every view, model, epoch and run, so numbers compare): embeddings are
L2-normalised, then the kernel is ``fascore.train.losses.gaussian_kernel`` with a fixed base
``BASE = 1`` and the default scales (0.25 ... 4), ``k(a, b) = mean_s exp(-|a - b|² / s)``.
Normalising removes the feature scale, which drifts during training and differs between models
(a student whose features merely grow would otherwise look "less aligned"); for unit vectors
``|a - b|² = 2 - 2 cos(a, b)`` lies in [0, 2] for the non-negative (post-ReLU) embeddings of
our backbones, which the scales 0.25 ... 4 cover from sharp to smooth. A median heuristic would
change with the data itself, so per-epoch numbers would not be comparable.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from fascore.train.losses import DEFAULT_SCALES, joint_kernel, mmd2_from_kernel

#: view -> (model on the source side, model on the target side)
VIEWS: dict[str, tuple[str, str]] = {
    "shift": ("teacher", "teacher"),
    "aligned": ("teacher", "student"),
    "student": ("student", "student"),
}
BASE = 1.0  # fixed base bandwidth for L2-normalised embeddings (see the module docstring)
ESTIMATOR = "biased"  # the V-statistic: >= 0, and the permutation test needs no correction
KERNEL = {
    "name": "gaussian",
    "normalise": "l2",
    "base": BASE,
    "scales": list(DEFAULT_SCALES),
    "estimator": ESTIMATOR,
    "rule": "L2-normalised embeddings; k(a,b) = mean_s exp(-|a-b|^2 / (s * base)), fixed base",
}
CLASSES = ("live", "spoof")
MIN_PER_SIDE = 2  # fewer samples on a side leave nothing to test


def views_for(models: list[str] | set[str] | dict) -> list[str]:
    """The views whose two models are both present, in ``VIEWS`` order."""
    return [v for v, (a, b) in VIEWS.items() if a in models and b in models]


def headline_view(views: list[str]) -> str | None:
    """The view a run reports per epoch: ``aligned`` when there is a student, else ``shift``."""
    for v in ("aligned", "shift", "student"):
        if v in views:
            return v
    return None


def _tensor(x: np.ndarray | torch.Tensor, device: str | torch.device) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x, dtype=np.float32) if isinstance(x, np.ndarray) else x)
    return F.normalize(t.float().to(device), dim=1)


def kernel_matrix(x, y, device: str | torch.device = "cpu") -> torch.Tensor:
    """Pooled kernel K of ``[x; y]`` under the fixed rule; x (N, D), y (M, D) -> (N+M, N+M)."""
    return joint_kernel(_tensor(x, device), _tensor(y, device), bandwidth=BASE)


def mmd2(x, y, device: str | torch.device = "cpu") -> float:
    """MMD² (biased) of x (N, D) vs y (M, D) under the fixed rule; no test."""
    return float(mmd2_from_kernel(kernel_matrix(x, y, device), len(x), ESTIMATOR))


def permutation_null(K: torch.Tensor, n: int, perms: torch.Tensor) -> torch.Tensor:
    """Biased MMD² of every relabelling in ``perms`` (P, N+M): (P,), from one kernel matrix K.

    Equal to ``mmd2_from_kernel(K[p][:, p], n)`` for each row p (tested), but computed as the
    quadratic form ``w_p^T K w_p`` with ``w_p = 1/n`` on the rows p labels "x" and ``-1/m`` on
    the others: one (P, N+M) x (N+M, N+M) product instead of P permuted copies of K (over 100x
    faster at 1,024 samples a side, 200 permutations).
    """
    m = K.shape[0] - n
    w = torch.full(perms.shape, -1.0 / m, dtype=K.dtype, device=K.device)
    w.scatter_(1, perms[:, :n].to(K.device), 1.0 / n)
    return ((w @ K) * w).sum(dim=1)


def _test_from_kernel(K: torch.Tensor, n: int, n_perm: int, seed: int) -> dict:
    """Observed MMD² (``mmd2_from_kernel``) and its permutation p-value, K in float64."""
    m = K.shape[0] - n
    if n < MIN_PER_SIDE or m < MIN_PER_SIDE:
        return {"mmd2": None, "p_value": None, "n_source": n, "n_target": m}
    observed = float(mmd2_from_kernel(K, n, ESTIMATOR))
    gen = torch.Generator().manual_seed(seed)
    perms = torch.rand(n_perm, n + m, generator=gen).argsort(dim=1)
    null = permutation_null(K, n, perms)
    # ties count as at least as extreme (conservative); the tolerance absorbs summation order
    hits = int((null >= observed - 1e-9 * max(abs(observed), 1e-12)).sum())
    p_value = (1 + hits) / (1 + n_perm)
    return {"mmd2": observed, "p_value": p_value, "n_source": n, "n_target": m}


def permutation_test(
    x, y, *, n_perm: int = 200, seed: int = 0, device: str | torch.device = "cpu"
) -> dict:
    """MMD² of x (N, D) vs y (M, D) and its permutation p-value (Gretton et al. 2012, sec. 5).

    The kernel matrix is computed once; each permutation only relabels which of its rows are
    "x" (``permutation_null``). ``p = (1 + #{null >= observed}) / (1 + n_perm)``: never 0, and
    a valid test for any number of permutations. Returns mmd2, p_value, n_source, n_target.
    """
    if len(x) < MIN_PER_SIDE or len(y) < MIN_PER_SIDE:
        return {"mmd2": None, "p_value": None, "n_source": len(x), "n_target": len(y)}
    K = kernel_matrix(x, y, device).double()
    return _test_from_kernel(K, len(x), n_perm, seed)


def proxy_a_distance(x: np.ndarray, y: np.ndarray, *, seed: int = 0, folds: int = 5) -> dict:
    """Proxy A-distance (Ben-David et al. 2007/2010): ``2 (1 - 2 err)``, kernel-free.

    ``err`` is the cross-validated error (stratified ``folds``-fold) of a logistic-regression
    domain classifier on standardised, L2-normalised embeddings; both sides are first cut to the
    same size so chance is 0.5. ``err`` is capped at 0.5, so the value lies in [0, 2]:
    0 = indistinguishable domains, 2 = perfectly separable.
    """
    rng = np.random.default_rng(seed)
    k = min(len(x), len(y))
    if k < folds:
        return {"proxy_a_distance": None, "domain_error": None, "n_per_side": k}
    xs = x[rng.choice(len(x), k, replace=False)]
    ys = y[rng.choice(len(y), k, replace=False)]
    z = F.normalize(torch.as_tensor(np.concatenate([xs, ys]), dtype=torch.float32), dim=1).numpy()
    d = np.r_[np.zeros(k), np.ones(k)]
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    # one BLAS thread: L-BFGS makes hundreds of tiny BLAS calls, and on a busy machine
    # OpenBLAS's thread hand-offs made them ~30x slower than running them on one core
    with threadpool_limits(1, user_api="blas"):
        err = min(0.5, 1.0 - float(cross_val_score(clf, z, d, cv=cv).mean()))
    return {"proxy_a_distance": 2.0 * (1.0 - 2.0 * err), "domain_error": err, "n_per_side": k}


def sample_sides(
    samples: pd.DataFrame, n_per_side: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded subsample of at most ``n_per_side`` source and target row positions (sorted)."""
    rng = np.random.default_rng(seed)
    out = []
    for role in ("source", "target"):
        rows = np.flatnonzero(samples["role"].to_numpy() == role)
        if len(rows) > n_per_side:
            rows = np.sort(rng.choice(rows, n_per_side, replace=False))
        out.append(rows)
    return out[0], out[1]


def view_statistics(
    zs: np.ndarray,
    zt: np.ndarray,
    ls: np.ndarray,
    lt: np.ndarray,
    *,
    n_perm: int = 200,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict:
    """One view: zs (N, D) source and zt (M, D) target embeddings, ls/lt their labels.

    Returns the overall MMD² test, the same per class (live vs live, spoof vs spoof; their
    kernels are blocks of the view's one kernel matrix) and the proxy A-distance.
    """
    if len(zs) < MIN_PER_SIDE or len(zt) < MIN_PER_SIDE:
        out = permutation_test(zs, zt)
        out["per_class"] = {c: permutation_test(zs[ls == c], zt[lt == c]) for c in CLASSES}
    else:
        K = kernel_matrix(zs, zt, device).double()
        out = _test_from_kernel(K, len(zs), n_perm, seed)
        out["per_class"] = {}
        for c in CLASSES:
            rows = torch.as_tensor(
                np.r_[np.flatnonzero(ls == c), len(zs) + np.flatnonzero(lt == c)]
            )
            Kc = K.index_select(0, rows.to(K.device)).index_select(1, rows.to(K.device))
            out["per_class"][c] = _test_from_kernel(Kc, int((ls == c).sum()), n_perm, seed)
    out.update(proxy_a_distance(zs, zt, seed=seed))
    return out


def domain_statistics(
    embeddings: dict[str, np.ndarray],
    samples: pd.DataFrame,
    *,
    n_per_side: int = 1000,
    n_perm: int = 200,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict:
    """Every available view of ``embeddings`` ({model: (N, D)}, rows aligned with ``samples``).

    Returns ``{"views": {view: view_statistics + models}, "sampling": {...}, "kernel": KERNEL}``;
    every view uses the same seeded source and target rows, so views compare sample for sample.
    """
    src, tgt = sample_sides(samples, n_per_side, seed)
    labels = samples["label"].to_numpy()
    views = {}
    for view in views_for(embeddings):
        a, b = VIEWS[view]
        zs, zt = embeddings[a][src], embeddings[b][tgt]
        stats = view_statistics(
            zs, zt, labels[src], labels[tgt], n_perm=n_perm, seed=seed, device=device
        )
        views[view] = {"models": [a, b], **stats}
    sampling = {
        "n_per_side": n_per_side,
        "n_source": len(src),
        "n_target": len(tgt),
        "seed": seed,
        "permutations": n_perm,
        "splits": sorted(samples["split"].astype(str).unique()) if "split" in samples else [],
    }
    return {"views": views, "sampling": sampling, "kernel": KERNEL}
