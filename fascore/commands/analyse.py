"""``python -m fascore analyse RUN``: (re)compute a finished run's analysis from its folder.

The run's models come from its selected weights (and its teacher run's), the samples from its
``scores`` table (the test rows, as the trainer's own analysis uses) and the images from their
paths; the per-epoch part is recomputed from the stored ``epoch_embeddings`` when there are any.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from fascore.errors import FascoreError

if TYPE_CHECKING:
    import pandas as pd

    from fascore.store.runs import Run


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyse",
        help="(re)compute a finished run's embeddings, MMD statistics, UMAP and error sets",
        description="Recompute the analysis files of a finished run (embeddings, alignment "
        "statistics, 2-D maps, error sets). Example: python -m fascore analyse RUN_ID --no-umap",
    )
    p.add_argument("run", help="a run id (see `python -m fascore runs`)")
    p.add_argument("--no-umap", action="store_true", help="map with PCA only (fast, no UMAP)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ... (default cpu)")
    p.set_defaults(func=_analyse)


def analysis_inputs(run: Run) -> tuple[pd.DataFrame, object]:
    """The run's test samples (from its scores table) and their decoded images, readable rows
    only."""
    import numpy as np  # lazy: as load_images, not for `analyse --help`

    from fascore.data.images import load_images  # start-up cost: torch (~4 s), not for --help

    scores = run.read_table("scores")
    if scores is None or scores.empty:
        raise FascoreError(
            f"run {run.id} has no scores table; train it to the end first "
            f"(python -m fascore train --run {run.id} --resume)"
        )
    if (scores["split"] == "test").any():
        scores = scores[scores["split"] == "test"]
    samples = scores.reset_index(drop=True)
    size = int(run.config().get("image_size", 64))
    images = load_images(samples, size, log=lambda _msg: None)
    ok = images.ok.numpy()
    if not ok.any():
        raise FascoreError(
            f"none of run {run.id}'s images can be read (first: {samples['path'].iloc[0]}); "
            "were the data moved? Regenerate or restore them at the same paths"
        )
    return samples[ok].reset_index(drop=True), images.images[np.flatnonzero(ok)]


def _analyse(args: argparse.Namespace) -> int:
    from fascore.eval.analysis.embed import analyse_run, finish_epochs  # start-up cost: torch
    from fascore.store.runs import RunStore
    from fascore.train.checkpoint import load_models

    run = RunStore().get(args.run)
    if run.state() != "done":
        raise FascoreError(
            f"run {run.id} is {run.state()}, not done; analyse it once it has finished"
        )
    seed = int(run.config().get("seed", 0))
    models = load_models(run, args.device)
    samples, images = analysis_inputs(run)
    finish_epochs(run, umap=not args.no_umap, seed=seed)
    doc = analyse_run(
        run, models, samples, images, device=args.device, umap=not args.no_umap, seed=seed
    )
    print(f"analysed {run.id}: {len(samples)} samples, models {', '.join(models)}")
    for view, stats in doc["views"].items():
        mmd, p, pad = stats["mmd2"], stats["p_value"], stats["proxy_a_distance"]
        text = "n/a" if mmd is None else f"{mmd:.4f} (p={p:.3f})"
        pad_text = "n/a" if pad is None else f"{pad:.2f}"
        print(f"  {view:8s} MMD² {text}  proxy A-distance {pad_text}")
    return 0
