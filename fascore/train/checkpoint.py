"""Every weights file of a run: the resumable checkpoint and the selected (best) weights.

Both are written atomically and loaded with ``weights_only=True`` (a checkpoint never runs code).
A checkpoint holds the trained model, the optimizer, the LR scheduler, the AMP scaler, the RNG
states (torch CPU and CUDA, and the data streams' generators and unbatched positions) and the
selection state, so a killed run continues exactly where it stopped (the same batches, the same
augmentation) and never executes code when loaded.
"""

from __future__ import annotations

import torch

from fascore.atomic import atomic_path
from fascore.config import RunConfig
from fascore.errors import FascoreError
from fascore.store.runs import Run, RunStore
from fascore.train.methods import METHODS
from fascore.train.models import FASModel, create_model


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
        "streams_pending": [s.pending for s in streams],
        "best": {r: [int(b["epoch"]), float(b["score"])] for r, b in best.items()},
    }
    with atomic_path(run.file("checkpoint")) as tmp:
        torch.save(state, tmp)


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
    for stream, pending in zip(streams, state.get("streams_pending", []), strict=False):
        stream.pending = pending  # older checkpoints lack it: those streams start a new pass
    best = {r: {"epoch": int(e), "score": float(v)} for r, (e, v) in state.get("best", {}).items()}
    return int(state["epoch"]), best


def save_best(run: Run, model: torch.nn.Module, epoch: int, key: str = "best") -> None:
    """Write selected weights (``best``: the headline regime's, ``best_alt``: the other's) as
    the model's state dict and its epoch."""
    with atomic_path(run.file(key)) as tmp:
        torch.save({"model": model.state_dict(), "epoch": epoch}, tmp)


def load_best(run: Run, key: str = "best") -> dict[str, torch.Tensor]:
    """A selected weights file's state dict (CPU tensors)."""
    return torch.load(run.file(key), map_location="cpu", weights_only=True)["model"]


def load_run_model(run: Run, device: str | torch.device = "cpu") -> FASModel:
    """The selected weights of a finished run, in eval mode (``weights_only`` loading)."""
    cfg = RunConfig.from_dict(run.config())
    if not run.has("best"):
        raise FascoreError(f"run {run.id} has no trained weights yet (state: {run.state()})")
    try:
        model = create_model(cfg.model, input_size=cfg.image_size, embed_layer=cfg.embed_layer)
        model.load_state_dict(load_best(run))
    except (RuntimeError, OSError, KeyError, EOFError, ValueError) as err:
        raise FascoreError(
            f"the weights of run {run.id} are damaged ({type(err).__name__}); retrain the run"
        ) from None
    return model.to(device).eval()


def load_models(run: Run, device: str | torch.device = "cpu") -> dict[str, FASModel]:
    """A run's models in eval mode: ``teacher`` and, for a student run, ``student``."""
    cfg = RunConfig.from_dict(run.config())
    own = load_run_model(run, device)
    if METHODS.get(cfg.method).role == "teacher":
        return {"teacher": own}
    out = {"student": own}
    if cfg.teacher:
        out = {"teacher": load_run_model(RunStore(run.path.parent).get(cfg.teacher), device), **out}
    return out
