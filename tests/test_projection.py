"""2-D maps: the PCA fallback, duplicate handling, view composition and a real UMAP fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fascore.eval.analysis.projection import COLUMNS, META, project, projection_table, view_points


def _clusters(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    centres = np.zeros((2, d))
    centres[0, 0], centres[1, 1] = 4.0, 4.0
    return (centres[labels] + rng.normal(0, 0.3, (n, d))).astype(np.float32), labels


def test_pca_map_shape_determinism_and_record():
    z, labels = _clusters(80, 12)
    xy, info = project(z, method="pca", seed=0)
    assert xy.shape == (80, 2)
    assert np.array_equal(xy, project(z, method="pca", seed=0)[0])
    assert info["method"] == "pca" and info["n"] == 80 and info["pca_dims"] == 2
    # two clusters 90 degrees apart on the unit sphere lie apart along the first component
    assert abs(xy[labels == 0, 0].mean() - xy[labels == 1, 0].mean()) > 1.0


def test_duplicates_are_fitted_once_and_share_a_point():
    z, _ = _clusters(20, 6)
    xy, info = project(np.concatenate([z, z]), method="pca")
    assert info["n"] == 40 and info["n_unique"] == 20
    assert np.array_equal(xy[:20], xy[20:])


def test_too_few_points_fall_back_to_pca_and_say_so():
    z, _ = _clusters(6, 4)
    xy, info = project(z, method="umap")
    assert xy.shape == (6, 2) and np.isfinite(xy).all()
    assert info["method"] == "pca" and "PCA instead of UMAP" in info["note"]
    assert project(z[:1], method="pca")[0].shape == (1, 2)
    assert project(z[:0], method="pca")[0].shape == (0, 2)
    with pytest.raises(ValueError):
        project(z, method="tsne")


@pytest.mark.slow
def test_umap_keeps_clusters_apart_and_is_seeded():
    z, labels = _clusters(300, 64, seed=1)
    xy, info = project(z, method="umap", seed=3)
    assert info["method"] == "umap" and info["pca_dims"] == 50 and info["n_neighbors"] == 15
    centres = np.stack([xy[labels == c].mean(0) for c in (0, 1)])
    nearest = np.argmin(((xy[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    assert (nearest == labels).mean() == 1.0
    assert np.allclose(xy, project(z, method="umap", seed=3)[0])


def _meta(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sample": np.arange(n),
            "role": ["source"] * (n // 2) + ["target"] * (n - n // 2),
            "domain": ["studio"] * (n // 2) + ["phone"] * (n - n // 2),
            "label": ["live", "spoof"] * (n // 2),
            "attack": ["none", "print"] * (n // 2),
            "path": [f"/img/{i}.png" for i in range(n)],
        }
    )


def test_view_points_take_source_from_one_model_and_target_from_the_other():
    meta = _meta(10)
    emb = {"teacher": np.zeros((10, 3)), "student": np.ones((10, 3))}
    src, tgt = np.arange(5), np.arange(5, 10)
    z, rows = view_points(emb, meta, "aligned", src, tgt)
    assert (z[:5] == 0).all() and (z[5:] == 1).all()
    assert list(rows["model"]) == ["teacher"] * 5 + ["student"] * 5
    assert list(rows["sample"]) == list(range(10))
    assert set(META) <= set(rows.columns)


def test_projection_table_columns_and_extra_columns():
    z, _ = _clusters(12, 5)
    meta = _meta(12)
    _, rows = view_points({"teacher": z}, meta, "shift", np.arange(6), np.arange(6, 12))
    table, info = projection_table(z, rows.assign(epoch=3), "shift", method="pca")
    assert list(table.columns) == COLUMNS + ["epoch"]
    assert (table["view"] == "shift").all() and (table["epoch"] == 3).all()
    assert table[["x", "y"]].notna().all().all()
