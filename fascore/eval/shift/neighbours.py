"""Nearest source neighbours of target samples, under the teacher's and the student's embedding.

A target spoof whose nearest source samples under the student are source *lives* is the picture
of a failed alignment: the student maps it where the source's genuine faces are. Similarity is
the cosine of L2-normalised embeddings (the geometry the MMD statistics use); the reference set
is the source domain's training samples (``fascore.eval.shift.reference``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

K = 5
COLUMNS = ["model", "rank", "row", "label", "attack", "domain", "similarity", "path"]


def nearest(query: np.ndarray, ref: np.ndarray, k: int = K, chunk: int = 2048):
    """Indices (n, k) into ``ref`` (R, D) of each query row's (n, D) ``k`` most similar rows,
    most similar first, and their cosines (n, k); rows are unit vectors. Memory O(chunk x R)."""
    query = np.atleast_2d(query)
    kk = min(k, len(ref))
    idx = np.empty((len(query), kk), dtype=np.int64)
    sim = np.empty((len(query), kk))
    for start in range(0, len(query), chunk):
        s = query[start : start + chunk] @ ref.T
        top = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        order = np.argsort(-np.take_along_axis(s, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        idx[start : start + len(s)] = top
        sim[start : start + len(s)] = np.take_along_axis(s, top, axis=1)
    return idx, sim


def neighbours(
    ref_samples: pd.DataFrame, ref_emb: dict[str, np.ndarray], query: dict[str, np.ndarray], k=K
) -> pd.DataFrame:
    """The ``k`` most similar reference samples to one sample under each model (``COLUMNS``;
    ``row`` indexes ``ref_samples``). ``query`` {model: (D,)} unit vectors."""
    parts = []
    for model, z in query.items():
        idx, sim = nearest(z, ref_emb[model], k)
        hit = ref_samples.iloc[idx[0]]
        parts.append(pd.DataFrame({
            "model": model, "rank": np.arange(1, len(hit) + 1), "row": idx[0],
            "label": hit["label"].to_numpy(), "attack": hit["attack"].to_numpy(),
            "domain": hit["domain"].to_numpy(), "similarity": sim[0], "path": hit["path"].to_numpy(),
        }))  # fmt: skip
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)


def live_share(ref_labels: np.ndarray, ref_z: np.ndarray, query_z: np.ndarray, k: int = K):
    """For each query row (n, D): the share (0..1) of its ``k`` nearest reference rows that
    are live."""
    idx, _ = nearest(query_z, ref_z, k)
    return (np.asarray(ref_labels)[idx] == "live").mean(axis=1)


def alignment_summary(
    samples: pd.DataFrame, embeddings: dict, ref_samples: pd.DataFrame, ref_emb: dict, k: int = K
) -> pd.DataFrame:
    """Per model, target label and decision (``{model}_right``): how many target test samples
    and the mean share of live faces among their ``k`` nearest source training samples."""
    target = np.flatnonzero(
        ((samples["role"] == "target") & (samples["split"] == "test")).to_numpy()
    )
    rows = []
    for model, z in embeddings.items():
        share = live_share(ref_samples["label"].to_numpy(), ref_emb[model], z[target], k)
        sub = samples.iloc[target]
        right = sub.get(f"{model}_right", pd.Series(np.nan, index=sub.index)).astype("boolean")
        frame = pd.DataFrame({"label": sub["label"].to_numpy(), "right": right.to_numpy(),
                              "share": share})  # fmt: skip
        for (label, ok), g in frame.dropna().groupby(["label", "right"]):
            rows.append({"model": model, "target label": label,
                         "decision": "right" if ok else "wrong", "n": len(g),
                         f"live share of {k} source neighbours": float(g["share"].mean())})  # fmt: skip
    return pd.DataFrame(rows)
