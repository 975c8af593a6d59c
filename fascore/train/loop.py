"""Train one run into its run folder: the loop knows nothing about the method or the model.

``train(config)`` reads the manifests, samples the target shots, decodes the images once, builds
the method (and loads the frozen teacher for student methods), then per epoch: steps, evaluates on
the development sets, writes a metrics line, an atomic checkpoint and, when the selection rule says
so, the best weights. At the end it scores the development and test sets with the selected weights,
writes the PAD metrics and runs the analysis (embeddings, alignment statistics, UMAP).

Model selection and thresholds follow the evaluation regimes of ``fascore.train.regimes``: the
loop keeps one selected checkpoint per regime (``few-shot``: ``config.select``, ``last`` or
``source_dev``; ``target-dev``: the lowest target dev EER), each at the reported scoring level
(``config.level``), and ``_finish`` scores and evaluates both. The target's test split is never
looked at before the end. A non-finite loss stops the run (state ``failed``, checkpoints kept).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from typing import Protocol

import numpy as np
import pandas as pd
import torch

from fascore import metrics
from fascore.config import RunConfig
from fascore.data.images import FaceBatches, normalize_bytes_
from fascore.data.manifest import read_preprocessing
from fascore.devices import device_slot, resolve_device
from fascore.errors import FascoreError
from fascore.progress import Progress
from fascore.store.runs import CancelRequested, Run, RunStore
from fascore.train import distributed, regimes
from fascore.train.checkpoint import (
    load_best,
    load_checkpoint,
    save_best,
    save_checkpoint,
)
from fascore.train.methods import METHODS, Batch, Method
from fascore.train.models import FASModel, create_model
from fascore.train.scoring import evaluate_scores, score_frame
from fascore.train.teacher import load_teacher, wait_for_teacher
from fascore.train.trainset import TrainData, clamp_batch, load_train_data, target_metrics_problem


def _device_type(name: str) -> str:
    """CUDA or CPU, as ``resolve_device`` would pick (no error here: that comes later)."""
    cuda = name.startswith("cuda") or (name == "auto" and torch.cuda.is_available())
    return "cuda" if cuda and torch.cuda.is_available() else "cpu"


def build_model(cfg: RunConfig, teacher_run: Run | None) -> tuple[FASModel, FASModel | None]:
    """The trained model and the frozen teacher (None for methods without one)."""
    method_cls = METHODS.get(cfg.method)
    teacher = load_teacher(teacher_run) if teacher_run is not None else None  # source-only
    pretrained = cfg.pretrained or ("imagenet" if cfg.init == "imagenet" else None)
    model = create_model(
        cfg.model, input_size=cfg.image_size, pretrained=pretrained, embed_layer=cfg.embed_layer
    )
    if (
        teacher is not None
        and cfg.init == "teacher"
        and method_cls is not METHODS.get("target_only")
    ):
        if teacher.name != model.name:
            raise FascoreError(
                f"init=teacher needs the same backbone: teacher is {teacher.name}, "
                f"student is {model.name}; use --init scratch or --model {teacher.name}"
            )
        model.load_state_dict(teacher.state_dict())
    return model, teacher


def make_method(
    cfg: RunConfig, model: FASModel, teacher: FASModel | None, device: torch.device
) -> Method:
    """The run's method on ``device``, set up by ``prepare_for_device`` (mixed precision and its
    grad scaler, ``channels_last``, cuDNN autotuning on CUDA): the trainer's one AMP path."""
    method = METHODS.get(cfg.method)(cfg, model.to(device), teacher.to(device) if teacher else None)
    prepare_for_device(method, cfg, device)
    return method


@torch.no_grad()
def predict_scores(model: FASModel, data: TrainData, rows: np.ndarray, device) -> np.ndarray:
    """Spoof probabilities for ``rows`` of the decoded images, in batches, eval mode."""
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(rows), 256):
        idx = torch.as_tensor(rows[start : start + 256])
        x = normalize_bytes_(data.images.images.index_select(0, idx).to(device).float())
        out.append(torch.softmax(model(x).float(), dim=1)[:, 1].cpu())
    model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros(0)


