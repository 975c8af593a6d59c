"""2-D maps of embeddings for the UMAP views: L2-normalise, PCA, then UMAP (or PCA to 2).

Recipe (McInnes et al. 2018; PCA first is umap-learn's advice for wide inputs): rows are
L2-normalised (the geometry the MMD statistics use), exact duplicates are fitted once (a frozen
teacher embeds its samples identically at every epoch), PCA keeps ``min(50, D, N - 1)``
dimensions, and UMAP (15 neighbours, min_dist 0.1, 200 epochs, seeded, so one thread) maps to 2-D.
The k-nearest-neighbour graph is computed exactly with scikit-learn and handed to UMAP: for a few
thousand points that is faster than UMAP's own search and skips a JIT compile. ``method="pca"``
(``umap=False``) maps with the first two principal components instead; the record says which.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

from fascore.eval.analysis.alignment import VIEWS

PCA_DIMS = 50
N_NEIGHBORS = 15
MIN_DIST = 0.1
UMAP_EPOCHS = 200
MIN_UMAP_POINTS = 10  # below this the neighbour graph is too small; PCA is used and recorded
META = ["sample", "role", "domain", "label", "attack", "path"]
COLUMNS = ["view", "x", "y", "sample", "model", "role", "domain", "label", "attack", "path"]


def _l2(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float32)
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


def _pca(z: np.ndarray, dims: int, seed: int) -> np.ndarray:
    """(N, D) -> (N, dims); columns beyond what the data can give (N or D < dims) are zero."""
    k = min(dims, z.shape[0] - 1, z.shape[1])  # N points span at most N - 1 directions
    out = np.zeros((len(z), dims), dtype=np.float32)
    if k > 0:
        # the covariance route is exact and ~30x faster than randomized SVD for D <= 1024
        solver = "covariance_eigh" if z.shape[1] <= 1024 else "randomized"
        # one BLAS thread: at these sizes threads gain little, and on a busy machine their
        # hand-offs made a 256 x 256 eigh take seconds instead of milliseconds
        with threadpool_limits(1, user_api="blas"):
            out[:, :k] = PCA(k, svd_solver=solver, random_state=seed).fit_transform(z)
    return out


def _umap(x: np.ndarray, seed: int) -> np.ndarray:
    """(N, d) -> (N, 2) with umap-learn on an exact kNN graph (self included, as UMAP expects)."""
    import umap  # imported here: ~2 s, and only this function needs it

    k = min(N_NEIGHBORS, len(x) - 1)
    dist, idx = NearestNeighbors(n_neighbors=k).fit(x).kneighbors(x)
    reducer = umap.UMAP(
        n_neighbors=k,
        n_components=2,
        min_dist=MIN_DIST,
        n_epochs=UMAP_EPOCHS,
        random_state=seed,
        precomputed_knn=(idx, dist.astype(np.float32), None),
    )
    with warnings.catch_warnings():
        # "n_jobs overridden by random_state" and small-graph notices: expected, not actionable
        warnings.simplefilter("ignore")
        return reducer.fit_transform(x).astype(np.float32)


def project(
    z: np.ndarray, *, method: str = "umap", seed: int = 0, pca_dims: int = PCA_DIMS
) -> tuple[np.ndarray, dict]:
    """Embeddings z (N, D) -> coordinates (N, 2) and a record ``{method, n, n_unique, pca_dims,
    seed, ...}``. ``method`` is "umap" or "pca"."""
    if method not in ("umap", "pca"):
        raise ValueError(f"method must be 'umap' or 'pca', not {method!r}")
    z = _l2(z)
    info = {"method": method, "n": len(z), "seed": seed}
    if len(z) == 0:
        return np.zeros((0, 2), dtype=np.float32), info
    uniq, inverse = np.unique(z, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    info["n_unique"] = len(uniq)
    if method == "umap" and len(uniq) >= MIN_UMAP_POINTS:
        dims = min(pca_dims, uniq.shape[1], len(uniq) - 1)
        xy = _umap(_pca(uniq, dims, seed), seed)
        info.update(pca_dims=dims, n_neighbors=min(N_NEIGHBORS, len(uniq) - 1))
        info.update(min_dist=MIN_DIST, umap_epochs=UMAP_EPOCHS)
    else:
        if method == "umap":
            info["method"] = "pca"
            info["note"] = f"fewer than {MIN_UMAP_POINTS} distinct points: PCA instead of UMAP"
        xy = _pca(uniq, 2, seed)
        info["pca_dims"] = 2
    return xy[inverse], info


def view_points(
    embeddings: dict[str, np.ndarray],
    meta: pd.DataFrame,
    view: str,
    src: np.ndarray,
    tgt: np.ndarray,
) -> tuple[np.ndarray, pd.DataFrame]:
    """One view's points: the source rows ``src`` embedded by the view's source model, then the
    target rows ``tgt`` by its target model -> (n_s + n_t, D) and their ``META`` + ``model``."""
    a, b = VIEWS[view]
    z = np.concatenate([embeddings[a][src], embeddings[b][tgt]])
    rows = pd.concat([meta.iloc[src].assign(model=a), meta.iloc[tgt].assign(model=b)])
    return z, rows[META + ["model"]].reset_index(drop=True)


def projection_table(
    z: np.ndarray, rows: pd.DataFrame, view: str, *, method: str = "umap", seed: int = 0
) -> tuple[pd.DataFrame, dict]:
    """Fit one map on z (N, D) and return ``rows`` with ``view, x, y`` in ``COLUMNS`` order
    (plus any extra columns of ``rows``, e.g. ``epoch``) and the fit's record."""
    xy, info = project(z, method=method, seed=seed)
    table = rows.assign(view=view, x=xy[:, 0].astype(float), y=xy[:, 1].astype(float))
    extra = [c for c in rows.columns if c not in COLUMNS]
    return table[COLUMNS + extra].reset_index(drop=True), info
