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

import numpy as np
import pandas as pd
import torch

from fascore.config import RunConfig
from fascore.data.images import FaceBatches, normalize, normalize_bytes_
from fascore.data.manifest import read_preprocessing
from fascore.errors import FascoreError
from fascore.eval import metrics
from fascore.progress import Progress
from fascore.runs import CancelRequested, Run, RunStore
from fascore.train import regimes
from fascore.train.checkpoint import load_checkpoint, save_checkpoint
from fascore.train.methods import METHODS, Batch, Method
from fascore.train.models import FASModel, create_model
from fascore.train.trainset import (
    TrainData,
    clamp_batch,
    load_train_data,
    score_frame,
    target_metrics_problem,
    wait_for_teacher,
)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an unavailable device is a clear error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise FascoreError(
            f"device {name!r} asked for, but CUDA is not available; use --device cpu"
        )
    return dev


def build_model(cfg: RunConfig, teacher_run: Run | None) -> tuple[FASModel, FASModel | None]:
    """The trained model and the frozen teacher (None for methods without one)."""
    method_cls = METHODS.get(cfg.method)
    teacher = load_run_model(teacher_run) if teacher_run is not None else None
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


def load_run_model(run: Run, device: str | torch.device = "cpu") -> FASModel:
    """The selected weights of a finished run, in eval mode (``weights_only`` loading)."""
    cfg = RunConfig.from_dict(run.config())
    if not run.has("best"):
        raise FascoreError(f"run {run.id} has no trained weights yet (state: {run.state()})")
    try:
        state = torch.load(run.file("best"), map_location="cpu", weights_only=True)
        model = create_model(cfg.model, input_size=cfg.image_size, embed_layer=cfg.embed_layer)
        model.load_state_dict(state["model"])
    except (RuntimeError, OSError, KeyError, EOFError, ValueError) as err:
        raise FascoreError(
            f"the weights of run {run.id} are damaged ({type(err).__name__}); retrain the run"
        ) from None
    return model.to(device).eval()


def load_models(run: Run, device: str | torch.device = "cpu") -> dict[str, FASModel]:
    """A run's models in eval mode: ``teacher`` and, for a student run, ``student``."""
    cfg = RunConfig.from_dict(run.config())
    own = load_run_model(run, device)
    if METHODS.get(cfg.method).role == "teacher":
        return {"teacher": own}
    out = {"student": own}
    if cfg.teacher:
        out = {"teacher": load_run_model(RunStore(run.path.parent).get(cfg.teacher), device), **out}
    return out


