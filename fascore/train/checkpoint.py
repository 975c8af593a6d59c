"""Resumable checkpoints: written atomically each epoch, loaded with ``weights_only=True``.

A checkpoint holds the trained model, the optimizer, the LR scheduler, the AMP scaler, the RNG
states (torch CPU and CUDA, and the data streams' generators) and the selection state, so a killed
run continues where it stopped and never executes code when loaded.
"""

from __future__ import annotations

import os

import torch

from fascore.errors import FascoreError
from fascore.runs import Run


def save_checkpoint(run: Run, method, sched, epoch: int, best: dict, streams=()) -> None:
    """Write ``checkpoint.pt`` via a temporary file and an atomic rename.

    ``best`` is the selection state, ``{regime: {"epoch", "score"}}`` (see ``fascore.train.regimes``).
    """
    state = {
        "epoch": epoch,
        "model": method.model.state_dict(),
        "optimizer": method.optimizer.state_dict(),
        "scheduler": sched.state_dict(),
        "scaler": method.scaler.state_dict(),
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "streams": [s.gen.get_state() for s in streams],
        "best": {r: [int(b["epoch"]), float(b["score"])] for r, b in best.items()},
    }
    target = run.file("checkpoint")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, target)


def load_checkpoint(run: Run, method, sched, streams=()) -> tuple[int, dict]:
    """Restore everything ``save_checkpoint`` wrote; returns (last epoch, best selection)."""
    try:
        state = torch.load(run.file("checkpoint"), map_location="cpu", weights_only=True)
    except Exception as err:  # a torn or foreign file: say which and what to do
        raise FascoreError(
            f"cannot load {run.file('checkpoint')}: {err}. Delete it to restart the run from scratch."
        ) from None
    method.model.load_state_dict(state["model"])
    method.optimizer.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    method.scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["rng_cpu"])
    if state["rng_cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng_cuda"])
    for stream, gen_state in zip(streams, state["streams"], strict=False):
        stream.gen.set_state(gen_state)
    best = {r: {"epoch": int(e), "score": float(v)} for r, (e, v) in state.get("best", {}).items()}
    return int(state["epoch"]), best