def dev_summary(model: FASModel, data: TrainData, part: str, device, level: str) -> dict | None:
    """AUC and EER of a development part at the reported scoring level (selection uses it)."""
    rows = data.rows(part)
    y = data.frame.loc[data.frame.index[rows], "y"].to_numpy()
    if len(rows) == 0 or len(set(y)) < 2:
        return None
    s = predict_scores(model, data, rows, device)
    if not np.isfinite(s).all():
        return {"auc": float("nan"), "eer": float("nan"), "level": level}
    units = metrics.ScoreSet(y, s, video=data.frame["video"].to_numpy()[rows])
    if level == "video":
        units = metrics.video_scores(units)
    out = {"auc": metrics.auc(units.y, units.score), "eer": metrics.eer(units.y, units.score)[0]}
    return {**out, "level": level}


def _streams(cfg: RunConfig, method: Method, data: TrainData, device, ctx=None) -> list:
    """Infinite seeded batch streams: [source or None, target or None]; on CUDA the uint8 cache
    moves to the GPU once (when it fits) and batches come in ``channels_last``; with several
    processes each rank takes its shard of every global batch."""
    ctx = ctx or distributed.Context()
    images = data.images.on_device(device)

    def stream(part: str, salt: int) -> FaceBatches:
        return FaceBatches(
            images,
            data.frame["y"].to_numpy(),
            data.rows(part),
            batch_size=cfg.batch_size,
            augment=cfg.augment,
            infinite=True,
            seed=cfg.seed * 1000 + salt,
            device=device,
            shard=ctx.shard,
            channels_last=device.type == "cuda",
        )

    return [
        stream("source_train", 1) if method.uses_source else None,
        stream("target_train", 2) if method.uses_target else None,
    ]


def steps_per_epoch(cfg: RunConfig, data: TrainData) -> int:
    """One pass over the larger training stream, so every method gets the same step budget."""
    if cfg.steps_per_epoch:
        return cfg.steps_per_epoch
    n = max(len(data.rows("source_train")), len(data.rows("target_train")))
    return max(1, math.ceil(n / cfg.batch_size))


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


def _next_batch(src, tgt) -> Batch:
    xs, ys, _ = next(src) if src is not None else (None, None, None)
    xt, yt, _ = next(tgt) if tgt is not None else (None, None, None)
    return Batch(xs, ys, xt, yt)


def headline_regime(cfg: RunConfig) -> str:
    """The regime whose selected weights the run analyses and reports first."""
    return cfg.regime


def _weights_key(cfg: RunConfig, regime: str) -> str:
    return "best" if regime == headline_regime(cfg) else "best_alt"


def _select(run: Run, cfg: RunConfig, method: Method, record: dict, best: dict) -> dict:
    """Update each regime's selection with this epoch; save the weights of the ones it wins."""
    for regime in regimes.REGIMES:
        score = regimes.selection_value(record, regimes.selection_rule(regime, cfg.select))
        if regime not in best or score <= best[regime]["score"]:
            best[regime] = {"epoch": record["epoch"], "score": score}
            save_best(run, method.model, record["epoch"], _weights_key(cfg, regime))
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
    ctx = distributed.context(_device_type(config.device))  # under torchrun: join the group
    if not ctx.is_main:
        return _follow(config, store, resume, ctx)
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
    model, teacher = build_model(cfg, teacher_run)
    method = make_method(cfg, model, teacher, device)
    n_steps = steps_per_epoch(cfg, data)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(method.optimizer, T_max=cfg.epochs * n_steps)
    streams = _streams(cfg, method, data, device, ctx)
    live = [s for s in streams if s is not None]
    if hooks is not None and ctx.is_main:
        hooks.start(run, *data.analysis_samples(), seed=cfg.seed)
    start_epoch, best = 0, {}
    if resume and run.has("checkpoint"):
        start_epoch, best = load_checkpoint(run, method, sched, live)
        run.log(f"resumed after epoch {start_epoch}")
    if resume and ctx.is_main and run.truncate_metrics(start_epoch):  # later epochs are redone
        run.log(f"dropped metrics records after epoch {start_epoch}")
    distributed.wrap(method.model, ctx, device)
    src, tgt = (iter(s) if s is not None else None for s in streams)
    bar = Progress(cfg.epochs * n_steps, enabled=show, label=run.id, batch=cfg.batch_size)
    on = f"{device.type} x{ctx.world}" if ctx.active else device.type
    run.update_status(message=f"training {cfg.method} on {on}")
    if ctx.active:
        run.log(f"DDP: {ctx.world} processes, each {cfg.batch_size // ctx.world} of every batch")
    bar.skip(start_epoch * n_steps)
    for epoch in range(start_epoch + 1, cfg.epochs + 1):
        if ctx.active:  # each rank its own dropout masks, fixed by (seed, rank, epoch): resumable
            torch.manual_seed(cfg.seed * 1_000_003 + ctx.rank * 1_009 + epoch)
        logs = _epoch(run, method, sched, src, tgt, n_steps, epoch, bar, ctx)
        if not ctx.is_main:
            continue
        with distributed.unwrapped(method.model):
            record = _evaluate(run, cfg, method, data, device, epoch, n_steps, logs, hooks)
        best = _select(run, cfg, method, record, best)
        save_checkpoint(run, method, sched, epoch, best, live)
    bar.close()
    distributed.unwrap(method.model)
    if ctx.is_main:
        _finish(run, cfg, method, data, device, best, hooks)
        distributed.close()


