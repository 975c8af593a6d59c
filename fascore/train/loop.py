"""Train one run into its run folder: the loop knows nothing about the method or the model.

``train(config)`` reads the manifests, samples the target shots, decodes the images once, builds
the method (and loads the frozen teacher for student methods), then per epoch: steps, evaluates on
the development sets, writes a metrics line, an atomic checkpoint and, when the selection rule says
so, the best weights. At the end it scores the development and test sets with the selected weights,
writes the PAD metrics and runs the analysis (embeddings, alignment statistics, UMAP).

Model selection and thresholds follow the evaluation regimes of ``fascore.train.regimes``: the
loop keeps one selected checkpoint per regime (``few-shot``: ``config.select``, ``last`` or
``source_dev``; ``target-dev``: the lowest target dev EER), each at the reported scoring level
(``config.level``), and ``finish.finish`` scores and evaluates both. The target's test split is never
looked at before the end. A non-finite loss stops the run (state ``failed``, checkpoints kept).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from typing import Protocol

import pandas as pd
import torch

from fascore.config import RunConfig
from fascore.devices import device_slot, device_type, resolve_device
from fascore.errors import FascoreError
from fascore.progress import Progress
from fascore.store.runs import CancelRequested, Run, RunStore
from fascore.train import distributed, regimes
from fascore.train.build import build_model, make_method
from fascore.train.checkpoint import load_checkpoint, save_best, save_checkpoint
from fascore.train.finish import finish, models_of, weights_key
from fascore.train.memory import check_fits
from fascore.train.methods import METHODS, Batch, Method
from fascore.train.models import FASModel
from fascore.train.scoring import dev_summary
from fascore.train.teacher import wait_for_teacher
from fascore.train.trainset import (
    batch_streams,
    clamp_batch,
    load_train_data,
    steps_per_epoch,
    target_metrics_problem,
)


def _next_batch(src, tgt) -> Batch:
    xs, ys, _ = next(src) if src is not None else (None, None, None)
    xt, yt, _ = next(tgt) if tgt is not None else (None, None, None)
    return Batch(xs, ys, xt, yt)


def _select(run: Run, cfg: RunConfig, method: Method, record: dict, best: dict) -> dict:
    """Update each regime's selection with this epoch; save the weights of the ones it wins."""
    for regime in regimes.REGIMES:
        score = regimes.selection_value(record, regimes.selection_rule(regime, cfg.select))
        if regime not in best or score <= best[regime]["score"]:
            best[regime] = {"epoch": record["epoch"], "score": score}
            save_best(run, method.model, record["epoch"], weights_key(cfg, regime))
    return best


class Analysis(Protocol):
    """The analysis a higher layer passes in (``fascore.eval.analysis.hooks.RunAnalysis``)."""

    def start(self, run: Run, samples: pd.DataFrame, images: torch.Tensor, seed: int) -> None: ...

    def epoch(self, epoch: int, models: dict[str, FASModel]) -> float | None: ...

    def finish(self, run: Run, models: dict[str, FASModel], samples: pd.DataFrame,
               images: torch.Tensor, *, device: str, seed: int,
               threshold: float | None) -> None: ...  # fmt: skip


