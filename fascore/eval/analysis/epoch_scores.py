"""The per-epoch scores of ``epoch_embeddings``: one ``score_<model>`` array (E, n) float32 of
P(spoof) per model, row e = epoch e, column i = tracked sample i (``meta_sample``).

Numpy only, so the dashboard reads the scores without importing torch; ``embed.pack_epochs``
writes them through ``pack_scores``. A run folder written before the tracker stored scores has
no such array: ``unpack_scores`` then returns an empty dict.
"""

from __future__ import annotations

import numpy as np

PREFIX = "score_"


def pack_scores(scores: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    """{model: E arrays (n,)} -> {``score_<model>``: (E, n) float32} (NaN: epoch not scored)."""
    return {f"{PREFIX}{m}": np.stack(v).astype(np.float32) for m, v in scores.items() if v}


def unpack_scores(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """{model: (E, n) float32} from an ``epoch_embeddings`` file; {} for a file without scores."""
    return {
        k[len(PREFIX) :]: np.asarray(v, dtype=np.float32)
        for k, v in arrays.items()
        if k.startswith(PREFIX)
    }
