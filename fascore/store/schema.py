"""The typed schema of every JSON file in a run folder: status, config, final metrics, alignment,
shots and each metrics line. ``Run`` reads every document through ``load`` / ``check`` here, so a
file that does not fit (wrong types, a list where an object belongs, a huge or deeply nested
value) makes its own run "unreadable: <file>: <field> <why>" and never reaches a reader that
would crash on it; every other run is unchanged.

A schema is a tree of small frozen dataclasses (``Obj``, ``ListOf``, ``Num``, ``Int``, ``Str``,
``Any_``), each with one ``problem(value)`` method. Fields a schema does not name are allowed
(older and newer runs add keys); the fields it names must have their types when present, and
``required`` ones must be present.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: A run file larger than this is not read (a run's largest JSON file, final.json, is ~50 KB).
MAX_BYTES = 16 * 2**20
#: Deeper nesting than this is refused (a real run file nests 6 levels at most).
MAX_DEPTH = 32
#: A text field longer than this is refused (names, messages, paths, error messages).
MAX_TEXT = 65536


class Kind:
    """One node of a schema: ``problem(value)`` says why ``value`` does not fit, or None."""

    def problem(self, value: Any) -> str | None:
        raise NotImplementedError


@dataclass(frozen=True)
class Any_(Kind):
    """Any JSON value (its size and depth are still bounded by ``load``)."""

    def problem(self, value: Any) -> str | None:
        return None


@dataclass(frozen=True)
class Num(Kind):
    """A number (int or float, NaN and infinities allowed: metrics of one class are NaN), or
    null when ``null``; ``lo`` / ``hi`` bound it when given."""

    null: bool = True
    lo: float | None = None
    hi: float | None = None

    def problem(self, value: Any) -> str | None:
        if value is None:
            return None if self.null else "is null, not a number"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"is {_show(value)}, not a number"
        if math.isnan(value):
            return None
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            return f"is {value!r}, outside [{self.lo}, {self.hi}]"
        return None


@dataclass(frozen=True)
class Int(Kind):
    """A whole number (not a bool), or null when ``null``."""

    null: bool = True

    def problem(self, value: Any) -> str | None:
        if value is None and self.null:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            return f"is {_show(value)}, not a whole number"
        return None


@dataclass(frozen=True)
class Str(Kind):
    """A string of at most ``MAX_TEXT`` characters, one of ``choices`` when given, or null when
    ``null``."""

    null: bool = True
    choices: tuple[str, ...] = ()

    def problem(self, value: Any) -> str | None:
        if value is None and self.null:
            return None
        if not isinstance(value, str):
            return f"is {_show(value)}, not text"
        if len(value) > MAX_TEXT:
            return f"is {len(value)} characters long, over {MAX_TEXT}"
        if self.choices and value not in self.choices:
            return f"is {_show(value)}, not one of {', '.join(self.choices)}"
        return None


@dataclass(frozen=True)
class OneOf(Kind):
    """Any of ``kinds`` (e.g. a Slurm job id written as a number or as text)."""

    kinds: tuple[Kind, ...]

    def problem(self, value: Any) -> str | None:
        whys = [k.problem(value) for k in self.kinds]
        return None if None in whys else whys[0]


@dataclass(frozen=True)
class ListOf(Kind):
    """A list whose items fit ``item``; exactly ``length`` items when given."""

    item: Kind = field(default_factory=Any_)
    length: int | None = None
    null: bool = True

    def problem(self, value: Any) -> str | None:
        if value is None and self.null:
            return None
        if not isinstance(value, list):
            return f"is {_show(value)}, not a list"
        if self.length is not None and len(value) != self.length:
            return f"holds {len(value)} items, not {self.length}"
        for i, item in enumerate(value):
            if why := self.item.problem(item):
                return _at(f"[{i}]", why)
        return None


@dataclass(frozen=True)
class Obj(Kind):
    """An object: named ``fields`` with their kinds, ``required`` ones present, and every other
    key's value fitting ``rest`` (maps such as per-species APCER)."""

    fields: dict[str, Kind] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    rest: Kind = field(default_factory=Any_)
    null: bool = True

    def problem(self, value: Any) -> str | None:
        if value is None and self.null:
            return None
        if not isinstance(value, dict):
            return f"is {_show(value)}, not an object"
        for key in self.required:
            if key not in value:
                return _at(key, "is missing")
        for key, item in value.items():
            if why := self.fields.get(key, self.rest).problem(item):
                return _at(str(key), why)
        return None


