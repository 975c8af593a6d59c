"""Nearest source neighbours of target samples, under the teacher's and the student's embedding.

A target spoof whose nearest source samples under the student are source *lives* is the picture
of a failed alignment: the student maps it where the source's genuine faces are. Similarity is
the cosine of the stored embeddings (the geometry the MMD statistics use); the reference set is
the source samples the run's analysis embedded (its source test split: the run stores no
embeddings of the source training split).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

K = 5
COLUMNS = ["model", "rank", "sample", "label", "attack", "domain", "similarity", "path"]


def source_rows(samples: pd.DataFrame) -> np.ndarray:
    """Row positions of the reference set: every source sample on the maps."""
    return np.flatnonzero(samples["role"].to_numpy() == "source")


def neighbours(
    samples: pd.DataFrame, embeddings: dict[str, np.ndarray], row: int, k: int = K
) -> pd.DataFrame:
    """The ``k`` most similar source samples to sample ``row`` under each model (``COLUMNS``),
    the sample itself excluded. ``embeddings`` {model: (N, D)} L2-normalised, rows as samples."""
    ref = source_rows(samples)
    ref = ref[ref != row]
    parts = []
    for model, z in embeddings.items():
        sim = z[ref] @ z[row]
        top = np.argsort(-sim, kind="stable")[:k]
        hit = samples.iloc[ref[top]]
        parts.append(pd.DataFrame({
            "model": model, "rank": np.arange(1, len(top) + 1), "sample": hit["sample"].to_numpy(),
            "label": hit["label"].to_numpy(), "attack": hit["attack"].to_numpy(),
            "domain": hit["domain"].to_numpy(), "similarity": sim[top].astype(float),
            "path": hit["path"].to_numpy(),
        }))  # fmt: skip
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)


def live_neighbour_share(
    samples: pd.DataFrame, z: np.ndarray, rows: np.ndarray, k: int = K, chunk: int = 2048
) -> np.ndarray:
    """For each of ``rows``: the share (0..1) of its ``k`` nearest source samples (under the
    embedding z (N, D), L2-normalised) that are live. Chunked: memory O(chunk x n_source)."""
    ref = source_rows(samples)
    live = (samples["label"].to_numpy()[ref] == "live").astype(float)
    out = np.empty(len(rows))
    for start in range(0, len(rows), chunk):
        part = np.asarray(rows[start : start + chunk])
        sim = z[part] @ z[ref].T
        sim[ref[None, :] == part[:, None]] = -np.inf  # never its own neighbour
        kk = min(k, len(ref))
        top = np.argpartition(-sim, kk - 1, axis=1)[:, :kk]
        out[start : start + len(part)] = live[top].mean(axis=1)
    return out


def alignment_summary(samples: pd.DataFrame, embeddings: dict[str, np.ndarray], k: int = K):
    """Per model and target class: the mean share of live source neighbours of the target test
    samples, split by whether the model's decision is right (``{model}_right``)."""
    target = np.flatnonzero((samples["role"] == "target").to_numpy())
    rows = []
    for model, z in embeddings.items():
        share = live_neighbour_share(samples, z, target, k)
        sub = samples.iloc[target]
        right = sub.get(f"{model}_right", pd.Series(np.nan, index=sub.index)).astype("boolean")
        frame = pd.DataFrame({"label": sub["label"].to_numpy(), "right": right.to_numpy(),
                              "share": share})  # fmt: skip
        for (label, ok), g in frame.dropna().groupby(["label", "right"]):
            rows.append({"model": model, "target label": label,
                         "decision": "right" if ok else "wrong", "n": len(g),
                         f"live share of {k} source neighbours": float(g["share"].mean())})  # fmt: skip
    return pd.DataFrame(rows)
