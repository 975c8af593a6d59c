"""The analysis a training job runs: per-epoch embeddings of a fixed subset, then the full analysis.

The trainer (``fascore.train.loop.train``) sits below this layer and knows only the small
``Analysis`` protocol it defines; the train command and the demo pass ``RunAnalysis()`` in.
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from fascore.eval.analysis.embed import EpochTracker, analyse_run
from fascore.store.runs import Run


class RunAnalysis:
    """``start`` once the data is loaded, ``epoch`` after every evaluation, ``finish`` at the end."""

    def __init__(self) -> None:
        self.tracker: EpochTracker | None = None

    def start(self, run: Run, samples: pd.DataFrame, images: torch.Tensor, seed: int) -> None:
        self.tracker = EpochTracker(run, samples, images, seed=seed)

    def epoch(self, epoch: int, models: dict[str, nn.Module]) -> float | None:
        """The headline MMD² after ``epoch`` (for the metrics line)."""
        return self.tracker.update(epoch, models) if self.tracker else None

    def finish(
        self,
        run: Run,
        models: dict[str, nn.Module],
        samples: pd.DataFrame,
        images: torch.Tensor,
        *,
        device: str,
        seed: int,
        threshold: float | None,
    ) -> None:
        if self.tracker is not None:
            self.tracker.finish()
        analyse_run(run, models, samples, images, device=device, seed=seed, threshold=threshold)