def preprocess(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 ``(B,3,H,W)`` -> float ``(B,3,size,size)`` normalised as in training."""
    x = images.float().div(255.0)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
    return normalize(x)


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


def _streams(cfg: RunConfig, method: Method, data: TrainData, device) -> list:
    """Infinite seeded batch streams: [source or None, target or None]."""

    def stream(part: str, salt: int) -> FaceBatches:
        return FaceBatches(
            data.images,
            data.frame["y"].to_numpy(),
            data.rows(part),
            batch_size=cfg.batch_size,
            augment=cfg.augment,
            infinite=True,
            seed=cfg.seed * 1000 + salt,
            device=device,
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
            key = _weights_key(cfg, regime)
            torch.save(
                {"model": method.model.state_dict(), "epoch": record["epoch"]}, _tmp(run, key)
            )
            _tmp(run, key).replace(run.file(key))
    return best


def train(
    config: RunConfig, store: RunStore | None = None, *, resume: bool = False, progress: bool = True
) -> Run:
    """Train ``config`` into its run folder and return the run (see the module docstring)."""
    from fascore.jobs.control import device_slot  # the job queue: one run per device slot

    config.check()
    store = store or RunStore()
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
            device = resolve_device(config.device)
            with device_slot(run, str(device)):
                _train(run, config, teacher_run, device, resume, progress)
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


def _train(run: Run, cfg: RunConfig, teacher_run, device, resume: bool, show: bool) -> None:
    torch.manual_seed(cfg.seed)
    run.update_status(state="running", started=time.time(), message="loading data")
    data = load_train_data(cfg, run)
    cfg = clamp_batch(cfg, data, run.log)
    model, teacher = build_model(cfg, teacher_run)
    method = METHODS.get(cfg.method)(cfg, model.to(device), teacher.to(device) if teacher else None)
    method.amp = bool(cfg.amp and device.type == "cuda")
    method.scaler = torch.amp.GradScaler("cuda", enabled=method.amp)
    n_steps = steps_per_epoch(cfg, data)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(method.optimizer, T_max=cfg.epochs * n_steps)
    streams = _streams(cfg, method, data, device)
    live = [s for s in streams if s is not None]
    tracker = data.epoch_tracker(run) if cfg.analysis else None
    start_epoch, best = 0, {}
    if resume and run.has("checkpoint"):
        start_epoch, best = load_checkpoint(run, method, sched, live)
        run.log(f"resumed after epoch {start_epoch}")
    if resume and run.truncate_metrics(start_epoch):  # epochs after the checkpoint are redone
        run.log(f"dropped metrics records after epoch {start_epoch}")
    src, tgt = (iter(s) if s is not None else None for s in streams)
    bar = Progress(cfg.epochs * n_steps, enabled=show, label=run.id, batch=cfg.batch_size)
    run.update_status(message=f"training {cfg.method} on {device.type}")
    bar.skip(start_epoch * n_steps)
    for epoch in range(start_epoch + 1, cfg.epochs + 1):
        logs = _epoch(run, method, sched, src, tgt, n_steps, epoch, bar)
        record = _evaluate(run, cfg, method, data, device, epoch, n_steps, logs, tracker)
        best = _select(run, cfg, method, record, best)
        save_checkpoint(run, method, sched, epoch, best, live)
    bar.close()
    _finish(run, cfg, method, teacher, data, device, best, tracker)


def _tmp(run: Run, key: str):
    return run.file(key).with_name(f".{run.file(key).name}.{os.getpid()}.tmp")


def _epoch(run, method, sched, src, tgt, n_steps, epoch, bar) -> dict[str, float]:
    method.train()
    run_epochs = method.cfg.epochs
    sums: dict[str, float] = {}
    t0, last_beat = time.time(), 0.0
    for step in range(1, n_steps + 1):
        logs = method.update(_next_batch(src, tgt))
        bad = {k: v for k, v in logs.items() if not math.isfinite(v)}
        if bad:
            raise FascoreError(
                f"training diverged at epoch {epoch}, step {step}: "
                + ", ".join(f"{k} = {v}" for k, v in bad.items())
                + f"; checkpoints up to epoch {epoch - 1} are kept. Lower --lr or check the data"
            )
        sched.step()
        for k, v in logs.items():
            sums[k] = sums.get(k, 0.0) + v
        bar.update(logs)
        if time.time() - last_beat > 2.0 or step == n_steps:
            last_beat = time.time()
            if run.cancel_requested():
                raise CancelRequested()
            run.update_status(
                progress=bar.status(epoch=epoch, epochs=run_epochs, step=step, steps=n_steps)
            )
    means = {k: v / n_steps for k, v in sums.items()}
    run.log(
        f"epoch {epoch}: "
        + ", ".join(f"{k}={v:.4f}" for k, v in means.items())
        + f" ({time.time() - t0:.1f}s)"
    )
    return means


def _evaluate(run, cfg, method, data, device, epoch, n_steps, logs, tracker) -> dict:
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
    if tracker is not None:
        models = {"teacher": method.teacher or model}
        if method.role == "student":
            models["student"] = model
        record["mmd"] = tracker.update(epoch, models)
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
    out, tables, head = {}, {}, headline_regime(cfg)
    for regime in sorted(regimes.REGIMES, key=lambda r: r != head):  # the headline first
        epoch = best[regime]["epoch"]
        if epoch not in tables:
            state = torch.load(
                run.file(_weights_key(cfg, regime)), map_location="cpu", weights_only=True
            )
            method.model.load_state_dict(state["model"])
            method.model.eval()
            tables[epoch] = score_frame(
                data, lambda r: predict_scores(method.model, data, r, device)
            )
        res = data.evaluate(tables[epoch], cfg, regime)
        rule = regimes.selection_rule(regime, cfg.select)
        name = regimes.display_name(regime, cfg.shots, uses_target)
        out[name] = {"regime": regime, "selection": rule, "selected_epoch": epoch, **res}
    head_epoch = best[head]["epoch"]
    state = torch.load(run.file("best"), map_location="cpu", weights_only=True)
    method.model.load_state_dict(state["model"])  # analysis uses the headline's weights
    method.model.eval()
    return out, tables[head_epoch]


def _finish(run, cfg, method, teacher, data, device, best, tracker) -> None:
    run.update_status(message="scoring the test sets")
    results, scores = _regime_results(run, cfg, method, data, device, best)
    run.write_table("scores", scores)
    head = next(iter(results.values()))
    final = {
        "regime": next(iter(results)),
        "selected_epoch": head["selected_epoch"],
        "select": head["selection"],
        "level": cfg.level,
        "threshold_rule": f"EER threshold of the {head['threshold_from'].replace('_', ' ')} split "
        "(at the scoring level), applied to the target test split; the source test split uses "
        "the source dev threshold; hter_oracle uses the test split's own EER, reference only",
        "label_budget": head["label_budget"],
        "preprocessing": {m: read_preprocessing(m) for m in cfg.data},
        "shots": data.shots,
        **{k: head[k] for k in ("target_test", "source_test") if k in head},
        "regimes": results,
    }
    run.write_json("final", final)
    hter = (final.get("target_test") or {}).get("hter")
    run.log(f"{final['regime']}: selected epoch {head['selected_epoch']}; target test HTER {hter}")
    if tracker is not None:
        from fascore.eval.analysis import analyse_run

        run.update_status(message="analysing embeddings")
        models = {"teacher": teacher or method.model}
        if method.role == "student":
            models["student"] = method.model
        tracker.finish()
        samples, images = data.analysis_samples()
        analyse_run(
            run,
            models,
            samples,
            images,
            device=str(device),
            seed=cfg.seed,
            threshold=(final.get("target_test") or {}).get("threshold"),
        )
    run.update_status(
        state="done",
        message="done",
        finished=time.time(),
        progress={**run.progress(), "fraction": 1.0, "eta_s": 0},
    )
    run.mark_done()
