"""Grad-CAM on the spoof decision (Selvaraju et al. 2017), through captum's ``LayerGradCam``.

``cam = ReLU(sum_k alpha_k A^k)``, ``alpha_k = mean_{ij} dS / dA^k_ij``, on the model's
``gradcam_layer`` output ``A`` (B, K, h, w), then upsampled (bilinear) to the input size. Its
values are spoof log-odds per cell of the layer's grid (to first order, the cells' sum is the
layer's contribution to ``S``). Two scales map them to [0, 1] for display (``scale_maps``):

- ``shared`` (the default): teacher and student maps of one image are divided by the same
  number, the larger of their two maxima, so a model with little spoof evidence looks cool
  beside one with much; the number is reported with the maps (log-odds per cell).
- ``per-map``: each map divided by its own maximum (shape only: a model that calls the face live
  with P(spoof) = 0.03 still shows a red peak somewhere).

A map with no positive evidence stays all zero (never NaN). An all-zero map is a finding, not a
failure: no region of the layer pushes towards spoof, e.g. the decision rests on live evidence
being absent.

The target ``S`` is one spoof score per image (``SpoofScore``): for a two-logit softmax head,
``S = z_spoof - z_live``, the log-odds of spoof, which is exactly what the decision thresholds.
Using the raw spoof logit alone (the usual "class index 1" target) is wrong for binary heads:
any evidence that raises both logits by the same amount (a shared bias, overall brightness)
changes ``z_spoof`` but not the decision, and Grad-CAM would highlight it. For a one-logit head
``S = z`` (positive means spoof).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from captum.attr import LayerGradCam
from torch import nn

from fascore.data.images import normalize


class SpoofScore(nn.Module):
    """Wraps a classifier: (B, 3, H, W) -> (B,) spoof score (log-odds; see the module doc)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return spoof_logit(self.model(x))


def spoof_logit(logits: torch.Tensor) -> torch.Tensor:
    """(B, 2) -> ``z1 - z0``; (B, 1) or (B,) -> ``z`` (one logit: positive = spoof)."""
    if logits.dim() == 1:
        return logits
    if logits.shape[1] == 1:
        return logits[:, 0]
    if logits.shape[1] == 2:
        return logits[:, 1] - logits[:, 0]
    raise ValueError(f"a spoof score needs 1 or 2 logits, got {logits.shape[1]}")


def spoof_probability(logits: torch.Tensor) -> torch.Tensor:
    """(B, 2) or (B, 1) logits -> (B,) P(spoof); softmax index 1 = sigmoid(z1 - z0)."""
    return torch.sigmoid(spoof_logit(logits).float())


class _EvalMode:
    """Puts every submodule in eval mode and restores each one's own flag on exit."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.flags: dict[nn.Module, bool] = {}

    def __enter__(self) -> nn.Module:
        self.flags = {m: m.training for m in self.model.modules()}
        self.model.eval()
        return self.model

    def __exit__(self, *exc: object) -> None:
        for m, flag in self.flags.items():
            m.training = flag


def eval_mode(model: nn.Module) -> _EvalMode:
    """``with eval_mode(model):`` eval mode inside, each module's own train/eval flag after."""
    return _EvalMode(model)


def _normalise_maps(cam: torch.Tensor) -> torch.Tensor:
    """(B, H, W) >= 0 -> divided by each map's max; all-zero maps stay zero."""
    peak = cam.flatten(1).amax(dim=1).view(-1, 1, 1)
    return torch.where(peak > 0, cam / peak.clamp_min(1e-12), torch.zeros_like(cam))


def gradcam(
    model: nn.Module, x: torch.Tensor, *, layer: nn.Module | None = None, normalise: bool = True
) -> np.ndarray:
    """Spoof Grad-CAM maps for normalised images x (B, 3, H, W) -> (B, H, W) float32 >= 0:
    each scaled to [0, 1] by its own maximum, or with ``normalise=False`` the raw values (spoof
    log-odds per cell of the layer's grid; see the module doc).

    ``layer`` defaults to ``model.gradcam_layer``. The model runs in eval mode (restored after);
    parameters get no gradient (only the layer's output is differentiated).
    """
    layer = layer if layer is not None else model.gradcam_layer
    device = next(model.parameters()).device
    x = x.to(device).float()
    with eval_mode(model), torch.enable_grad():
        attr = LayerGradCam(SpoofScore(model), layer).attribute(x, relu_attributions=True)
    # LayerGradCam sums over channels: (B, 1, h, w); detach before resizing (no graph needed)
    cam = F.interpolate(attr.detach().float(), size=x.shape[-2:], mode="bilinear")[:, 0]
    cam = cam.clamp_min(0)
    return (_normalise_maps(cam) if normalise else cam).cpu().numpy()


