"""The Shift debugger's per-epoch scores: which selected samples the tracker followed, and their
P(spoof) per epoch as a tidy frame, from files with and without stored scores."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fascore.eval.analysis.embed import pack_epochs
from fascore.eval.shift.epochs import COLUMNS, epoch_scores

TRACKED = [10, 11, 12, 13]


def _file(scores: bool = True) -> dict[str, np.ndarray]:
    """Three epochs of a four-sample tracked subset; sample s scores (s + epoch) / 100."""
    meta = pd.DataFrame({
        "sample": TRACKED, "role": ["source", "source", "target", "target"],
        "domain": ["studio", "studio", "phone", "phone"], "label": ["live", "spoof"] * 2,
        "attack": ["none", "print", "none", "replay"], "path": [f"/{s}.png" for s in TRACKED],
    })  # fmt: skip
    epochs = [1, 2, 3]
    emb = {"student": [np.zeros((4, 2))] * 3}
    per = {"student": [(np.array(TRACKED) + e) / 100 for e in epochs]}
    arrays = pack_epochs(epochs, emb, meta, per if scores else None)
    return {k: np.asarray(v) for k, v in arrays.items()}


def test_only_tracked_selected_samples_get_curves_in_the_order_given():
    out = epoch_scores(_file(), [13, 99, 10, 13, 7], "student")
    assert (out.selected, out.tracked, out.shown, out.stored) == (4, 2, 2, True)
    assert list(out.frame.columns) == COLUMNS
    assert out.frame["sample"].tolist() == [13, 13, 13, 10, 10, 10]
    assert out.frame["epoch"].tolist() == [1, 2, 3] * 2
    assert np.allclose(out.frame["score"], [0.14, 0.15, 0.16, 0.11, 0.12, 0.13], atol=1e-6)
    assert out.frame["attack"].tolist() == ["replay"] * 3 + ["none"] * 3
    assert out.frame["role"].unique().tolist() == ["target", "source"]


def test_at_most_limit_curves_and_unknown_epochs_dropped():
    arrays = _file()
    arrays["score_student"][0, 1] = np.nan  # an epoch from before a resume: not scored
    out = epoch_scores(arrays, TRACKED, "student", limit=2)
    assert (out.tracked, out.shown) == (4, 2)
    assert out.frame.groupby("sample")["epoch"].apply(list).to_dict() == {
        10: [1, 2, 3],
        11: [2, 3],
    }


def test_a_run_before_per_epoch_scores_or_without_tracking_has_no_curve():
    old = epoch_scores(_file(scores=False), [10, 12, 99], "student")
    assert (old.stored, old.tracked, old.shown, len(old.frame)) == (False, 2, 0, 0)
    assert list(old.frame.columns) == COLUMNS
    assert not epoch_scores(_file(), [10], "teacher").stored  # no such model tracked
    none = epoch_scores(None, [1, 2], "student")
    assert (none.stored, none.selected, none.tracked) == (False, 2, 0)
