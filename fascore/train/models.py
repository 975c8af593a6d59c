"""Backbones for teacher and student: ``create_model(name)`` from a registry.

Every model splits like timm's forward_features / forward_head: ``features(x) (B, 3, H, W) ->
z (B, D)`` is the embedding the MMD and pair losses and the UMAP views use; ``head(z) -> (B, C)``
ends with the one new ``Linear(D, C)``; ``forward(x) = head(features(x))``. The trunk lives under
``.net`` with torchvision's parameter names, so torchvision state dicts load as they are (the
replaced 1000-class layer skipped). Nothing is ever downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fascore.errors import FascoreError
from fascore.registry import Registry


class FASModel(nn.Module):
    """Base class: ``forward(x) = head(features(x))``; subclasses build ``net`` and ``classifier``."""

    embed_layers: tuple[str, ...] = ()  # choices for embed_layer; the first is the default
    min_input: int = 32  # smallest square input side (px) the trunk accepts
    imagenet: str | None = (
        None  # torchvision's weights enum, e.g. "AlexNet_Weights" (names the file)
    )
    skip_prefix: str = ""  # torchvision keys of the replaced 1000-class layer, never loaded
    net: nn.Module  # the torchvision-keyed trunk
    classifier: nn.Linear  # the new last layer, (D) -> (num_classes)

    def __init__(self, embed_layer: str | None) -> None:
        super().__init__()
        embed_layer = embed_layer or self.embed_layers[0]
        if embed_layer not in self.embed_layers:
            raise FascoreError(
                f"embed_layer {embed_layer!r} is not a layer of {type(self).__name__}; "
                f"choose one of: {', '.join(self.embed_layers)}"
            )
        self.embed_layer = embed_layer
        self.name = ""
        self.gradcam_name = ""  # dotted path inside this model, set by the subclass
        self.input_size: int | None = None  # recorded by create_model
        self.pretrained: str | None = None  # "imagenet", a file path or None

    @property
    def embed_dim(self) -> int:
        """D, the width of ``features(x)``."""
        return self.classifier.in_features

    @property
    def gradcam_layer(self) -> nn.Module:
        """The module whose (B, K, h, w) output Grad-CAM weighs (the last conv block)."""
        return self.get_submodule(self.gradcam_name)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) images -> (B, D) embedding."""
        raise NotImplementedError

    def head(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D) embedding -> (B, num_classes) logits; never modifies ``z`` in place."""
        return self.classifier(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, num_classes) logits."""
        return self.head(self.features(x))


MODELS: Registry[type[FASModel]] = Registry("model")


class _AlexNetFamily(FASModel):
    """AlexNet's layer pattern; the embedding is the ReLU output of fc7 (default) or fc6.

    ``embed_layer`` moves the split, not the architecture: with fc6 the head is dropout, fc7, ReLU
    and the new classifier. Dropout (before fc6 and fc7, as in torchvision) never hits ``z``.
    """

    embed_layers = ("fc7", "fc6")
    skip_prefix = "classifier.6."
    # Index in net.classifier just after each embedding's ReLU: [drop, fc6, relu, drop, fc7, relu].
    _CUT = {"fc6": 3, "fc7": 6}

    def __init__(self, net: nn.Module, num_classes: int, embed_layer: str | None) -> None:
        super().__init__(embed_layer)
        net.classifier = net.classifier[:6]  # drop the 1000-class layer
        self.net = net
        self.classifier = nn.Linear(net.classifier[4].out_features, num_classes)
        # The last conv's ReLU (features.11), before the last max-pool: the rectified maps A^k of
        # Grad-CAM at the finest resolution the last conv has (13x13 at 224 px, not the pooled
        # 6x6). Hooking the ReLU, not the conv, also matters: the ReLU is in-place, so a hook on
        # the conv would hold a tensor that the ReLU then overwrites.
        self.gradcam_name = "net.features.11"
        self._cut = self._CUT[self.embed_layer]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.flatten(self.net.avgpool(self.net.features(x)), 1)
        return self.net.classifier[: self._cut](h)

    def head(self, z: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.net.classifier[self._cut :](z))


@MODELS.register("alexnet")
class AlexNet(_AlexNetFamily):
    """torchvision's AlexNet, the paper's backbone; embedding fc7 (4096-d) by default."""

    min_input = 63  # the third max-pool needs a 3x3 map
    imagenet = "AlexNet_Weights"

    def __init__(self, num_classes: int = 2, embed_layer: str | None = None) -> None:
        super().__init__(_tv().alexnet(), num_classes, embed_layer)


