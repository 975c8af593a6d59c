"""One frozen config per run: every choice that changes a result, saved in full in the run folder.

Its hash (over everything but bookkeeping fields) names the run, so the same config trains into
the same folder (and ``--resume`` finds it) and two different configs never share one.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import re
import time
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, NamedTuple

from fascore.errors import FascoreError

#: Fields that do not change the result and so do not enter the run's hash.
BOOKKEEPING = ("created", "device", "experiment", "notes", "analysis")
#: What a flag of an optional field says for None (``--shots all``: every labelled video).
NONE_WORDS = ("all", "none")
DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


class Range(NamedTuple):
    """Allowed values of a numeric field (``Annotated[int, "help", Range(1, 10)]``): finite, in
    [low, high], or (low, high] with ``open_low``. Bounds keep a typo from exhausting memory."""

    low: float
    high: float
    open_low: bool = False

    def problem(self, name: str, value: Any, kind: type) -> str | None:
        """Why ``value`` is not allowed, or None."""
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or (kind is int and not isinstance(value, int)):
            noun = "a whole number" if kind is int else "a number"
            return f"{name} must be {noun}, not {value!r}"
        inside = math.isfinite(value) and value <= self.high
        inside = inside and (value > self.low if self.open_low else value >= self.low)
        if inside:
            return None
        noun = "a whole number" if kind is int else "a finite number"
        span = f"{'(' if self.open_low else '['}{_num(self.low)}, {_num(self.high)}]"
        return f"{name} must be {noun} in {span}, not {value!r}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


@dataclass(frozen=True)
class RunConfig:
    """Each field is ``name: Annotated[type, "help"] = default``; a ``Literal`` type is a closed
    set of allowed values, which ``check()``, the CLI flags and the Train page all read from here.
    """

    # -- what is trained -------------------------------------------------------------------
    method: Annotated[str, "a name in fascore.train.methods.METHODS"] = "source_only"
    teacher: Annotated[str | None, "teacher run id, for every student method"] = None
    experiment: Annotated[str, "groups runs of one protocol in the dashboard"] = "default"
    # -- data and protocol ------------------------------------------------------------------
    data: Annotated[tuple[str, ...], "manifest paths (several are concatenated)"] = ()
    source_domains: Annotated[tuple[str, ...], "domains the teacher learns from"] = ("studio",)
    target_domain: Annotated[str, "the application domain the student is for"] = "phone"
    shots: Annotated[
        int | None,
        "labelled target presentations per class; None = all; 0 = none",
        Range(0, 100_000),
    ] = 5
    shot_unit: Annotated[
        Literal["video", "subject"], '"video" (k presentations per class) or "subject" (k subjects)'
    ] = "video"
    image_size: Annotated[int, "square input size the images are resized to", Range(32, 512)] = 64
    augment: Annotated[bool, "train-time flips, shifts and photometric jitter"] = True
    level: Annotated[
        Literal["frame", "video"], "scoring level for reported metrics (video: mean frame score)"
    ] = "video"
    # -- model ----------------------------------------------------------------------------------
    model: Annotated[str, 'a name in fascore.train.models.MODELS ("alexnet" is the paper\'s)'] = (
        "alexnet_mini"
    )
    pretrained: Annotated[
        str | None, 'None, "imagenet" (local torch cache) or a state-dict path'
    ] = None
    embed_layer: Annotated[
        str | None, "the layer whose output is the embedding (model default)"
    ] = None
    init: Annotated[Literal["scratch", "imagenet", "teacher"], "student initialisation"] = "teacher"
    # -- optimisation ---------------------------------------------------------------------------
    epochs: Annotated[int, "passes over the training data", Range(1, 10_000)] = 8
    batch_size: Annotated[
        int, "per domain stream: a student step sees B source and B target images", Range(2, 4096)
    ] = 64
    lr: Annotated[float, "learning rate", Range(0.0, 10.0, open_low=True)] = 1e-3
    weight_decay: Annotated[float, "L2 weight decay", Range(0.0, 1.0)] = 5e-4
    optimizer: Annotated[Literal["adam", "sgd"], "optimiser (sgd: momentum 0.9)"] = "adam"
    steps_per_epoch: Annotated[
        int | None, "None: one pass over the larger training stream", Range(1, 1_000_000)
    ] = None
    # -- losses ---------------------------------------------------------------------------------
    w_mmd: Annotated[
        float, "weight of MMD^2(teacher(source), student(target))", Range(0.0, 1000.0)
    ] = 1.0
    w_pair: Annotated[float, "weight of the paired sample similarity term", Range(0.0, 1000.0)] = (
        1.0
    )
    w_kd: Annotated[float, 'weight of Hinton KD (method "kd")', Range(0.0, 1000.0)] = 1.0
    kd_temperature: Annotated[
        float, "softmax temperature of Hinton KD", Range(0.0, 100.0, open_low=True)
    ] = 4.0
    mmd_estimator: Annotated[Literal["biased", "unbiased", "linear"], "estimator of MMD^2"] = (
        "biased"
    )
    mmd_kernel: Annotated[
        Literal["gaussian", "linear"], "MMD kernel (gaussian: multi-bandwidth, median heuristic)"
    ] = "gaussian"
    align_features: Annotated[
        Literal["no_dropout", "train"],
        "student features the MMD and pair terms align: no_dropout (a dropout-free pass) or "
        "train (the train-mode pass the CE uses)",
    ] = "no_dropout"
    mmd_classes: Annotated[
        Literal["marginal", "conditional"],
        "MMD over all samples (marginal) or the mean of per-class MMDs (conditional)",
    ] = "marginal"
    pair_mode: Annotated[
        Literal["contrastive", "relational"], "reading of the pair term (contrastive: default)"
    ] = "contrastive"
    pair_margin: Annotated[
        float, "contrastive margin on L2-normalised embeddings (max distance 2)", Range(0.0, 2.0)
    ] = 1.0
    pair_sampling: Annotated[
        Literal["balanced", "all"], "balanced: same/different-label pairs per step; all: every pair"
    ] = "balanced"
    # -- evaluation and selection ---------------------------------------------------------------
    regime: Annotated[
        Literal["few-shot", "target-dev"],
        "headline evaluation regime (both are reported): few-shot uses only the k shots as "
        "labelled target data; target-dev also selects and thresholds on the target dev split",
    ] = "few-shot"
    select: Annotated[
        Literal["last", "source_dev"],
        "few-shot model selection: the last epoch (a fixed schedule) or the source dev EER",
    ] = "last"
    threshold_rule: Annotated[
        Literal["shots", "source_dev", "fixed", "target_dev", "oracle"],
        "few-shot decision threshold: shots (midpoint of the k shots' class means; source dev "
        "without shots), source_dev (its EER point), fixed (0.5), target_dev (its EER point: "
        "extra labels), oracle (test EER: optimistic, reference only); all are reported",
    ] = "shots"
    episode: Annotated[
        int,
        "shot draw of this seed (0: the seed's own; N > 0: an independent draw)",
        Range(0, 100_000),
    ] = 0
    n_boot: Annotated[
        int,
        "bootstrap resamples (over subjects, else videos) for confidence intervals",
        Range(0, 100_000),
    ] = 1000
    # -- runtime --------------------------------------------------------------------------------
    seed: Annotated[int, "random seed (data order, shots, initialisation)", Range(0, 2**32 - 1)] = 0
    device: Annotated[str, '"auto" (CUDA, then MPS, then CPU), "cpu", "cuda", "cuda:1", "mps"'] = (
        "auto"
    )
    amp: Annotated[bool, "mixed precision, on CUDA only"] = True
    analysis: Annotated[bool, "embeddings, alignment statistics and UMAP after training"] = True
    created: Annotated[float, "creation time (seconds since the epoch)"] = field(
        default_factory=time.time
    )
    notes: Annotated[str, "free text kept with the run"] = ""

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
        if self.select == "target_dev":
            raise FascoreError(
                "select=target_dev is the target-dev regime's rule, and every run reports that "
                "regime too; use --regime target-dev to make it the headline"
            )
        for spec in config_fields():
            value = getattr(self, spec.name)
            if spec.choices and value not in spec.choices and not (spec.optional and value is None):
                raise FascoreError(f"{spec.name} must be one of {', '.join(spec.choices)}")
        if not self.data:
            raise FascoreError("no data: give at least one manifest (--data MANIFEST)")
        if self.target_domain in self.source_domains:
            raise FascoreError("the target domain must not also be a source domain")
        for spec, bounds in _ranges():
            value = getattr(self, spec.name)
            if (value is not None or not spec.optional) and (
                why := bounds.problem(spec.name, value, spec.kind)
            ):
                raise FascoreError(why)
        if not isinstance(self.device, str) or not DEVICE_PATTERN.fullmatch(self.device):
            raise FascoreError(
                f"device must be auto, cpu, mps, cuda or cuda:N, not {self.device!r}"
            )


class FieldSpec(NamedTuple):
    """What the CLI and the Train page need to know about one ``RunConfig`` field."""

    name: str
    kind: Any  # the bare type: str, int, float, bool, tuple[str, ...] (a Literal is str here)
    optional: bool  # None is allowed
    choices: tuple[Any, ...] | None  # the Literal's values, or None for an open set
    default: Any  # dataclasses.MISSING for a default factory
    help: str


def _spec(f: dataclasses.Field, hint: Any) -> FieldSpec:
    kind, help_text, *_ = typing.get_args(hint)  # Annotated[kind, help, ...]
    args = typing.get_args(kind)
    optional = type(None) in args
    if optional:
        (kind,) = (a for a in args if a is not type(None))
    choices = None
    if typing.get_origin(kind) is Literal:
        choices = typing.get_args(kind)
        kind = type(choices[0])
    return FieldSpec(f.name, kind, optional, choices, f.default, help_text)


@functools.cache
def _specs() -> tuple[FieldSpec, ...]:
    hints = typing.get_type_hints(RunConfig, include_extras=True)
    return tuple(_spec(f, hints[f.name]) for f in dataclasses.fields(RunConfig))


@functools.cache
def _ranges() -> tuple[tuple[FieldSpec, Range], ...]:
    """(spec, Range) for every field annotated with a ``Range`` (None passes when optional)."""
    hints = typing.get_type_hints(RunConfig, include_extras=True)
    out = []
    for spec in _specs():
        bounds = [m for m in typing.get_args(hints[spec.name]) if isinstance(m, Range)]
        out += [(spec, bounds[0])] if bounds else []
    return tuple(out)


def config_fields() -> tuple[FieldSpec, ...]:
    """Every field's type, allowed values, default and help, in declaration order."""
    return _specs()


def parse_text(spec: FieldSpec, text: str) -> Any:
    """A flag's text -> the field's value (``all`` or ``none`` -> None where the field is
    optional), or one ``FascoreError`` that names the field and what it takes
    (``shots must be a whole number, all or none, not 'abc'``)."""
    if spec.optional and text.strip().lower() in NONE_WORDS:
        return None
    try:
        return spec.kind(text)
    except ValueError:
        noun = {int: "a whole number", float: "a number"}.get(spec.kind, spec.kind.__name__)
        noun += ", all or none" if spec.optional else ""
        raise FascoreError(f"{spec.name} must be {noun}, not {text!r}") from None


def field_spec(name: str) -> FieldSpec:
    """One field's spec (``field_spec("pair_mode").choices == ("contrastive", "relational")``)."""
    return next(s for s in _specs() if s.name == name)