def _show(value: Any) -> str:
    """A short, safe description of a bad value (never a huge string)."""
    if isinstance(value, dict | list):
        return f"a {type(value).__name__}"
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _at(key: str, why: str) -> str:
    """``key`` prefixed to a nested field's reason: ``target_test.hter is 'x', not a number``."""
    if why.startswith("["):
        return f"{key}{why}"
    return f"{key} {why}" if why.startswith(("is ", "holds ")) else f"{key}.{why}"


# -- the run files -------------------------------------------------------------------------------
STATES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
METRICS = Obj(
    {
        "level": Str(),
        "apcer_per_species": Obj(rest=Num()),
        "notes": ListOf(Str()),
        **{k: Int() for k in ("n_live", "n_attack", "n_videos", "n_boot")},
        **{f"{k}_ci": ListOf(Num(), 2) for k in ("hter", "auc", "apcer", "bpcer", "acer")},
    },
    rest=Num(),
)
BUDGET = Obj(rest=Obj({"images": Int(), "videos": Int()}))
REGIME = Obj(
    {
        "regime": Str(),
        "selection": Str(),
        "select": Str(),
        "selected_epoch": Int(),
        "threshold_from": Str(),
        "threshold_rule": Str(),
        "level": Str(),
        "label_budget": BUDGET,
        "target_test": METRICS,
        "source_test": METRICS,
        "teacher_target_test": METRICS,
        "teacher_source_test": METRICS,
    },
)
SHOTS = Obj(
    {
        "unit": Str(),
        "k": Int(),
        "seed": Int(),
        "videos": ListOf(Str()),
        "subjects": ListOf(Str()),
        "n_frames": Int(),
        "per_class": Obj(rest=Int()),
        "attacks": Obj(rest=Int()),
    }
)
FINAL = Obj(
    {
        **REGIME.fields,
        "shots": SHOTS,
        "preprocessing": Obj(),
        "regimes": Obj(rest=REGIME),
    }
)
STAT = Obj(
    {
        "models": ListOf(Str()),
        "per_class": Obj(rest=Obj(rest=Num())),
    },
    rest=Num(),
)
ALIGNMENT = Obj(
    {
        "views": Obj(rest=STAT),
        "sampling": Obj(),
        "kernel": Obj(),
        "projection": Obj(),
        "errors": Obj(
            {"thresholds": Obj(rest=Obj(rest=Num())), "counts": Obj(rest=Obj(rest=Int()))}
        ),
        "timing_s": Obj(rest=Num()),
        "per_epoch": ListOf(Obj({"epoch": Int(null=False)}, ("epoch",), rest=Num())),
        "epoch_sampling": Obj(),
        "epoch_projection": Obj({"epochs": ListOf(Int())}),
    }
)
PROGRESS = Obj(
    {
        **{k: Int() for k in ("epoch", "epochs", "step", "steps")},
        "fraction": Num(),
        "loss": Obj(rest=Num()),
    },
    rest=Num(),
)
STATUS = Obj(
    {
        "state": Str(null=False, choices=STATES),
        "message": Str(),
        "warnings": ListOf(Str()),
        **{k: Int() for k in ("pid", "pgid")},
        **{k: Num() for k in ("pid_started", "heartbeat", "started", "finished", "submitted")},
        **{k: Str() for k in ("host", "launcher", "problem")},
        "slurm_after": ListOf(OneOf((Str(), Int()))),
        "slurm_job": OneOf((Str(), Int())),
        "slurm": Obj(),
        "progress": PROGRESS,
    }
)
CONFIG = Obj(
    {
        **{k: Str(null=False) for k in ("method", "target_domain")},
        "source_domains": ListOf(Str(null=False), null=False),
        "seed": Int(null=False),
        **{k: Str() for k in ("experiment", "model", "teacher", "level", "select", "device")},
        **{k: Int() for k in ("shots", "epochs", "image_size", "batch_size", "steps_per_epoch")},
        "created": Num(),
        "data": ListOf(Str()),
    },
    required=("method", "target_domain", "source_domains", "seed"),
)
EVALUATION = Obj({"auc": Num(), "eer": Num(), "level": Str()}, rest=Num())
METRICS_LINE = Obj(
    {
        "epoch": Int(null=False),
        "step": Int(),
        "train": Obj(rest=Num()),
        **{k: EVALUATION for k in ("source_dev", "target_dev", "source_test", "target_test")},
    },
    required=("epoch",),
)
CASE = Obj({"created": Num(), "params": Obj(rest=Str()), "samples": Str(), "n": Int()},
           required=("params", "samples"))  # fmt: skip
