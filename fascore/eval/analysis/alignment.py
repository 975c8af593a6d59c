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

Unit of independence: frames of one video are near-duplicates, and the videos of one subject
share a face, so a test that moves frames, or even videos, rejects a true null far too often
(on SynthFAS, splitting one domain's subjects in halves, permuting videos rejected at p < 0.05
in 36-41 % of 200 nulls). Here the permutation test relabels whole **subjects** (every frame of
every video of a subject moves together; whole videos where the samples name no subject), the
rows compared are sampled by whole videos, and the proxy A-distance's cross-validation folds are
grouped by subject too (else by video: a classifier never tests on an identity it trained on).
``tests/test_alignment.py`` checks the rejection rate on 200 true nulls built from one domain's
subjects split in halves.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, cross_val_score
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


def _null_from_masks(K: torch.Tensor, in_x: torch.Tensor) -> torch.Tensor:
    """Biased MMD² of each relabelling given as a boolean mask (P, N+M) of the "x" rows: the
    quadratic form ``w^T K w`` with ``w = 1/n_x`` on "x" rows and ``-1/n_y`` on the others."""
    n_x = in_x.sum(dim=1, keepdim=True).to(K.dtype)
    n_y = in_x.shape[1] - n_x
    w = torch.where(in_x, 1.0 / n_x, -1.0 / n_y).to(K.dtype)
    return ((w @ K) * w).sum(dim=1)


def permutation_null(K: torch.Tensor, n: int, perms: torch.Tensor) -> torch.Tensor:
    """Biased MMD² of every relabelling in ``perms`` (P, N+M): (P,), from one kernel matrix K.

    Equal to ``mmd2_from_kernel(K[p][:, p], n)`` for each row p (tested), but computed as the
    quadratic form ``w_p^T K w_p`` with ``w_p = 1/n`` on the rows p labels "x" and ``-1/m`` on
    the others: one (P, N+M) x (N+M, N+M) product instead of P permuted copies of K (over 100x
    faster at 1,024 samples a side, 200 permutations).
    """
    in_x = torch.zeros(perms.shape, dtype=torch.bool, device=K.device)
    in_x.scatter_(1, perms[:, :n].to(K.device), True)
    return _null_from_masks(K, in_x)


def group_codes(groups, n: int) -> np.ndarray:
    """Integer codes (n,) of ``groups`` (e.g. video ids); every row its own group for None."""
    if groups is None:
        return np.arange(n)
    return np.unique(np.asarray(groups).astype(str), return_inverse=True)[1].reshape(-1)


def _test_from_kernel(
    K: torch.Tensor, n: int, n_perm: int, seed: int, codes: np.ndarray | None = None
) -> dict:
    """Observed MMD² (``mmd2_from_kernel``) and its permutation p-value, K in float64.

    ``codes`` (N+M,) group the rows (videos): a permutation relabels whole groups, keeping the
    observed number of groups on the "x" side, so frames of one video always move together.
    """
    m = K.shape[0] - n
    if n < MIN_PER_SIDE or m < MIN_PER_SIDE:
        return {"mmd2": None, "p_value": None, "n_source": n, "n_target": m}
    codes = np.arange(n + m) if codes is None else np.unique(codes, return_inverse=True)[1]
    n_groups, g_x = int(codes.max()) + 1, len(np.unique(codes[:n]))
    if np.intersect1d(codes[:n], codes[n:]).size:
        raise ValueError("a group (video) has rows on both sides of the test")
    observed = float(mmd2_from_kernel(K, n, ESTIMATOR))
    gen = torch.Generator().manual_seed(seed)
    ranks = torch.rand(n_perm, n_groups, generator=gen).argsort(dim=1).argsort(dim=1)
    in_x = (ranks < g_x)[:, torch.as_tensor(codes)].to(K.device)
    null = _null_from_masks(K, in_x)
    # ties count as at least as extreme (conservative); the tolerance absorbs summation order
    hits = int((null >= observed - 1e-9 * max(abs(observed), 1e-12)).sum())
    p_value = (1 + hits) / (1 + n_perm)
    return {"mmd2": observed, "p_value": p_value, "n_source": n, "n_target": m,
            "n_units": n_groups}  # fmt: skip