def _epoch(run, method, sched, src, tgt, n_steps, epoch, bar, ctx=None) -> dict[str, float]:
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
        record["mmd"] = hooks.epoch(epoch, _models(method))
    run.append_metrics(record)
    status = run.status().get("progress") or {}
    status["mmd"] = record["mmd"]
    run.update_status(progress=status)
    return record


def _regime_results(run, cfg, method, data, device, best) -> tuple[dict, pd.DataFrame]:
    """Score dev and test with each regime's selected weights; evaluate each regime.

    Returns ``{display name: results}`` and the headline regime's score table.
    """
    uses_target = METHODS.get(cfg.method).uses_target
    out, tables, shot_tables, head = {}, {}, {}, headline_regime(cfg)
    for regime in sorted(regimes.REGIMES, key=lambda r: r != head):  # the headline first
        epoch = best[regime]["epoch"]
        if epoch not in tables:
            method.model.load_state_dict(load_best(run, _weights_key(cfg, regime)))
            method.model.eval()
            predict = lambda r: predict_scores(method.model, data, r, device)  # noqa: E731
            tables[epoch] = score_frame(data, predict)
            shot_tables[epoch] = score_frame(data, predict, parts=("target_train",))
        res = evaluate_scores(data, tables[epoch], cfg, regime, shots=shot_tables[epoch])
        rule = regimes.selection_rule(regime, cfg.select)
        name = regimes.display_name(regime, cfg.shots, uses_target)
        out[name] = {"regime": regime, "selection": rule, "selected_epoch": epoch, **res}
    head_epoch = best[head]["epoch"]
    method.model.load_state_dict(load_best(run))  # analysis uses the headline's weights
    method.model.eval()
    return out, tables[head_epoch]


def _models(method: Method) -> dict[str, FASModel]:
    """The models the analysis looks at: the teacher and, for a student run, the student."""
    models = {"teacher": method.teacher or method.model}
    if method.role == "student":
        models["student"] = method.model
    return models


def _finish(run, cfg, method, data, device, best, hooks) -> None:
    run.update_status(message="scoring the test sets")
    results, scores = _regime_results(run, cfg, method, data, device, best)
    run.write_table("scores", scores)
    head = next(iter(results.values()))
    final = {
        "regime": next(iter(results)),
        "selected_epoch": head["selected_epoch"],
        "select": head["selection"],
        "level": cfg.level,
        "threshold_rule": head["threshold_text"] + "; hter_oracle uses the test split's own "
        "EER, reference only",
        "label_budget": head["label_budget"],
        "preprocessing": {m: read_preprocessing(m) for m in cfg.data},
        "shots": data.shots,
        **{k: head[k] for k in ("target_test", "source_test") if k in head},
        "regimes": results,
    }
    run.write_json("final", final)
    hter = (final.get("target_test") or {}).get("hter")
    run.log(f"{final['regime']}: selected epoch {head['selected_epoch']}; target test HTER {hter}")
    if hooks is not None:
        run.update_status(message="analysing embeddings")
        samples, images = data.analysis_samples()
        threshold = (final.get("target_test") or {}).get("threshold")
        hooks.finish(run, _models(method), samples, images, device=str(device), seed=cfg.seed,
                     threshold=threshold)  # fmt: skip
    run.update_status(
        state="done",
        message="done",
        finished=time.time(),
        progress={**run.progress(), "fraction": 1.0, "eta_s": 0},
    )
    run.mark_done()
