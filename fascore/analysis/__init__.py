"""Analysis of a run: embeddings, domain-alignment statistics, 2-D maps, Grad-CAM, error sets.

Computed here (library and ``python -m fascore analyse``) and stored in the run folder, so the
dashboard only reads files. ``analyse_run`` and ``EpochTracker`` are the trainer's hooks.
"""

from fascore.analysis.embed import EpochTracker, analyse_run, embed, finish_epochs
from fascore.analysis.gradcam import explain_samples, gradcam, overlay

__all__ = [
    "EpochTracker",
    "analyse_run",
    "embed",
    "explain_samples",
    "finish_epochs",
    "gradcam",
    "overlay",
]