def permutation_test(
    x,
    y,
    *,
    n_perm: int = 200,
    seed: int = 0,
    device: str | torch.device = "cpu",
    groups_x=None,
    groups_y=None,
) -> dict:
    """MMD² of x (N, D) vs y (M, D) and its permutation p-value (Gretton et al. 2012, sec. 5).

    The kernel matrix is computed once; each permutation only relabels which of its rows are
    "x" (``permutation_null``). ``groups_x`` (N,) / ``groups_y`` (M,) name each row's video:
    permutations then move whole videos (the exchangeable unit); without them every row is its
    own unit. ``p = (1 + #{null >= observed}) / (1 + n_perm)``: never 0, and a valid test for
    any number of permutations. Returns mmd2, p_value, n_source, n_target, n_units.
    """
    if len(x) < MIN_PER_SIDE or len(y) < MIN_PER_SIDE:
        return {"mmd2": None, "p_value": None, "n_source": len(x), "n_target": len(y)}
    K = kernel_matrix(x, y, device).double()
    return _test_from_kernel(
        K, len(x), n_perm, seed, _pooled_codes(groups_x, groups_y, len(x), len(y))
    )


def _pooled_codes(gx, gy, n: int, m: int) -> np.ndarray | None:
    if gx is None and gy is None:
        return None
    gx = np.arange(n).astype(str) if gx is None else np.asarray(gx).astype(str)
    gy = np.arange(m).astype(str) if gy is None else np.asarray(gy).astype(str)
    return group_codes(np.r_[np.char.add("x:", gx), np.char.add("y:", gy)], n + m)


def proxy_a_distance(
    x: np.ndarray, y: np.ndarray, *, seed: int = 0, folds: int = 5, groups_x=None, groups_y=None
) -> dict:
    """Proxy A-distance (Ben-David et al. 2007/2010): ``2 (1 - 2 err)``, kernel-free.

    ``err`` is one minus the cross-validated balanced accuracy of a logistic-regression domain
    classifier (classes weighted by size, so chance is 0.5 whatever the two sides' sizes) on
    standardised, L2-normalised embeddings. The ``folds`` folds are stratified by side and
    grouped by ``groups_x`` / ``groups_y`` (subject or video of each row; every row its own
    group without them), so no group is in a training and a test fold; each side needs at least
    ``folds`` groups. ``err`` is capped at 0.5, so the value lies in [0, 2]: 0 = indistinguishable
    domains, 2 = perfectly separable.
    """
    codes = _pooled_codes(groups_x, groups_y, len(x), len(y))
    codes = np.arange(len(x) + len(y)) if codes is None else codes
    n_groups = min(len(np.unique(codes[: len(x)])), len(np.unique(codes[len(x) :])))
    if n_groups < folds:
        return {"proxy_a_distance": None, "domain_error": None, "n_per_side": min(len(x), len(y)),
                "n_groups": n_groups}  # fmt: skip
    z = F.normalize(torch.as_tensor(np.concatenate([x, y]), dtype=torch.float32), dim=1).numpy()
    d = np.r_[np.zeros(len(x)), np.ones(len(y))]
    clf = make_pipeline(
        StandardScaler(), LogisticRegression(C=1.0, max_iter=1000, class_weight="balanced")
    )
    cv = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
    # one BLAS thread: L-BFGS makes hundreds of tiny BLAS calls, and on a busy machine
    # OpenBLAS's thread hand-offs made them ~30x slower than running them on one core
    with threadpool_limits(1, user_api="blas"):
        acc = cross_val_score(clf, z, d, groups=codes, cv=cv, scoring="balanced_accuracy")
    err = min(0.5, 1.0 - float(acc.mean()))
    return {"proxy_a_distance": 2.0 * (1.0 - 2.0 * err), "domain_error": err,
            "n_per_side": min(len(x), len(y)), "n_groups": n_groups}  # fmt: skip


