"""``python -m fascore train``: one run into the run store.

Every ``RunConfig`` field is a flag (``--image-size``, ``--w-mmd`` ...), with its help taken from
the field's comment in ``fascore/config.py``, so the config stays the one place that knows them.
``--run RUN_ID`` trains a run whose config the store already holds (what a launcher starts).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import typing

from fascore.config import RunConfig
from fascore.jobs.slurm_options import add_flags as add_launcher_flags
from fascore.runs import RunStore

_NONE_WORDS = {"none": None, "all": None}


def _field_help() -> dict[str, str]:
    src = inspect.getsource(RunConfig)
    return dict(re.findall(r"^\s+(\w+): [^=\n]+=[^#\n]*#\s*(.+)$", src, flags=re.M))


def _optional(kind):
    def parse(text: str):
        return _NONE_WORDS[text.lower()] if text.lower() in _NONE_WORDS else kind(text)

    return parse


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per config field; absent flags stay absent (SUPPRESS), so only given ones override."""
    helps, hints = _field_help(), typing.get_type_hints(RunConfig)
    for f in dataclasses.fields(RunConfig):
        if f.name in ("created",):
            continue
        flag, hint = "--" + f.name.replace("_", "-"), hints[f.name]
        default = f.default if f.default is not dataclasses.MISSING else None
        kw = {"default": argparse.SUPPRESS, "help": f"{helps.get(f.name, '')} (default: {default})"}
        args = typing.get_args(hint)
        if hint is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(hint) is tuple:
            kw.update(nargs="+", metavar=f.name.upper())
        elif type(None) in args:
            kw.update(type=_optional(next(a for a in args if a is not type(None))))
        else:
            kw["type"] = hint
        parser.add_argument(flag, dest=f"cfg_{f.name}", **kw)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """A RunConfig from the flags given (a protocol preset first, then explicit flags)."""
    values = {}
    if getattr(args, "protocol", None):
        from fascore.data.protocols import parse_protocol

        proto = parse_protocol(args.protocol)
        values.update(
            source_domains=tuple(proto.source_domains),
            target_domain=proto.target_domain,
            shots=proto.shots,
            shot_unit=proto.shot_unit,
        )
    for key, val in vars(args).items():
        if key.startswith("cfg_"):
            values[key[4:]] = tuple(val) if isinstance(val, list) else val
    cfg = RunConfig.from_dict(values)
    if cfg.method == "source_only" and "shots" not in values:
        cfg = cfg.replace(shots=0, select="source_dev")  # a teacher sees no target labels
    return cfg


def _train(args: argparse.Namespace) -> int:
    from fascore.train.loop import train

    store = RunStore()
    if args.run:
        run = store.get(args.run)
        cfg = RunConfig.from_dict(run.config())
    else:
        cfg = config_from_args(args)
    if args.launcher:  # a background job (a Slurm batch job with --launcher slurm)
        return _submit(cfg, store, args)
    run = train(cfg, store, resume=args.resume, progress=not args.quiet)
    final = run.read_json("final") or {}
    state = run.state()
    print(f"run {run.id}: {state} ({run.path})")
    test = final.get("target_test") or {}
    if test:
        print(
            f"target test: HTER {test['hter']:.4f}  AUC {test['auc']:.4f}  ACER {test['acer']:.4f}"
        )
    return 0 if state == "done" else 1


def launcher_from_args(args: argparse.Namespace, store: RunStore):
    """The launcher the flags ask for: a name, or a Slurm launcher carrying its options."""
    from fascore.jobs.slurm import SlurmLauncher
    from fascore.jobs.slurm_options import options_from_args

    if args.launcher == "slurm":
        return SlurmLauncher(options_from_args(args, store.root))
    return args.launcher or "local"


def _submit(cfg: RunConfig, store: RunStore, args: argparse.Namespace) -> int:
    from fascore.jobs import control as jobs

    run = jobs.submit(cfg, store, launcher_from_args(args, store))
    status = run.status()
    where = f"Slurm job {status['slurm_job']}" if status.get("slurm_job") else f"pid {status.get('pid')}"
    print(f"run {run.id}: {run.state()} ({where}); watch it with `python -m fascore runs`")
    return 0


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train one run (teacher or student) into the run store",
        description="Train one run. Example: python -m fascore train --method source_only "
        "--data DIR/manifest.csv --source-domains studio --target-domain phone",
    )
    p.add_argument("--run", help="train the run whose config.json is already in the store")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--protocol", help="a protocol preset, e.g. 'synth:studio->phone@5'")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_launcher_flags(p)
    add_config_flags(p)
    p.set_defaults(func=_train)