CASES = Obj({"cases": ListOf(CASE)}, required=("cases",))  # the Shift debugger's saved cases
#: Run-file key (``fascore.store.runs.FILES``) -> its schema.
SCHEMAS: dict[str, Obj] = {
    "status": STATUS,
    "config": CONFIG,
    "final": FINAL,
    "alignment": ALIGNMENT,
    "shots": SHOTS,
    "metrics": METRICS_LINE,
    "cases": CASES,
}


class Unfit(ValueError):
    """A run file that cannot be read or does not fit its schema; the message names the field."""


def depth_problem(doc: Any) -> str | None:
    """Why ``doc`` nests too deeply (iterative: a deep document cannot exhaust the stack)."""
    stack = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"nests deeper than {MAX_DEPTH} levels"
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return None


def parse(text: str, what: str) -> Any:
    """JSON text -> a document; ``Unfit`` (naming ``what``) for text that is not JSON, nests
    too deeply, or holds a number Python will not parse (over 4300 digits)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        raise Unfit(f"{what} is not valid JSON") from None
    except (RecursionError, ValueError) as err:
        raise Unfit(f"{what} cannot be parsed ({type(err).__name__})") from None
    if why := depth_problem(doc):
        raise Unfit(f"{what} {why}")
    return doc


def check(key: str, doc: Any, what: str) -> Any:
    """``doc`` itself when it fits the schema of run file ``key``, else ``Unfit`` whose message
    starts with ``what`` (the file's name): ``final.json: target_test.hter is 'x', not a
    number``, ``status.json holds a list, not an object``, ``config.json lacks seed``."""
    why = SCHEMAS[key].problem(doc) if doc is not None else "is None, not an object"
    if why is None:
        return doc
    if why.startswith("is "):
        raise Unfit(f"{what} holds {why[3:]}")
    if why.endswith(" is missing") and "." not in why and "[" not in why:
        raise Unfit(f"{what} lacks {why[: -len(' is missing')]}")
    raise Unfit(f"{what}: {why}")


def read_text(path: Path) -> str:
    """A run file's text; FileNotFoundError when absent, ``Unfit`` when too large or unreadable."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise Unfit(f"{path.name} is {size / 2**20:.0f} MB, over {MAX_BYTES // 2**20} MB")
        return path.read_text()
    except (FileNotFoundError, Unfit):
        raise
    except (OSError, UnicodeDecodeError) as err:
        raise Unfit(f"{path.name} cannot be read ({err})") from None


def load(key: str, path: Path) -> Any:
    """Run file ``key`` at ``path``: read, parsed and checked against its schema.
    FileNotFoundError when absent; ``Unfit`` (one line naming the file and field) otherwise."""
    return check(key, parse(read_text(path), path.name), path.name)
