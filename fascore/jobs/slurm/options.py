"""The Slurm launcher's job options: from the CLI, the Train page, or ``<store>/slurm.toml``.

These are job options (where and with what resources a run's process runs), not ``RunConfig``
fields: they do not change a result, so they never enter a run's hash. Precedence, lowest first:
the defaults below, the run store's ``slurm.toml`` (or ``slurm.json``), then what the user gives
(flags, form). The options a run was submitted with are kept in its status, so ``resume`` and a
requeue reuse them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fascore.errors import FascoreError

try:
    import tomllib
except ImportError:  # Python 3.10: slurm.json only
    tomllib = None

CONFIG_NAMES = ("slurm.toml", "slurm.json")


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None  # Slurm partition (None: the cluster's default partition)
    gpus: int = 0  # GPUs per job (--gpus-per-node)
    cpus: int = 2  # CPUs per task (--cpus-per-task); data loading and CPU training use them
    mem_gb: float | None = None  # memory per job in GB (None: the partition's default)
    time: int = 60  # time limit in minutes (also given as "HH:MM:SS" or "D-HH:MM:SS")
    sbatch: tuple[str, ...] = ()  # extra sbatch options, e.g. "--account=lab" "--qos=normal"
    python: str | None = None  # the Python the compute node runs (default: this one)
    setup: tuple[str, ...] = ()  # shell lines run before the job (e.g. "module load cuda")
    signal_delay_s: int = 90  # USR2 this long before the time limit: checkpoint and requeue
    max_requeues: int = 3  # how often a timed-out job requeues itself before it gives up
    check_store: bool = True  # check at submission that compute nodes see the run store

    def to_dict(self) -> dict[str, Any]:
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "options") -> SlurmOptions:
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise FascoreError(
                f"unknown Slurm option(s) {', '.join(unknown)} in {where}; "
                f"known: {', '.join(known)}"
            )
        clean: dict[str, Any] = {}
        for key, val in values.items():
            if val is None:
                clean[key] = None
            elif key == "time":
                clean[key] = parse_time(val)
            elif key in ("sbatch", "setup"):
                clean[key] = tuple(shlex.split(val) if isinstance(val, str) and key == "sbatch"
                                   else [val] if isinstance(val, str) else val)  # fmt: skip
            elif key in ("gpus", "cpus", "signal_delay_s", "max_requeues"):
                clean[key] = _number(int, key, val, where, minimum=0 if key != "cpus" else 1)
            elif key == "mem_gb":
                clean[key] = _number(float, key, val, where, minimum=0.001)
            elif key == "check_store":
                clean[key] = bool(val)
            else:
                clean[key] = str(val)
        opts = cls(**clean)
        opts.sbatch_parameters()  # a malformed extra option fails here, before any submission
        return opts

    def merged(self, **overrides: Any) -> SlurmOptions:
        """These options with the non-None ``overrides`` on top."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return SlurmOptions.from_dict({**self.to_dict(), **given}) if given else self

    def sbatch_parameters(self) -> dict[str, Any]:
        """The extra sbatch options as submitit's ``additional_parameters`` (``--key=value``)."""
        out: dict[str, Any] = {}
        for item in self.sbatch:
            m = re.fullmatch(r"--([A-Za-z][\w-]*)(?:=(.*))?", item)
            if not m:
                raise FascoreError(
                    f"extra sbatch option {item!r} is not of the form --name or --name=value"
                )
            out[m.group(1).replace("-", "_")] = True if m.group(2) is None else m.group(2)
        return out


def _number(kind, key: str, val: Any, where: str, minimum: float) -> Any:
    try:
        num = kind(val)
    except (TypeError, ValueError):
        raise FascoreError(f"Slurm option {key} in {where} must be a number, not {val!r}") from None
    if num < minimum:
        raise FascoreError(f"Slurm option {key} in {where} must be at least {minimum}, not {val!r}")
    return num


def parse_time(value: Any) -> int:
    """Minutes from Slurm's forms: ``90``, ``"MM:SS"``, ``"HH:MM:SS"``, ``"D-HH[:MM[:SS]]"``."""
    text = str(value).strip()
    if not re.fullmatch(r"(\d+-)?\d+(:\d+){0,2}", text):
        raise FascoreError(f"time limit {value!r}: give minutes or HH:MM:SS (or D-HH:MM:SS)")
    days, _, rest = text.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    if days:  # D-H, D-H:M, D-H:M:S
        h, m, s = (parts + [0, 0])[:3]
        minutes = int(days) * 1440 + h * 60 + m + (1 if s else 0)
    elif len(parts) == 3:
        minutes = parts[0] * 60 + parts[1] + (1 if parts[2] else 0)
    elif len(parts) == 2:  # MM:SS
        minutes = parts[0] + (1 if parts[1] else 0)
    else:
        minutes = parts[0]
    if minutes < 1:
        raise FascoreError(f"time limit {value!r} is under a minute")
    return minutes


def config_file(store_root: Path) -> Path | None:
    """The run store's Slurm defaults file, if it has one."""
    for name in CONFIG_NAMES:
        if (store_root / name).is_file():
            return store_root / name
    return None


def load_options(store_root: Path) -> SlurmOptions:
    """The defaults, updated by ``<store>/slurm.toml`` or ``slurm.json`` when present."""
    path = config_file(store_root)
    if path is None:
        return SlurmOptions()
    if path.suffix == ".toml" and tomllib is None:
        raise FascoreError(f"{path}: reading TOML needs Python 3.11; write slurm.json instead")
    toml_error = tomllib.TOMLDecodeError if tomllib else ValueError
    try:
        text = path.read_text()
        raw = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, toml_error, json.JSONDecodeError) as err:
        raise FascoreError(f"cannot read {path}: {err}") from None
    if not isinstance(raw, dict):
        raise FascoreError(f"{path} must hold a table of options, not a {type(raw).__name__}")
    return SlurmOptions.from_dict(raw, where=str(path))


# -- the CLI ---------------------------------------------------------------------------------------
def add_flags(parser: argparse.ArgumentParser, launcher: bool = True) -> None:
    """``--launcher`` (unless the command has its own) and the Slurm options (absent flags fall
    back to ``<store>/slurm.toml``)."""
    if launcher:
        parser.add_argument(
            "--launcher", default=None,
            help="start the run as a background job with this launcher (local or slurm)",
        )  # fmt: skip
    g = parser.add_argument_group(
        "Slurm options (with --launcher slurm; defaults: <store>/slurm.toml)"
    )
    g.add_argument("--partition", help="Slurm partition")
    g.add_argument("--gpus", type=int, help="GPUs per job")
    g.add_argument("--cpus", type=int, help="CPUs per task")
    g.add_argument("--mem", dest="mem_gb", type=float, help="memory per job in GB")
    g.add_argument("--time", help="time limit: minutes or HH:MM:SS")
    g.add_argument(
        "--sbatch", action="append", metavar="OPTS",
        help="extra sbatch options, e.g. --sbatch='--account=lab --qos=normal' (repeatable)",
    )  # fmt: skip


def options_from_args(args: argparse.Namespace, store_root: Path) -> SlurmOptions:
    base = load_options(store_root)
    extra = [o for chunk in (getattr(args, "sbatch", None) or []) for o in shlex.split(chunk)]
    return base.merged(
        partition=args.partition, gpus=args.gpus, cpus=args.cpus, mem_gb=args.mem_gb,
        time=args.time, sbatch=[*base.sbatch, *extra] if extra else None,
    )  # fmt: skip