def _mini_trunk(widths: tuple[int, ...] = (16, 48, 96, 64, 64), fc: int = 256) -> nn.Module:
    """AlexNet's pattern (5 conv, 3 max-pools, 2 FC) at ~1/4 the channels and 256-wide FCs.

    Keys match torchvision's AlexNet without its 1000-class layer. The stem is 5x5 stride 2, not
    11x11 stride 4, because it is sized for 64 px: the last conv map is 7x7 (AlexNet's stem would
    leave 3x3), which keeps Grad-CAM readable.
    """

    def conv(c_in: int, c_out: int, k: int, stride: int = 1) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, k, stride, padding=k // 2), nn.ReLU(inplace=True)]

    c1, c2, c3, c4, c5 = widths
    trunk = nn.Module()
    trunk.features = nn.Sequential(
        *conv(3, c1, 5, 2), nn.MaxPool2d(3, 2), *conv(c1, c2, 5), nn.MaxPool2d(3, 2),
        *conv(c2, c3, 3), *conv(c3, c4, 3), *conv(c4, c5, 3), nn.MaxPool2d(3, 2),
    )  # fmt: skip
    trunk.avgpool = nn.AdaptiveAvgPool2d((3, 3))
    trunk.classifier = nn.Sequential(
        nn.Dropout(0.5), nn.Linear(c5 * 9, fc), nn.ReLU(inplace=True),
        nn.Dropout(0.5), nn.Linear(fc, fc), nn.ReLU(inplace=True),
    )  # fmt: skip
    return trunk


@MODELS.register("alexnet_mini")
class AlexNetMini(_AlexNetFamily):
    """Our CPU-sized stand-in, not the paper's network (256-d fc7; no ImageNet weights)."""

    min_input = 29  # the third max-pool needs a 3x3 map

    def __init__(self, num_classes: int = 2, embed_layer: str | None = None) -> None:
        super().__init__(_mini_trunk(), num_classes, embed_layer)


@MODELS.register("resnet18")
class ResNet18(FASModel):
    """torchvision's ResNet-18; embedding = the globally pooled 512-d layer4 output."""

    embed_layers = ("pool",)
    imagenet = "ResNet18_Weights"
    skip_prefix = "fc."

    def __init__(self, num_classes: int = 2, embed_layer: str | None = None) -> None:
        super().__init__(embed_layer)
        self.net = _tv().resnet18()
        self.net.fc = nn.Identity()
        self.classifier = nn.Linear(512, num_classes)
        self.gradcam_name = "net.layer4"

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@MODELS.register("mobilenet_v3_small")
class MobileNetV3Small(FASModel):
    """torchvision's MobileNetV3-Small; embedding = the 1024-d hidden layer (after Hardswish)."""

    embed_layers = ("hidden",)
    imagenet = "MobileNet_V3_Small_Weights"
    skip_prefix = "classifier.3."

    def __init__(self, num_classes: int = 2, embed_layer: str | None = None) -> None:
        super().__init__(embed_layer)
        self.net = _tv().mobilenet_v3_small()
        self.net.classifier = self.net.classifier[:2]  # Linear(576, 1024), Hardswish
        # torchvision's dropout here is in-place; the head must leave the embedding untouched.
        self.dropout = nn.Dropout(0.2)
        self.classifier = nn.Linear(1024, num_classes)
        self.gradcam_name = f"net.features.{len(self.net.features) - 1}"

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def head(self, z: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(z))


def create_model(
    name: str,
    *,
    num_classes: int = 2,
    input_size: int = 64,
    pretrained: str | os.PathLike[str] | None = None,
    embed_layer: str | None = None,
) -> FASModel:
    """Build a registered model; see ``load_pretrained`` for ``pretrained``.

    ``pretrained=None`` (or "none") keeps the random init, seeded by the caller's
    ``torch.manual_seed``. ``input_size`` (square side in px) is checked against the trunk.
    """
    cls = MODELS.get(name)
    if input_size < cls.min_input:
        raise FascoreError(f"{name} needs --input-size {cls.min_input} or more, not {input_size}")
    model = cls(num_classes=num_classes, embed_layer=embed_layer)
    model.name = name
    model.input_size = input_size
    if pretrained is not None and os.fspath(pretrained).lower() != "none":
        load_pretrained(model, pretrained)
        model.pretrained = os.fspath(pretrained)
    return model


