"""The run folder: the one result interface. Only this module knows the file names.

A run store is a folder (``checkpoints/`` unless ``FASCORE_RUNS_DIR`` says otherwise) holding one
folder per run. A run folder holds the full config, a status file (state, pid, heartbeat,
progress), one JSON line of metrics per evaluation, the log, checkpoints written atomically,
per-sample scores, embeddings, projections and domain statistics, and an empty ``done`` written
last. Job state is read from the file system, so any viewer (CLI, dashboard, report) is just a
folder reader, and a closed browser tab or a restarted dashboard loses nothing.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fascore.atomic import atomic_path, atomic_write_text
from fascore.errors import FascoreError
from fascore.store import health as runhealth
from fascore.store import lock as runlock
from fascore.store import schema

RUNS_ENV = "FASCORE_RUNS_DIR"
DEFAULT_STORE = Path(__file__).resolve().parent.parent / "checkpoints"

STATES = schema.STATES  # queued, running, done, failed, cancelled, interrupted
ACTIVE_STATES = ("queued", "running")
RESUMABLE_STATES = ("interrupted", "failed", "cancelled")
#: Launcher name -> ``f(run, status) -> state`` for jobs whose liveness a scheduler knows (the
#: ``slurm`` launcher registers one); consulted only while the status says queued or running.
STATE_PROBES: dict[str, Callable[[Run, dict], str]] = {}
#: The state of a run whose files cannot be read; ``Run.problem()`` says why.
UNREADABLE = "unreadable"
#: Only for a run owned by another host whose lock cannot be seen from here (node-local locks):
#: a heartbeat older than this means its process is gone. On this host the lock decides.
HEARTBEAT_STALE_S = 120.0

# Every file a run folder may hold, by key. Nothing outside this module spells a file name.
FILES = {
    "config": "config.json",
    "status": "status.json",
    "metrics": "metrics.jsonl",
    "log": "log.txt",
    "checkpoint": "checkpoint.pt",
    "best": "best.pt",
    "best_alt": "best_alt.pt",
    "scores": "scores.parquet",
    "final": "final.json",
    "shots": "shots.json",
    "embeddings": "embeddings.npz",
    "embedding_index": "embedding_index.parquet",
    "epoch_embeddings": "epoch_embeddings.npz",
    "projection": "projection.parquet",
    "epoch_projection": "epoch_projection.parquet",
    "alignment": "alignment.json",
    "errors": "errors.parquet",
    "cases": "cases.json",
    "done": "done",
    "cancel": "cancel.request",
    "lock": "owner.lock",
}


class CancelRequested(Exception):
    """Raised inside a job when its run's cancel request is seen; the job exits as cancelled."""


def store_dir(root: str | Path | None = None) -> Path:
    """The run store: ``root``, else ``$FASCORE_RUNS_DIR``, else the repo's ``checkpoints/``."""
    return Path(root or os.environ.get(RUNS_ENV) or DEFAULT_STORE)


def pid_alive(pid: int | None, started: float | None = None) -> bool:
    """True when a process with this pid exists on this machine (zombies count as dead) and, when
    ``started`` is given, is the one that started then (see ``fascore.store.lock.process_alive``)."""
    return bool(pid) and runlock.process_alive(pid, started)