def train(
    config: RunConfig,
    store: RunStore | None = None,
    *,
    resume: bool = False,
    progress: bool = True,
    analysis: Analysis | None = None,
) -> Run:
    """Train ``config`` into its run folder and return the run (see the module docstring).

    ``analysis`` runs when ``config.analysis`` is on: per epoch, then after the final scoring.
    """
    config.check()
    store = store or RunStore()
    ctx = distributed.context(device_type(config.device))  # under torchrun: join the group
    if not ctx.is_main:
        return _follow(config, store, resume, ctx)
    check_fits(config, ctx.world)  # a step that cannot fit is refused before the run folder
    run = store.run(config.run_id())
    with _own(run) as owner:  # before any reset or resume: a run owned by a live process is refused
        if run.has("done") and not resume:
            return run
        if not run.has("config"):
            run.write_config(config.to_dict())
        elif not resume:
            run.reset()  # a restarted run starts clean: no stale metrics or checkpoints
        if run.status().get("state") != "queued":  # a launcher's fresh request is kept
            run.clear_cancel()
        who = {k: owner[k] for k in ("pid", "pgid", "pid_started", "host")}
        run.update_status(state="queued", message="starting", finished=None, **who)
        try:
            teacher_run = wait_for_teacher(run, config, store)
            device = distributed.rank_device(torch.device(resolve_device(config.device)), ctx)
            with device_slot(run, str(device)):
                hooks = analysis if config.analysis else None
                _train(run, config, teacher_run, device, resume, progress, hooks, ctx)
            if why := target_metrics_problem(run):  # a run without target metrics is not done
                run.unmark_done()
                raise FascoreError(why)
        except CancelRequested:
            run.update_status(
                state="cancelled", message="cancelled by request", finished=time.time()
            )
        except FascoreError as err:
            _fail(run, str(err))
            raise
        except OSError as err:  # disk full, read-only store, vanished files
            why = f"{err.strerror or err} ({err.filename or 'the run folder'}); free space or "
            _fail(run, why := why + "fix the permissions, then resume the run")
            raise FascoreError(f"run {run.id} failed: {why}") from None
        except Exception as err:
            _fail(run, f"unexpected error: {err!r}")
            raise
    return run


def _own(run: Run):
    """Hold the run's lock; an unwritable store is one clear error, not a traceback."""
    try:
        run.path.mkdir(parents=True, exist_ok=True)
        probe = run.path / f".write-test.{os.getpid()}.tmp"
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise FascoreError(
            f"cannot write to the run store {run.path.parent} ({err.strerror}); set "
            "FASCORE_RUNS_DIR to a writable folder"
        ) from None
    return run.hold()


def _fail(run: Run, message: str) -> None:
    """Mark the run failed with ``message`` and remove its temporary files; never raises (the
    disk may be the very thing that failed)."""
    for tmp in run.path.glob(".*.tmp*"):
        with contextlib.suppress(OSError):
            tmp.unlink()
    with contextlib.suppress(OSError):
        run.log(f"failed: {message}")
    with contextlib.suppress(OSError):
        run.update_status(state="failed", message=message, finished=time.time())


def _follow(config: RunConfig, store: RunStore, resume: bool, ctx) -> Run:
    """Ranks other than 0 of a distributed run: train in step, write nothing (rank 0 does)."""
    run = store.run(config.run_id())
    if not resume and run.has("config") and run.has("done"):
        return run  # rank 0 returns too: nothing to train
    quiet = distributed.QuietRun(run)
    device = distributed.rank_device(torch.device(resolve_device(config.device)), ctx)
    slot = device_slot(quiet, str(device)) if device.type == "cuda" else contextlib.nullcontext()
    try:
        with slot:
            _train(quiet, config, None, device, resume, False, None, ctx)
    except CancelRequested:
        pass
    finally:
        distributed.close()
    return run