def sample_sides(
    samples: pd.DataFrame, n_per_side: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded subsample of source and target row positions (sorted), by whole videos when the
    samples have a ``video`` column: videos in random order, each with all its rows, while the
    side stays within ``n_per_side`` rows (at least one video); by rows otherwise."""
    rng = np.random.default_rng(seed)
    out = []
    for role in ("source", "target"):
        rows = np.flatnonzero(samples["role"].to_numpy() == role)
        if len(rows) > n_per_side and "video" in samples:
            videos = samples["video"].to_numpy()[rows]
            ids, inv, counts = np.unique(videos, return_inverse=True, return_counts=True)
            order = rng.permutation(len(ids))
            keep = order[: max(1, int((np.cumsum(counts[order]) <= n_per_side).sum()))]
            rows = rows[np.isin(inv, keep)]
        elif len(rows) > n_per_side:
            rows = np.sort(rng.choice(rows, n_per_side, replace=False))
        out.append(rows)
    return out[0], out[1]


def _units(samples: pd.DataFrame, column: str) -> np.ndarray | None:
    if column in samples and (samples[column].astype(str).str.strip() != "").all():
        return samples[column].to_numpy()
    return None


def view_statistics(
    zs: np.ndarray,
    zt: np.ndarray,
    ls: np.ndarray,
    lt: np.ndarray,
    *,
    n_perm: int = 200,
    seed: int = 0,
    device: str | torch.device = "cpu",
    videos: tuple[np.ndarray, np.ndarray] | None = None,
    folds_by: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict:
    """One view: zs (N, D) source and zt (M, D) target embeddings, ls/lt their labels.

    Returns the overall MMD² test, the same per class (live vs live, spoof vs spoof; their
    kernels are blocks of the view's one kernel matrix) and the proxy A-distance. ``videos``
    (source, target) name each row's exchangeable unit (subject, or video): they group the
    permutations and, unless ``folds_by`` says otherwise, the proxy A-distance's folds; without
    them each row is its own unit.
    """
    vs, vt = videos or (None, None)
    fs, ft = folds_by or (vs, vt)
    if len(zs) < MIN_PER_SIDE or len(zt) < MIN_PER_SIDE:
        out = permutation_test(zs, zt)
        out["per_class"] = {c: permutation_test(zs[ls == c], zt[lt == c]) for c in CLASSES}
    else:
        K = kernel_matrix(zs, zt, device).double()
        codes = _pooled_codes(vs, vt, len(zs), len(zt))
        out = _test_from_kernel(K, len(zs), n_perm, seed, codes)
        out["per_class"] = {}
        for c in CLASSES:
            rows = np.r_[np.flatnonzero(ls == c), len(zs) + np.flatnonzero(lt == c)]
            idx = torch.as_tensor(rows).to(K.device)
            Kc = K.index_select(0, idx).index_select(1, idx)
            sub = None if codes is None else codes[rows]
            out["per_class"][c] = _test_from_kernel(Kc, int((ls == c).sum()), n_perm, seed, sub)
    out.update(proxy_a_distance(zs, zt, seed=seed, groups_x=fs, groups_y=ft))
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
    videos = _units(samples, "video")
    subjects = _units(samples, "subject")
    units = subjects if subjects is not None else videos  # the exchangeable unit (see above)
    views = {}
    for view in views_for(embeddings):
        a, b = VIEWS[view]
        zs, zt = embeddings[a][src], embeddings[b][tgt]
        stats = view_statistics(
            zs, zt, labels[src], labels[tgt], n_perm=n_perm, seed=seed, device=device,
            videos=None if units is None else (units[src], units[tgt]),
        )  # fmt: skip
        views[view] = {"models": [a, b], **stats}
    sampling = {
        "n_per_side": n_per_side,
        "n_source": len(src),
        "n_target": len(tgt),
        "seed": seed,
        "permutations": n_perm,
        "unit": "subject" if subjects is not None else ("video" if videos is not None else "frame"),
        "pad_folds_by": "subject"
        if subjects is not None
        else ("video" if videos is not None else "frame"),
        "splits": sorted(samples["split"].astype(str).unique()) if "split" in samples else [],
    }
    return {"views": views, "sampling": sampling, "kernel": KERNEL}
