"""A run's model, its frozen teacher and its method on the training device (the AMP path)."""

from __future__ import annotations

import torch

from fascore.config import RunConfig
from fascore.store.runs import Run
from fascore.train.methods import METHODS, Method
from fascore.train.models import FASModel, create_model
from fascore.train.teacher import load_teacher


def build_model(cfg: RunConfig, teacher_run: Run | None) -> tuple[FASModel, FASModel | None]:
    """The trained model, freshly created, and the frozen teacher (None for methods without
    one). The method starts the model from the teacher where it should (``Method.__init__``)."""
    teacher = load_teacher(teacher_run) if teacher_run is not None else None  # source-only
    pretrained = cfg.pretrained or ("imagenet" if cfg.init == "imagenet" else None)
    model = create_model(
        cfg.model, input_size=cfg.image_size, pretrained=pretrained, embed_layer=cfg.embed_layer
    )
    return model, teacher


def make_method(
    cfg: RunConfig, model: FASModel, teacher: FASModel | None, device: torch.device
) -> Method:
    """The run's method on ``device``, set up by ``prepare_for_device`` (mixed precision and its
    grad scaler, ``channels_last``, cuDNN autotuning on CUDA): the trainer's one AMP path."""
    method = METHODS.get(cfg.method)(cfg, model.to(device), teacher.to(device) if teacher else None)
    prepare_for_device(method, cfg, device)
    return method


def prepare_for_device(method: Method, cfg: RunConfig, device: torch.device) -> None:
    """The trainer's CUDA path: mixed precision (``cfg.amp``, fp16 autocast with a gradient
    scaler), ``channels_last`` weights and cuDNN autotuning; on other devices, fp32 as is."""
    method.amp = bool(cfg.amp and device.type == "cuda")
    method.scaler = torch.amp.GradScaler("cuda", enabled=method.amp)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: pick the fastest kernels
        for net in (method.model, method.teacher):
            if net is not None:
                net.to(memory_format=torch.channels_last)
