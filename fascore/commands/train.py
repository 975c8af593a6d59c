"""``python -m fascore train``: one run into the run store.

Every ``RunConfig`` field is a flag (``--image-size``, ``--w-mmd`` ...), with its type, allowed
values and help read from ``fascore.config.config_fields()``, the one place that knows them.
``--run RUN_ID`` trains a run whose config the store already holds (what a launcher starts).
``--devices N`` trains the one run on N local processes (one GPU each, or CPU processes with
gloo) with DDP: the config goes into the store, then this process becomes
``torchrun --standalone --nproc-per-node N ... train --run RUN_ID`` (same pid, so a launcher's
cancel still reaches it). Inside a torchrun or ``srun`` job step, ranks come from its variables.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import typing
from pathlib import Path

from fascore.config import FieldSpec, RunConfig, config_fields, field_spec, parse_text
from fascore.errors import FascoreError
from fascore.jobs.slurm.options import add_flags as add_launcher_flags
from fascore.jobs.slurm.options import options_from_args

if typing.TYPE_CHECKING:
    from fascore.store.runs import RunStore


def _optional(spec: FieldSpec):
    def parse(text: str):  # argparse shows an ArgumentTypeError's message as it is
        try:
            return parse_text(spec, text)
        except FascoreError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    return parse


def add_config_flags(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """One flag per config field; absent flags stay absent (SUPPRESS), so only given ones override."""
    for spec in config_fields():
        if spec.name in ("created", *skip):
            continue
        default = None if spec.default is dataclasses.MISSING else spec.default
        kw = {"default": argparse.SUPPRESS, "help": f"{spec.help} (default: {default})"}
        if spec.kind is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(spec.kind) is tuple:
            kw.update(nargs="+", metavar=spec.name.upper())
        elif spec.optional:
            kw.update(type=_optional(spec))
        else:
            kw["type"] = spec.kind
        if spec.choices:
            kw["choices"] = spec.choices
        parser.add_argument("--" + spec.name.replace("_", "-"), dest=f"cfg_{spec.name}", **kw)


def parse_shots(text: str) -> int | None:
    """k as ``--shots`` reads it: a whole number, or ``all`` (every labelled target video);
    anything else is one FascoreError naming the field."""
    shots = parse_text(field_spec("shots"), text.strip())
    if shots is not None and shots < 0:
        raise FascoreError(f"shots must be a whole number, all or none, not {text!r}")
    return shots


def build_config(given: dict, protocol: str | None = None) -> RunConfig:
    """The RunConfig of ``fascore train`` (and the Train page): a protocol preset first, then the
    values given (field name -> value); a teacher given no shots sees no target label."""
    values = {}
    if protocol:
        from fascore.data.protocols import parse_protocol  # lazy: pandas, not for `train --help`

        proto = parse_protocol(protocol)
        values.update(
            source_domains=tuple(proto.source_domains),
            target_domain=proto.target_domain,
            shots=proto.shots,
            shot_unit=proto.shot_unit,
        )
    values.update({k: tuple(v) if isinstance(v, list) else v for k, v in given.items()})
    cfg = RunConfig.from_dict(values)
    if cfg.method == "source_only" and "shots" not in values:
        cfg = cfg.replace(shots=0, select="source_dev")  # a teacher sees no target labels
    return cfg


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """A RunConfig from the flags given (a protocol preset first, then explicit flags)."""
    given = {k[4:]: v for k, v in vars(args).items() if k.startswith("cfg_")}
    return build_config(given, getattr(args, "protocol", None))


def _train(args: argparse.Namespace) -> int:
    # lazy: torch (~4 s) and pandas are for training, not for `train --help`
    from fascore.store.runs import RunStore  # lazy: pandas, as the two above
    from fascore.train.distributed import from_env
    from fascore.train.loop import train

    store = RunStore()
    if args.run:
        run = store.get(args.run)
        cfg = RunConfig.from_dict(run.config())
    else:
        cfg = config_from_args(args)
        _refuse_early(cfg, args)
    if args.launcher:  # a background job (a Slurm batch job with --launcher slurm)
        return _submit(cfg, store, args)
    if args.devices != 1 and "WORLD_SIZE" not in os.environ:
        return _exec_torchrun(args, cfg, store)
    analysis = None
    if cfg.analysis:  # start-up cost: scikit-learn and umap (~3 s), only for runs that analyse
        from fascore.eval.analysis.hooks import RunAnalysis

        analysis = RunAnalysis()
    run = train(cfg, store, resume=args.resume, progress=not args.quiet, analysis=analysis)
    if not from_env().is_main:
        return 0  # a DDP rank other than 0: it trained in step, rank 0 reports (and writes)
    final = run.read_json("final") or {}
    state = run.state()
    print(f"run {run.id}: {state} ({run.path})")
    test = final.get("target_test") or {}
    if test:
        print(
            f"target test: HTER {test['hter']:.4f}  AUC {test['auc']:.4f}  ACER {test['acer']:.4f}"
        )
    return 0 if state == "done" else 1


def _refuse_early(cfg: RunConfig, args: argparse.Namespace) -> None:
    """Refuse a bad config, manifest or a step that cannot fit in memory before a run folder
    exists (a job handed to a launcher is checked where it runs)."""
    from fascore.data.protocols import load_manifests  # lazy: pandas, not for `train --help`
    from fascore.data.synth.cache import ensure_preset_data  # lazy: numpy/PIL, not for `--help`
    from fascore.train.memory import check_fits  # lazy: torch (~4 s), not for `train --help`

    if not args.launcher:
        cfg.check()
        ensure_preset_data(cfg.data)
        load_manifests([Path(p) for p in cfg.data])
        check_fits(cfg, processes=args.devices)


def _exec_torchrun(args: argparse.Namespace, cfg: RunConfig, store: RunStore) -> int:
    from fascore.devices import device_type  # lazy: pandas, not for `train --help`
    from fascore.train import distributed  # lazy: torch (~4 s), only for `train --devices N`

    cfg.check()
    distributed.check_devices(args.devices, device_type(cfg.device))
    distributed.check_batch(cfg.batch_size, distributed.Context(world=args.devices))
    run = store.run(cfg.run_id())
    if not run.has("config"):
        run.write_config(cfg.to_dict())
    argv = distributed.torchrun_argv(args.devices, run.id, resume=args.resume, quiet=args.quiet)
    os.execv(argv[0], argv)  # replaces this process: only returns on failure (raises OSError)
    return 1


def launcher_from_args(args: argparse.Namespace, store: RunStore):
    """The launcher the flags ask for: a name, or a Slurm launcher carrying its options."""
    from fascore.jobs.control import make_launcher  # lazy: pandas, not for `--help`

    opts = options_from_args(args, store.root) if args.launcher == "slurm" else None
    return make_launcher(args.launcher or "local", opts)


def _submit(cfg: RunConfig, store: RunStore, args: argparse.Namespace) -> int:
    from fascore.jobs import control as jobs  # lazy: pandas, not for `train --help`

    run = jobs.submit(cfg, store, launcher_from_args(args, store))
    status = run.status()
    where = (
        f"Slurm job {status['slurm_job']}"
        if status.get("slurm_job")
        else f"pid {status.get('pid')}"
    )
    print(f"run {run.id}: {run.state()} ({where}); watch it with `python -m fascore runs`")
    return 0


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train one run (teacher or student) into the run store",
        description="Train one run. Example: python -m fascore train --method source_only "
        "--data DIR/manifest.csv --source-domains studio --target-domain phone",
    )
    p.add_argument(
        "--run", "--run-id", help="train the run whose config.json is already in the store"
    )
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--protocol", help="a protocol preset, e.g. 'synth:studio->phone@5'")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--devices",
        type=int,
        default=1,
        help="train this one run on N local processes with DDP, started by torchrun "
        "(one GPU each; on the CPU, gloo processes); the batch size stays the global batch",
    )
    add_launcher_flags(p)
    add_config_flags(p)
    p.set_defaults(func=_train)
