"""The selected samples' P(spoof) epoch by epoch, from the run's per-epoch tracker.

The tracker (``fascore.eval.analysis.embed.EpochTracker``) follows a fixed, seeded, balanced
subset of the analysis samples (up to 128 per domain), so only the selected samples inside it
have a curve. ``epoch_scores`` turns the stored ``epoch_embeddings`` arrays into a tidy frame,
one row per (sample, epoch); a run folder written before the tracker stored scores yields none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fascore.eval.analysis.epoch_scores import unpack_scores

MAX_LINES = 50  # curves drawn at most (the first of the selection in the order given)
COLUMNS = ["sample", "epoch", "score", "role", "label", "attack"]


@dataclass
class EpochScores:
    """``frame`` (``COLUMNS``, NaN scores dropped) of the ``shown`` selected samples; ``tracked``
    selected samples are in the subset; ``stored``: the run has per-epoch scores of ``model``."""

    frame: pd.DataFrame
    model: str
    selected: int
    tracked: int
    shown: int
    stored: bool


def epoch_scores(
    arrays: dict[str, np.ndarray] | None, ids, model: str, limit: int = MAX_LINES
) -> EpochScores:
    """Per-epoch P(spoof) by ``model`` of the selected sample ids ``ids`` (in priority order: the
    first ``limit`` tracked ones are kept) from an ``epoch_embeddings`` file (None: none)."""
    ids = pd.unique(np.asarray(ids, dtype=np.int64))
    arrays = arrays or {}
    scores = unpack_scores(arrays).get(model)
    tracked_ids = np.asarray(arrays.get("meta_sample", np.zeros(0)), dtype=np.int64)
    tracked = ids[np.isin(ids, tracked_ids)]
    empty = pd.DataFrame({c: [] for c in COLUMNS})
    if scores is None or not len(tracked):
        return EpochScores(empty, model, len(ids), len(tracked), 0, scores is not None)
    shown = tracked[:limit]
    col = {s: i for i, s in enumerate(tracked_ids)}
    cols = np.array([col[s] for s in shown])
    epochs = np.asarray(arrays["epochs"], dtype=np.int64)
    frame = pd.DataFrame(
        {
            "sample": np.repeat(shown, len(epochs)),
            "epoch": np.tile(epochs, len(shown)),
            "score": scores[:, cols].T.ravel().astype(float),
            **{
                c: np.repeat(np.asarray(arrays[f"meta_{c}"]).astype(str)[cols], len(epochs))
                for c in COLUMNS[3:]
            },
        }
    )
    frame = frame.dropna(subset=["score"]).reset_index(drop=True)
    return EpochScores(frame, model, len(ids), len(tracked), len(shown), True)
