"""Analysis of a run: embeddings, domain-alignment statistics, 2-D maps, Grad-CAM, error sets.

Computed here (library and ``python -m fascore analyse``) and stored in the run folder, so the
dashboard only reads files. ``analyse_run`` and ``EpochTracker`` are the trainer's hooks; the
functions ``embed`` and ``gradcam`` share their submodules' names, so import them from there.

Names are imported on first use: the Grad-CAM page needs ``gradcam`` only, and the statistics
modules pull in scikit-learn (about 2 s), which it should not pay for.
"""

import importlib

_HOME = {
    "EpochTracker": "embed",
    "analyse_run": "embed",
    "finish_epochs": "embed",
    "explain_samples": "gradcam",
    "overlay": "gradcam",
}
__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'fascore.eval.analysis' has no attribute {name!r}")
    return getattr(importlib.import_module(f"fascore.eval.analysis.{_HOME[name]}"), name)
