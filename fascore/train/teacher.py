"""A student run waits for its teacher run to finish before it trains."""

from __future__ import annotations

import time

from fascore.config import RunConfig
from fascore.errors import FascoreError
from fascore.runs import CancelRequested, Run, RunStore
from fascore.train.methods import METHODS

TEACHER_WAIT_S = 2.0


def wait_for_teacher(run: Run, cfg: RunConfig, store: RunStore) -> Run | None:
    """A student waits (state queued) until its teacher run is done; None for teacher-less runs."""
    if not METHODS.get(cfg.method).needs_teacher:
        return None
    if not cfg.teacher:
        raise FascoreError(f"method {cfg.method!r} needs a teacher run: pass --teacher RUN_ID")
    teacher = store.get(cfg.teacher)
    while (state := teacher.state()) != "done":
        if state in ("failed", "cancelled", "interrupted"):
            raise FascoreError(f"teacher run {teacher.id} is {state}; resume or retrain it first")
        if run.cancel_requested():
            raise CancelRequested()
        run.update_status(state="queued", message=f"waiting for teacher {teacher.id}")
        time.sleep(TEACHER_WAIT_S)
    return teacher
