"""How much memory one training step needs, estimated before training starts, and one readable
refusal, with the estimate and the machine's free memory, of a step that cannot fit.

    step bytes = MARGIN x (16 x P_student + 4 x P_teacher + 4 x A x images + 3 x S^2 x 4 x images)

P are parameter counts: the student keeps weights, gradients and Adam's two moments (4 floats
each), the frozen teacher only its weights. A is the activations one image leaves for the
backward pass: the sum of every leaf module's output size in one forward pass of one S x S image,
traced on PyTorch's meta device (shapes only: no memory, no compute). images = batch_size x the
method's streams (a source and a target batch for methods that learn from the target) / the
number of processes. MARGIN covers the allocator's rounding, cuDNN workspaces and the teacher's
transient activations. The step must fit in the CUDA device's total memory (a GPU job waits for
its device slot, so what others hold at its start does not count), elsewhere in the machine's
available RAM. ``FASCORE_MEMORY_CHECK=0`` skips the refusal (e.g. when swap or unified memory is
meant to absorb it).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import psutil
import torch
from torch import nn

from fascore.config import RunConfig
from fascore.devices import resolve_device
from fascore.errors import FascoreError
from fascore.train.methods import METHODS
from fascore.train.models import create_model

CHECK_ENV = "FASCORE_MEMORY_CHECK"
MARGIN = 1.25
FLOAT = 4  # bytes: training runs in float32 (mixed precision only lowers the need)


@dataclass(frozen=True)
class Estimate:
    """One step's memory need, in bytes, and what it is made of."""

    params: int  # bytes of the student's weights, gradients and optimizer state, and the teacher
    activations: int  # bytes of the activations kept for the backward pass, and the inputs
    images: int  # images per step and process

    @property
    def total(self) -> int:
        return int(MARGIN * (self.params + self.activations))


@functools.cache
def model_sizes(model: str, image_size: int) -> tuple[int, int]:
    """(parameters, activation floats one image leaves for the backward pass) of ``model`` at
    ``image_size``, traced on the meta device."""
    with torch.device("meta"):
        net = create_model(model, input_size=image_size)
        outputs: list[int] = []

        def count(_m: nn.Module, _i: object, out: object) -> None:
            if isinstance(out, torch.Tensor):
                outputs.append(out.numel())

        leaves = [m for m in net.modules() if not any(m.children())]
        handles = [m.register_forward_hook(count) for m in leaves]
        net(torch.empty(1, 3, image_size, image_size))
        for h in handles:
            h.remove()
    return sum(p.numel() for p in net.parameters()), sum(outputs)


def estimate(cfg: RunConfig, processes: int = 1) -> Estimate:
    """One training step of ``cfg`` per process (see the module docstring)."""
    method = METHODS.get(cfg.method)
    params, acts = model_sizes(cfg.model, cfg.image_size)
    teacher = params if method.needs_teacher else 0  # the teacher shares the backbone family
    streams = 2 if method.uses_target and method.needs_teacher else 1
    images = max(1, cfg.batch_size * streams // max(1, processes))
    inputs = 3 * cfg.image_size**2 * images
    return Estimate(FLOAT * (4 * params + teacher), FLOAT * (acts * images + inputs), images)


def memory_bytes(device: str) -> tuple[int, int]:
    """(free, usable) bytes of ``device``. On CUDA, usable is the device's total: a local GPU job
    waits for its device slot, so what other jobs hold when it starts says nothing about when it
    trains. Elsewhere both are the machine's available RAM (CPU jobs share it as they run)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        free, total = torch.cuda.mem_get_info(dev)
        return int(free), int(total)
    available = int(psutil.virtual_memory().available)
    return available, available


def check_fits(cfg: RunConfig, processes: int = 1) -> None:
    """Refuse, before any run folder exists, a step that needs more memory than ``device`` has
    to give it (``memory_bytes``), with the estimate and the free memory in one line."""
    if os.environ.get(CHECK_ENV, "1") == "0":
        return
    need, device = estimate(cfg, processes), resolve_device(cfg.device)
    free, usable = memory_bytes(device)
    if need.total > usable:
        has = f"{free / 2**30:.1f} GB free" + (
            f" of {usable / 2**30:.1f} GB" if usable != free else ""
        )
        raise FascoreError(
            f"a training step of {cfg.model} at {cfg.image_size}px with {need.images} images "
            f"needs about {need.total / 2**30:.1f} GB, but {device} has {has}; lower "
            f"--batch-size or --image-size (or set {CHECK_ENV}=0 to train anyway)"
        )