SCALES = ("shared", "per-map")


def scale_maps(
    raw: dict[str, np.ndarray], scale: str = "shared"
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Raw maps (B, H, W) >= 0 per model -> (maps in [0, 1], the raw value each map shows as 1,
    (B,) per model).

    ``shared``: every model's map of image b is divided by the largest raw value any model has
    on image b; ``per-map``: each by its own maximum. An all-zero divisor leaves the map zero.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    peaks = {name: cam.reshape(len(cam), -1).max(axis=1) for name, cam in raw.items()}
    if scale == "shared":
        common = np.max(np.stack(list(peaks.values())), axis=0)
        peaks = {name: common for name in raw}
    out = {}
    for name, cam in raw.items():
        peak = peaks[name].reshape(-1, 1, 1)
        out[name] = np.where(peak > 0, cam / np.maximum(peak, 1e-12), 0.0).astype(np.float32)
    return out, peaks


def _jet(v: np.ndarray) -> np.ndarray:
    """MATLAB's jet: blue -> cyan -> yellow -> red, piecewise linear; v in [0, 1] -> (..., 3)."""
    return np.clip(1.5 - np.abs(4.0 * v[..., None] - np.array([3.0, 2.0, 1.0])), 0.0, 1.0)


def _hot(v: np.ndarray) -> np.ndarray:
    """Black -> red -> yellow -> white."""
    return np.clip(3.0 * v[..., None] - np.array([0.0, 1.0, 2.0]), 0.0, 1.0)


def _gray(v: np.ndarray) -> np.ndarray:
    return np.repeat(v[..., None], 3, axis=-1)


COLORMAPS = {"jet": _jet, "hot": _hot, "gray": _gray}


def overlay(
    image: np.ndarray, cam: np.ndarray, alpha: float = 0.5, colormap: str = "jet"
) -> np.ndarray:
    """Blend a colour-mapped cam (H, W) in [0, 1] onto image uint8 (H, W, 3) -> uint8 (H, W, 3).

    ``out = (1 - alpha) * image + alpha * 255 * colormap(cam)``.
    """
    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colormap {colormap!r}; choose one of {', '.join(COLORMAPS)}")
    if image.shape[:2] != cam.shape or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image (H, W, 3) and cam (H, W) must match: {image.shape}, {cam.shape}")
    heat = 255.0 * COLORMAPS[colormap](np.clip(np.nan_to_num(cam), 0.0, 1.0))
    out = (1.0 - alpha) * image.astype(np.float32) + alpha * heat
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def to_unit(images: torch.Tensor | np.ndarray, size: int) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float (B, 3, size, size) in [0, 1] (bilinear, antialiased)."""
    x = torch.as_tensor(np.asarray(images) if isinstance(images, np.ndarray) else images)
    x = x.float().div(255.0)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
    return x


def explain_samples(
    models: dict[str, nn.Module],
    images: torch.Tensor | np.ndarray,
    *,
    alpha: float = 0.5,
    scale: str = "shared",
) -> dict:
    """Grad-CAM of each model on the same uint8 images (B, 3, H, W), for side-by-side views.

    Images are resized to the first model's ``input_size`` (if it has one) and normalised as in
    training; maps are put on one ``scale`` (``scale_maps``: ``shared`` by the models, or
    ``per-map``). Returns ``{"images": uint8 (B, S, S, 3), name: {"cam": (B, S, S) float32 in
    [0, 1], "peak": (B,) the map's own raw maximum, "scale": (B,) the raw value shown as 1,
    "score": (B,) P(spoof), "overlay": uint8 (B, S, S, 3)}}`` per model.
    """
    first = next(iter(models.values()))
    size = getattr(first, "input_size", None) or int(images.shape[-1])
    x01 = to_unit(images, size)
    shown = np.rint(x01.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    x = normalize(x01)
    raw, scores = {}, {}
    for name, model in models.items():
        raw[name] = gradcam(model, x, normalise=False)
        with eval_mode(model), torch.no_grad():
            logits = model(x.to(next(model.parameters()).device))
        scores[name] = spoof_probability(logits).cpu().numpy()
    cams, divisors = scale_maps(raw, scale)
    out: dict = {"images": shown}
    for name, cam in cams.items():
        overlays = np.stack([overlay(im, c, alpha) for im, c in zip(shown, cam, strict=True)])
        peak = raw[name].reshape(len(cam), -1).max(axis=1)
        out[name] = {"cam": cam, "peak": peak, "scale": divisors[name], "score": scores[name]}
        out[name]["overlay"] = overlays
    return out