def _tv():
    """torchvision's model zoo, imported on first use (about 1 s; alexnet_mini never needs it)."""
    from torchvision import models  # start-up cost (see the docstring)

    return models


def imagenet_weights(model: FASModel):
    """torchvision's weights entry (``<Model>_Weights.IMAGENET1K_V1``): url, file, metadata."""
    if model.imagenet is None:
        raise FascoreError(
            f"{model.name} has no ImageNet weights (it is fascore's CPU-sized stand-in, not the "
            "paper's network); use --pretrained none or the path of a state dict"
        )
    return getattr(_tv(), model.imagenet).IMAGENET1K_V1


def imagenet_file(model: FASModel) -> Path:
    """Where torchvision caches the model's ImageNet weights: ``<hub dir>/checkpoints/<file>``
    (``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(imagenet_weights(model).url).name


def fetch_imagenet(model: FASModel) -> Path:
    """The cached ImageNet weights file, downloaded first through torchvision's weights API
    (``get_state_dict``: torch.hub's cache, the hash in the file name checked) when missing.
    Offline, a ``FascoreError`` says which file to place where."""
    weights, path = imagenet_weights(model), imagenet_file(model)
    if path.is_file():
        return path
    try:
        weights.get_state_dict(progress=False, check_hash=True, weights_only=True)
    except (OSError, RuntimeError, ValueError) as err:  # URLError and timeouts are OSErrors
        reason = getattr(err, "reason", None) or err
        raise FascoreError(
            f"cannot download the ImageNet weights of {model.name} from {weights.url} "
            f"({reason}). Offline: fetch that file where the network allows and put it at "
            f"{path} (or point TORCH_HOME at a folder holding hub/checkpoints/{path.name}), "
            "or use --pretrained none"
        ) from None
    if not path.is_file():
        raise FascoreError(f"torchvision reported no error but left no file at {path}")
    return path


def load_pretrained(model: FASModel, pretrained: str | os.PathLike[str]) -> None:
    """Load "imagenet" (torchvision's weights, from its cache or downloaded into it) or a
    state-dict file into ``model.net``.

    Keys are torchvision's; the replaced 1000-class layer is skipped and the new classifier
    keeps its random init. Every other key must be present with the same shape.
    """
    if str(pretrained).lower() == "imagenet":
        path = fetch_imagenet(model)
    else:
        path = Path(pretrained)
        if not path.is_file():
            raise FascoreError(
                f"no weights file at {path}: give the path of a saved state dict, or "
                "'imagenet', or use --pretrained none"
            )
    state = _read_state_dict(path)
    state = {k: v for k, v in state.items() if not k.startswith(model.skip_prefix)}
    _check_keys(model.net.state_dict(), state, path, model.name)
    model.net.load_state_dict(state, strict=False)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The file's {key: tensor}; weights_only=True so loading never runs code."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # pickle/zip errors come in many types; all mean "not a state dict"
        state = None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FascoreError(
            f"{path} is not a readable PyTorch state dict; save one with "
            "torch.save(model.state_dict(), path) or use --pretrained none"
        )
    return state


def _check_keys(
    expected: dict[str, torch.Tensor], given: dict[str, torch.Tensor], path: Path, name: str
) -> None:
    """Raise FascoreError naming a few missing, unexpected or wrongly shaped keys."""
    # Old BatchNorm checkpoints lack num_batches_tracked; BatchNorm fills it in itself.
    missing = [k for k in expected if k not in given and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in given if k not in expected]
    shapes = [
        f"{k} {tuple(given[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in given and given[k].shape != v.shape
    ]
    named = (("missing", missing), ("unexpected", unexpected), ("shape", shapes))
    problems = [f"{len(keys)} {kind}: {', '.join(keys[:3])}" for kind, keys in named if keys]
    if problems:
        raise FascoreError(
            f"{path} does not fit {name} ({'; '.join(problems)}); use a state dict of the same "
            "architecture with torchvision's keys (as in model.net.state_dict()) or --pretrained none"
        )


def model_summary(model: FASModel) -> dict[str, Any]:
    """Plain-JSON facts about a model for run configs."""
    return {
        "name": model.name,
        "params": sum(p.numel() for p in model.parameters()),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "num_classes": model.classifier.out_features,
        "embed_layer": model.embed_layer,
        "embed_dim": model.embed_dim,
        "gradcam_layer": model.gradcam_name,
        "input_size": model.input_size,
        "pretrained": model.pretrained,
    }
