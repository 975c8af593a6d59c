"""One frozen config per run: every choice that changes a result, saved in full in the run folder.

Its hash (over everything but bookkeeping fields) names the run, so the same config trains into
the same folder (and ``--resume`` finds it) and two different configs never share one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from fascore.errors import FascoreError

#: Fields that do not change the result and so do not enter the run's hash.
BOOKKEEPING = ("created", "device", "experiment", "notes", "analysis")


@dataclass(frozen=True)
class RunConfig:
    # -- what is trained -------------------------------------------------------------------
    method: str = "source_only"  # a name in fascore.train.methods.METHODS
    teacher: str | None = None  # teacher run id, for every student method
    experiment: str = "default"  # groups runs of one protocol in the dashboard
    # -- data and protocol ------------------------------------------------------------------
    data: tuple[str, ...] = ()  # manifest paths (several are concatenated)
    source_domains: tuple[str, ...] = ("studio",)
    target_domain: str = "phone"
    shots: int | None = 5  # labelled target presentations per class; None = all; 0 = none
    shot_unit: str = "video"  # "video" (k presentations per class) or "subject" (k subjects)
    image_size: int = 64  # square input size the images are resized to
    augment: bool = True  # train-time flips, shifts and photometric jitter
    level: str = "video"  # scoring level for reported metrics: "frame" or "video" (mean score)
    # -- model ----------------------------------------------------------------------------------
    model: str = "alexnet_mini"  # a name in fascore.train.models.MODELS ("alexnet" is the paper's)
    pretrained: str | None = None  # None, "imagenet" (local torch cache) or a state-dict path
    embed_layer: str | None = None  # the layer whose output is the embedding (model default)
    init: str = "teacher"  # student initialisation: "scratch", "imagenet" or "teacher"
    # -- optimisation ---------------------------------------------------------------------------
    epochs: int = 8
    batch_size: int = 64  # per domain stream: a student step sees B source and B target images
    lr: float = 1e-3
    weight_decay: float = 5e-4
    optimizer: str = "adam"  # "adam" or "sgd" (momentum 0.9)
    steps_per_epoch: int | None = None  # None: one pass over the larger training stream
    # -- losses ---------------------------------------------------------------------------------
    w_mmd: float = 1.0  # weight of MMD^2(teacher(source), student(target))
    w_pair: float = 1.0  # weight of the paired sample similarity term
    w_kd: float = 1.0  # weight of Hinton KD (method "kd")
    kd_temperature: float = 4.0
    mmd_estimator: str = "biased"  # "biased", "unbiased" or "linear"
    mmd_kernel: str = "gaussian"  # "gaussian" (multi-bandwidth, median heuristic) or "linear"
    pair_mode: str = "contrastive"  # "contrastive" (default reading) or "relational"
    pair_margin: float = 1.0  # contrastive margin on L2-normalised embeddings (max distance 2)
    pair_sampling: str = "balanced"  # "balanced" same/different-label pairs per step, or "all"
    # -- evaluation and selection ---------------------------------------------------------------
    select: str = "target_dev"  # model selection: "target_dev", "source_dev" or "last"
    n_boot: int = 1000  # bootstrap resamples (over videos) for confidence intervals
    # -- runtime --------------------------------------------------------------------------------
    seed: int = 0
    device: str = "auto"  # "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", "cuda:1", "mps"
    amp: bool = True  # mixed precision, on CUDA only
    analysis: bool = True  # embeddings, alignment statistics and UMAP after training
    created: float = field(default_factory=time.time)
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Build from a saved or user-given dict; unknown keys are a clear error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise FascoreError(f"unknown config field(s): {', '.join(unknown)}")
        vals = dict(d)
        for key in ("data", "source_domains"):
            if key in vals and vals[key] is not None:
                vals[key] = tuple(vals[key])
        return cls(**vals)

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def hash(self) -> str:
        """8 hex digits over every field that changes the result."""
        d = {k: v for k, v in self.to_dict().items() if k not in BOOKKEEPING}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:8]

    def run_id(self) -> str:
        """The run's folder name: method, target, shots, seed and the config hash."""
        shots = "all" if self.shots is None else self.shots
        return f"{self.method}-{self.target_domain}-k{shots}-s{self.seed}-{self.hash()}"

    def check(self) -> None:
        """Reject inconsistent choices with one readable message."""
        choices = {
            "shot_unit": ("video", "subject"),
            "level": ("frame", "video"),
            "init": ("scratch", "imagenet", "teacher"),
            "optimizer": ("adam", "sgd"),
            "mmd_estimator": ("biased", "unbiased", "linear"),
            "mmd_kernel": ("gaussian", "linear"),
            "pair_mode": ("contrastive", "relational"),
            "pair_sampling": ("balanced", "all"),
            "select": ("target_dev", "source_dev", "last"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise FascoreError(f"{name} must be one of {', '.join(allowed)}")
        if not self.data:
            raise FascoreError("no data: give at least one manifest (--data MANIFEST)")
        if self.target_domain in self.source_domains:
            raise FascoreError("the target domain must not also be a source domain")
        if self.epochs < 1 or self.batch_size < 2 or self.image_size < 32:
            raise FascoreError("epochs must be >= 1, batch size >= 2 and image size >= 32")
