"""The teacher of a student run: checked for compatibility, waited for until it is done, and
loaded with weights selected on source data only.

A teacher run keeps one selected checkpoint per evaluation regime (``fascore.train.loop``):
``best`` for its headline regime, ``best_alt`` for the other. Its ``target-dev`` weights were
chosen on the labelled target dev split, so a student built on them would use target labels
its few-shot row never counts. ``teacher_weights_key`` therefore always names the few-shot
regime's weights (selected by ``last`` or ``source_dev``: source data only), whatever regime the
teacher run reports as its headline.
"""

from __future__ import annotations

import time

import torch

from fascore.config import RunConfig
from fascore.errors import FascoreError
from fascore.store.runs import CancelRequested, Run, RunStore
from fascore.train.checkpoint import load_best
from fascore.train.methods import METHODS
from fascore.train.models import FASModel, create_model

TEACHER_WAIT_S = 2.0


def check_teacher(cfg: RunConfig, teacher: Run) -> None:
    """Refuse a teacher run that cannot teach ``cfg``: unreadable, itself a student, trained on
    other source domains or at another image size (the CLI, ``plan_runs`` and the dashboard all
    come through here)."""
    if why := teacher.problem():
        raise FascoreError(f"teacher run {teacher.id} is unreadable: {why}")
    tcfg = teacher.config()
    method = tcfg.get("method")
    if method not in METHODS or METHODS.get(method).role != "teacher":
        raise FascoreError(
            f"run {teacher.id} ({method}) is not a teacher: pick a source_only run as --teacher"
        )
    sources = tuple(tcfg.get("source_domains") or ())
    if sources != tuple(cfg.source_domains):
        raise FascoreError(
            f"teacher {teacher.id} was trained on {'+'.join(sources) or 'nothing'}, not "
            f"{'+'.join(cfg.source_domains)}; pick a matching teacher or train a new one"
        )
    if tcfg.get("image_size") != cfg.image_size:
        raise FascoreError(
            f"teacher {teacher.id} takes {tcfg.get('image_size')}px images, this run "
            f"{cfg.image_size}px; use --image-size {tcfg.get('image_size')} or a matching teacher"
        )


def wait_for_teacher(run: Run, cfg: RunConfig, store: RunStore) -> Run | None:
    """A student waits (state queued) until its teacher run is done; None for teacher-less runs."""
    if not METHODS.get(cfg.method).needs_teacher:
        return None
    if not cfg.teacher:
        raise FascoreError(f"method {cfg.method!r} needs a teacher run: pass --teacher RUN_ID")
    teacher = store.get(cfg.teacher)
    check_teacher(cfg, teacher)
    while (state := teacher.state()) != "done":
        if state in ("failed", "cancelled", "interrupted"):
            raise FascoreError(f"teacher run {teacher.id} is {state}; resume or retrain it first")
        if run.cancel_requested():
            raise CancelRequested()
        run.update_status(state="queued", message=f"waiting for teacher {teacher.id}")
        time.sleep(TEACHER_WAIT_S)
    return teacher


def teacher_weights_key(teacher_config: dict) -> str:
    """The weights file of a teacher run that was selected on source data only: ``best`` when
    its headline regime is few-shot, else ``best_alt`` (its few-shot regime's weights)."""
    return "best" if teacher_config.get("regime", "few-shot") == "few-shot" else "best_alt"


def load_teacher(teacher: Run, device: str | torch.device = "cpu") -> FASModel:
    """The frozen teacher of a student run: the teacher run's source-only selected weights
    (``teacher_weights_key``), in eval mode."""
    tcfg = RunConfig.from_dict(teacher.config())
    key = teacher_weights_key(teacher.config())
    if not teacher.has(key):
        raise FascoreError(
            f"teacher run {teacher.id} has no source-selected weights ({key}); retrain it"
        )
    try:
        model = create_model(tcfg.model, input_size=tcfg.image_size, embed_layer=tcfg.embed_layer)
        model.load_state_dict(load_best(teacher, key))
    except (RuntimeError, OSError, KeyError, EOFError, ValueError) as err:
        raise FascoreError(
            f"the weights of teacher run {teacher.id} are damaged ({type(err).__name__}); "
            "retrain it"
        ) from None
    return model.to(device).eval()
