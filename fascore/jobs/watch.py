"""How far a group of submitted runs (an experiment, e.g. the demo) has got, read from their
status files: runs done and left, each running run's epoch, and the time left at the pace
measured so far (the Overview page shows it while jobs run). Pure: no torch, no Streamlit.

The estimate, once a run of the batch has finished, is per run: each queued run takes the mean
wall time of the finished ones (training, scoring and the analysis after the last epoch, which
the epoch count cannot see: ~40 % of a demo run), and each running one the larger of that mean
less its own elapsed time and the rest of its epochs at its own pace. Runs are taken to run one
after another, as the local launcher runs them on one device. Before any run has finished, the
epochs so far set the pace (``remaining_time``), which leaves out the analysis still to come.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from fascore.store.runs import ACTIVE_STATES as ACTIVE


@dataclass(frozen=True)
class Progress:
    """How far a group of runs (an experiment, e.g. the demo) has got, from their status files."""

    done: int  # runs finished (done, failed, cancelled or interrupted: nothing more to wait for)
    left: int  # runs queued or running
    running: tuple[tuple[str, int, int], ...]  # (run id, epoch, epochs) of each running run
    fraction: float  # epochs finished over all epochs of the group, in [0, 1]
    elapsed_s: float | None  # wall time since the first run started
    remaining_s: float | None  # estimate at the pace measured so far; None before any epoch
    per_run_s: float | None = None  # mean wall time of the finished runs, when there are some


def remaining_time(elapsed_s: float, fraction: float) -> float | None:
    """Wall time left if the rest goes at the pace measured so far:
    ``elapsed * (1 - fraction) / fraction``; None while nothing is measured (fraction 0)."""
    if fraction <= 0 or elapsed_s <= 0:
        return None
    return elapsed_s * (1.0 - min(fraction, 1.0)) / fraction


def _epochs(state: str, progress: dict, default: int) -> tuple[float, float]:
    """(epochs finished, epochs still to come or finished) of one run: a done run counts whole, a
    queued one zero of ``default``; a stopped one only what it finished (nothing more comes)."""
    epochs = float(progress.get("epochs") or default)
    finished = epochs if state == "done" else float(progress.get("fraction") or 0.0) * epochs
    return finished, epochs if state in ("done", *ACTIVE) else finished


def group_progress(runs: list[tuple[str, str, dict]], now: float | None = None) -> Progress:
    """Progress of runs given as ``(run id, state, status dict)`` (``Run.status()``).

    Runs that stopped (failed, cancelled, interrupted) count as done: nothing more is coming from
    them. The estimate weighs every epoch alike (a teacher's epoch may be slower than a student's)
    and assumes the machine stays as busy as it was, which is what a user on a shared machine
    needs to read: at this pace, about this long. A queued run's epochs are taken to be those of
    the other runs (its status has no progress yet).
    """
    now = time.time() if now is None else now
    progress = {rid: status.get("progress") or {} for rid, _, status in runs}
    default = max((int(p.get("epochs") or 0) for p in progress.values()), default=0) or 1
    parts = [_epochs(state, progress[rid], default) for rid, state, _ in runs]
    finished, total = sum(p[0] for p in parts), sum(p[1] for p in parts)
    starts = [float(status["started"]) for _, _, status in runs if status.get("started")]
    elapsed = now - min(starts) if starts else None
    fraction = finished / total if total else 0.0
    running = tuple(
        (rid, int(progress[rid].get("epoch") or 0), int(progress[rid].get("epochs") or 0))
        for rid, state, _ in runs
        if state == "running"
    )
    left = sum(state in ACTIVE for _, state, _ in runs)
    remaining = remaining_time(elapsed, fraction) if elapsed is not None else None
    per_run = _mean_duration(runs)
    if per_run is not None:
        remaining = sum(_run_rest(state, s, per_run, now) for _, state, s in runs)
    return Progress(len(runs) - left, left, running, fraction, elapsed, remaining, per_run)


def _mean_duration(runs: list[tuple[str, str, dict]]) -> float | None:
    """Mean wall time (finished - started) of the done runs; None when none has finished."""
    spans = [
        float(s["finished"]) - float(s["started"])
        for _, state, s in runs
        if state == "done" and s.get("finished") and s.get("started")
    ]
    return sum(spans) / len(spans) if spans else None


def _run_rest(state: str, status: dict, per_run: float, now: float) -> float:
    """Wall time one run still needs: a queued run the mean, a running one the larger of the
    mean less its elapsed time and the rest of its epochs at its own pace; others nothing."""
    if state == "queued":
        return per_run
    if state != "running":
        return 0.0
    elapsed = now - float(status.get("started") or now)
    fraction = float((status.get("progress") or {}).get("fraction") or 0.0)
    own = remaining_time(elapsed, fraction) or 0.0
    return max(per_run - elapsed, own, 0.0)


def current_batch(runs: list[tuple[str, str, dict, float]]) -> list[tuple[str, str, dict]]:
    """The runs of the batch still going, from ``(run id, state, status, submitted at)``: the
    active runs and those that finished since the earliest active one was submitted (a run
    finished last week in the same experiment is no part of this batch's pace)."""
    active = [created for _, state, _, created in runs if state in ACTIVE]
    if not active:
        return []
    since = min(active)
    return [
        (rid, state, status)
        for rid, state, status, _ in runs
        if state in ACTIVE or float(status.get("finished") or 0.0) >= since
    ]