@dataclass(frozen=True)
class Run:
    """A handle on one run folder (it need not exist yet)."""

    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    def file(self, key: str) -> Path:
        """The path of one of the run's files, by key (see ``FILES``)."""
        return self.path / FILES[key]

    def has(self, key: str) -> bool:
        return self.file(key).exists()

    # -- config -----------------------------------------------------------------------------
    def write_config(self, config: dict) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.file("config"), json.dumps(config, indent=2, sort_keys=True))
        except OSError as err:
            raise FascoreError(
                f"cannot write to the run store {self.path.parent} ({err.strerror}); set "
                "FASCORE_RUNS_DIR to a writable folder"
            ) from None

    def config(self) -> dict:
        """The config as written, whatever its fields hold (``problem`` says when they do not
        fit), so a damaged run's row still shows what can be read; {} when it is not an object."""
        try:
            cfg = schema.parse(schema.read_text(self.file("config")), "config.json")
        except (FileNotFoundError, schema.Unfit):
            return {}
        return cfg if isinstance(cfg, dict) else {}

    # -- JSON documents (status, final metrics, alignment, shots) ---------------------------
    def write_json(self, key: str, obj: Any) -> None:
        atomic_write_text(self.file(key), json.dumps(obj, indent=2, default=_json_default))

    def read_json(self, key: str) -> Any:
        """The document, checked against its schema (``fascore.store.schema``); None when absent,
        half-written by a crashed writer, or not fitting its schema (``problem`` says why)."""
        try:
            return schema.load(key, self.file(key))
        except (FileNotFoundError, schema.Unfit):
            return None

    # -- status ------------------------------------------------------------------------------
    def _status_doc(self) -> tuple[dict, str | None]:
        """(status as written, None) or ({}, why it cannot be read)."""
        try:
            return schema.load("status", self.file("status")), None
        except FileNotFoundError:
            return {}, None
        except schema.Unfit as err:
            return {}, str(err)

    def status(self) -> dict:
        """The raw status as last written by the job (see ``state`` for the effective state); a
        corrupt one reads ``{"state": "unreadable", "problem": ...}``."""
        if not self.path.exists():
            return {"state": "missing"}
        doc, why = self._status_doc()
        if why:
            return {"state": UNREADABLE, "problem": why}
        return doc or {"state": "queued"}

    def update_status(self, **fields: Any) -> dict:
        """Merge fields into the status file and refresh the heartbeat (a corrupt file is
        replaced: the job writing it is the one that knows the truth)."""
        status, _ = self._status_doc()
        status.update(fields)
        status["heartbeat"] = time.time()
        status.setdefault("host", socket.gethostname())
        self.write_json("status", status)
        return status

    # -- ownership (one trainer per run; see fascore.store.lock) ---------------------------------
    def hold(self, wait_s: float = runlock.ACQUIRE_WAIT_S, role: str = "trainer"):
        """Context manager: own this run for the block (the trainer's lock, or a launcher's while
        it starts one), or a FascoreError naming the live owner."""
        return runlock.hold(self.file("lock"), self.id, wait_s, role)

    def owner(self) -> dict | None:
        """The record of the live process that owns the run (``{}`` if it has not said who it is
        yet), or None when no process holds the run's lock (or locks cannot be seen here)."""
        try:
            return runlock.probe(self.file("lock"))
        except OSError:
            return None

    def state(self) -> str:
        """The effective state (``live_state``); a finished run whose files do not fit their
        schema (``problem``) reads 'unreadable', so no reader of results ever sees them."""
        state = self.live_state()
        return UNREADABLE if state == "done" and self.problem() else state

    def live_state(self) -> str:
        """The state from the status and the process: a queued or running job whose process
        died reads 'interrupted'.

        Liveness comes from the run's lock, which the kernel frees when its holder dies: a
        running run whose lock is free is interrupted, whatever its heartbeat says. A queued run
        whose trainer has not taken the lock yet is alive while the launched process (pid and
        start time, so a reused pid does not count) is; with no pid it has not been started.
        Only a run owned by another host whose lock looks free falls back to the heartbeat.
        """
        status = self.status()
        state = status.get("state", "queued")
        if state == UNREADABLE:
            held = self.owner() is not None
            return "done" if self.has("done") else ("running" if held else UNREADABLE)
        if state not in ACTIVE_STATES:
            return state
        probe = STATE_PROBES.get(status.get("launcher", ""))
        if probe is not None:  # a cluster job: its pid is on another node; its scheduler knows
            return probe(self, status)
        if self.owner() is not None:
            return state
        if status.get("host", socket.gethostname()) != socket.gethostname():
            stale = time.time() - float(status.get("heartbeat") or time.time()) > HEARTBEAT_STALE_S
            return "interrupted" if state == "running" and stale else state
        if state == "queued" and (
            not status.get("pid") or pid_alive(status.get("pid"), status.get("pid_started"))
        ):
            return "queued"
        return "interrupted"

    def problem(self) -> str | None:
        """Why this run cannot be shown (a corrupt status, config, metrics line, table or weights
        file), or None. Cheap: archives and tables are checked by structure, not loaded. A
        finished run needs no status (its ``done`` marker, written last, says it finished)."""
        _, why = self._status_doc() if not self.has("done") else ({}, None)
        return why or runhealth.run_problem(self)

    def progress(self) -> dict:
        return self.status().get("progress") or {}

    # -- metrics and log --------------------------------------------------------------------
    def append_metrics(self, record: dict) -> None:
        line = json.dumps(record, default=_json_default)
        with open(self.file("metrics"), "a") as fh:
            fh.write(line + "\n")

    def metrics(self) -> list[dict]:
        """All evaluation records; a half-written or corrupt line is skipped (``problem`` names
        a corrupt one)."""
        try:
            lines = schema.read_text(self.file("metrics")).splitlines()
        except (FileNotFoundError, schema.Unfit):
            return []
        out = []
        for line in lines:
            try:
                out.append(schema.check("metrics", schema.parse(line, "line"), "record"))
            except schema.Unfit:
                continue
        return out

    def truncate_metrics(self, last_epoch: int) -> int:
        """Keep only the records of epochs up to ``last_epoch`` (resume: the checkpoint's epoch),
        dropping later ones and any torn line; returns how many lines were dropped."""
        if not self.has("metrics"):
            return 0
        lines = self.file("metrics").read_text(errors="replace").splitlines()
        keep = [json.dumps(r, default=_json_default) for r in self.metrics()
                if isinstance(r.get("epoch"), int) and r["epoch"] <= last_epoch]  # fmt: skip
        atomic_write_text(self.file("metrics"), "".join(line + "\n" for line in keep))
        return len(lines) - len(keep)

    def log(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(self.file("log"), "a") as fh:
            fh.write(f"{stamp} {message}\n")

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.file("log").read_text().splitlines()[-n:])
        except FileNotFoundError:
            return ""

    # -- tables and arrays -------------------------------------------------------------------
    def write_table(self, key: str, df: pd.DataFrame) -> None:
        with atomic_path(self.file(key)) as tmp:
            df.to_parquet(tmp, index=False)

    def read_table(self, key: str) -> pd.DataFrame | None:
        return pd.read_parquet(self.file(key)) if self.has(key) else None

    def write_arrays(self, key: str, arrays: dict[str, np.ndarray], compress: bool = True) -> None:
        with atomic_path(self.file(key)) as tmp:
            (np.savez_compressed if compress else np.savez)(tmp, **arrays)

    def read_arrays(self, key: str) -> dict[str, np.ndarray] | None:
        if not self.has(key):
            return None
        with np.load(self.file(key), allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    def reset(self) -> None:
        """Remove every output but the config (and the owner's lock), so a restarted run starts
        clean. Only the run's owner may call it."""
        for key, name in FILES.items():
            if key not in ("config", "lock"):
                (self.path / name).unlink(missing_ok=True)
        for tmp in self.path.glob(".*.tmp*"):  # temporary files of a crashed writer
            tmp.unlink(missing_ok=True)

    # -- completion and cancel requests -----------------------------------------------------
    def mark_done(self) -> None:
        self.file("done").touch()

    def unmark_done(self) -> None:
        self.file("done").unlink(missing_ok=True)

    def request_cancel(self) -> None:
        self.file("cancel").touch()

    def cancel_requested(self) -> bool:
        return self.has("cancel")

    def clear_cancel(self) -> None:
        self.file("cancel").unlink(missing_ok=True)

    # -- summaries ---------------------------------------------------------------------------
    def summary(self) -> dict:
        """One row for run lists: id, state, method, protocol, key target-test metrics. A run whose
        files cannot be read has state ``unreadable`` and says why in ``problem`` (its row shows
        what could be read, so it can still be found)."""
        why = self.problem()
        cfg = self.config()
        final = (self.read_json("final") if why is None else None) or {}
        test = final.get("target_test") or {}
        progress = self.status().get("progress")
        sources = cfg.get("source_domains")
        return {
            "run": self.id,
            "state": UNREADABLE if why else self.live_state(),
            "problem": why or "",
            "experiment": _text(cfg.get("experiment")),
            "method": _text(cfg.get("method")),
            "model": _text(cfg.get("model")),
            "source": "+".join(map(str, sources)) if isinstance(sources, list) else "",
            "target": _text(cfg.get("target_domain")),
            "shots": cfg.get("shots") if _number(cfg.get("shots")) is not None else None,
            "seed": cfg.get("seed") if _number(cfg.get("seed")) is not None else None,
            "teacher": _text(cfg.get("teacher")),
            "hter": test.get("hter"),
            "auc": test.get("auc"),
            "acer": test.get("acer"),
            **_budget_summary(final if isinstance(final, dict) else {}),
            "progress": progress.get("fraction") if isinstance(progress, dict) else None,
            "created": _number(cfg.get("created")) or _mtime(self.path),
        }


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok else None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _budget_summary(final: dict) -> dict:
    """The headline regime, its labelled target videos (training + extra) and the target-dev
    regime's HTER beside it (see ``fascore.train.regimes``); None before the run finishes."""

    def part(d: Any, key: str) -> dict:
        value = d.get(key) if isinstance(d, dict) else None
        return value if isinstance(value, dict) else {}

    budget = part(final, "label_budget")
    used = [_number(part(budget, k).get("videos")) for k in ("train", "extra")]
    dev = part(part(part(final, "regimes"), "target-dev"), "target_test")
    headline = part(part(final, "regimes"), _text(final.get("regime")))
    dev_budget = part(part(part(final, "regimes"), "target-dev"), "label_budget")
    dev_used = [_number(part(dev_budget, k).get("videos")) for k in ("train", "extra")]
    return {
        "regime": _text(final.get("regime")) or None,
        "target_labels": sum(used) if None not in used else None,
        "extra_labels": used[1],
        "threshold_from": _text(headline.get("threshold_from")),  # e.g. source_dev
        "hter_target_dev": dev.get("hter"),
        "target_dev_labels": sum(dev_used) if None not in dev_used else None,
    }


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


class RunStore:
    """The folder of runs."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = store_dir(root)

    def run(self, run_id: str) -> Run:
        if not run_id or "/" in run_id or run_id.startswith("."):
            raise FascoreError(
                f"{run_id!r} is not a run id; list runs with `python -m fascore runs`"
            )
        return Run(self.root / run_id)

    def get(self, run_id: str) -> Run:
        """An existing run, or a FascoreError that lists how to find one."""
        run = self.run(run_id)
        if not run.has("config"):
            raise FascoreError(
                f"no run {run_id!r} in {self.root}; list runs with `python -m fascore runs`"
            )
        return run

    def __iter__(self) -> Iterator[Run]:
        if not self.root.is_dir():
            return iter(())
        folders = sorted(p for p in self.root.iterdir() if (p / FILES["config"]).exists())
        return (Run(p) for p in folders)

    def runs(self) -> list[Run]:
        return list(self)

    def table(self) -> pd.DataFrame:
        """One summary row per run, newest first."""
        return self.summary_frame([r.summary() for r in self])

    def summary_frame(self, rows: list[dict]) -> pd.DataFrame:
        """``Run.summary`` rows as the run table, newest first (columns even when empty)."""
        cols = list(Run(self.root / "x").summary().keys())
        df = pd.DataFrame(rows, columns=cols)
        return df.sort_values("created", ascending=False, kind="stable").reset_index(drop=True)