def _train(
    run, cfg: RunConfig, teacher_run, device, resume: bool, show: bool, hooks, ctx=None
) -> None:
    ctx = ctx or distributed.Context()
    torch.manual_seed(cfg.seed)
    run.update_status(state="running", started=time.time(), message="loading data")
    with ctx.main_first():  # rank 0 decodes the image cache, the other ranks then read it
        data = load_train_data(cfg, run)
    cfg = clamp_batch(cfg, data, run.log)
    distributed.check_batch(cfg.batch_size, ctx)
    if teacher_run is None and not ctx.is_main and METHODS.get(cfg.method).needs_teacher:
        teacher_run = RunStore(run.path.parent).get(cfg.teacher)  # rank 0 waited for it
    method = make_method(cfg, *build_model(cfg, teacher_run), device)
    n_steps = steps_per_epoch(cfg, data)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(method.optimizer, T_max=cfg.epochs * n_steps)
    streams = batch_streams(cfg, method, data, device, ctx.shard)
    live = [s for s in streams if s is not None]
    if hooks is not None and ctx.is_main:
        hooks.start(run, *data.analysis_samples(), seed=cfg.seed)
    start_epoch, best = 0, {}
    if resume and run.has("checkpoint"):
        start_epoch, best = load_checkpoint(run, method, sched, live)
        run.log(f"resumed after epoch {start_epoch}")
    if resume and ctx.is_main and run.truncate_metrics(start_epoch):  # later epochs are redone
        run.log(f"dropped metrics records after epoch {start_epoch}")
    bar = Progress(cfg.epochs * n_steps, enabled=show, label=run.id, batch=cfg.batch_size)
    bar.skip(start_epoch * n_steps)
    src, tgt = (iter(s) if s is not None else None for s in streams)
    run.update_status(message=f"training {cfg.method} on {ctx.describe(device)}")
    with distributed.data_parallel(method.model, ctx, device, cfg.batch_size, run.log):
        for epoch in range(start_epoch + 1, cfg.epochs + 1):
            ctx.seed_epoch(cfg.seed, epoch)
            logs = _epoch(run, method, sched, src, tgt, n_steps, epoch, bar, ctx)
            if not ctx.is_main:
                continue
            with distributed.unwrapped(method.model):
                record = _evaluate(run, cfg, method, data, device, epoch, n_steps, logs, hooks)
            best = _select(run, cfg, method, record, best)
            save_checkpoint(run, method, sched, epoch, best, live)
    bar.close()
    if ctx.is_main:
        finish(run, cfg, method, data, device, best, hooks)
        distributed.close()


def _epoch(run, method, sched, src, tgt, n_steps, epoch, bar, ctx=None) -> dict[str, float]:
    """One epoch of ``n_steps`` steps from the batch iterators ``src``, ``tgt`` (either None)."""
    ctx = ctx or distributed.Context()
    method.train()
    run_epochs = method.cfg.epochs
    sums: dict[str, float] = {}
    t0, last_beat = time.time(), 0.0
    for step in range(1, n_steps + 1):
        logs = method.update(_next_batch(src, tgt))
        bad = {k: v for k, v in logs.items() if not math.isfinite(v)}
        beat = time.time() - last_beat > 2.0 or step == n_steps
        # one collective per step when distributed: every rank stops at the same step
        diverged, cancel = ctx.any_of(bool(bad), beat and ctx.is_main and run.cancel_requested())
        if diverged:
            raise FascoreError(
                f"training diverged at epoch {epoch}, step {step}: "
                + (", ".join(f"{k} = {v}" for k, v in bad.items()) or "on another process")
                + f"; checkpoints up to epoch {epoch - 1} are kept. Lower --lr or check the data"
            )
        if cancel:
            raise CancelRequested()
        sched.step()
        for k, v in logs.items():
            sums[k] = sums.get(k, 0.0) + v
        bar.update(logs)
        if beat:
            last_beat = time.time()
            run.update_status(
                progress=bar.status(epoch=epoch, epochs=run_epochs, step=step, steps=n_steps)
            )
    means = ctx.mean({k: v / n_steps for k, v in sums.items()})  # over ranks: the global batch
    run.log(
        f"epoch {epoch}: "
        + ", ".join(f"{k}={v:.4f}" for k, v in means.items())
        + f" ({time.time() - t0:.1f}s)"
    )
    return means


def _evaluate(run, cfg, method, data, device, epoch, n_steps, logs, hooks) -> dict:
    model = method.model
    record = {
        "epoch": epoch,
        "step": epoch * n_steps,
        "time_s": time.time(),
        "train": logs,
        "source_dev": dev_summary(model, data, "source_dev", device, cfg.level),
        "target_dev": dev_summary(model, data, "target_dev", device, cfg.level),
        "mmd": None,
    }
    if hooks is not None:
        record["mmd"] = hooks.epoch(epoch, models_of(method))
    run.append_metrics(record)
    status = run.status().get("progress") or {}
    status["mmd"] = record["mmd"]
    run.update_status(progress=status)
    return record
