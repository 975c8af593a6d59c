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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fascore.errors import FascoreError

RUNS_ENV = "FASCORE_RUNS_DIR"
DEFAULT_STORE = Path(__file__).resolve().parent.parent / "checkpoints"

STATES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
ACTIVE_STATES = ("queued", "running")
#: A running job writes a heartbeat at least this often; older means its process is gone.
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
    "done": "done",
    "cancel": "cancel.request",
}


class CancelRequested(Exception):
    """Raised inside a job when its run's cancel request is seen; the job exits as cancelled."""


def store_dir(root: str | Path | None = None) -> Path:
    """The run store: ``root``, else ``$FASCORE_RUNS_DIR``, else the repo's ``checkpoints/``."""
    return Path(root or os.environ.get(RUNS_ENV) or DEFAULT_STORE)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a file."""
    _atomic_write_bytes(path, text.encode())


def pid_alive(pid: int | None) -> bool:
    """True when a process with this pid exists on this machine (zombies count as dead)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


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
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.file("config"), json.dumps(config, indent=2, sort_keys=True))

    def config(self) -> dict:
        return self.read_json("config") or {}

    # -- JSON documents (status, final metrics, alignment, shots) ---------------------------
    def write_json(self, key: str, obj: Any) -> None:
        atomic_write_text(self.file(key), json.dumps(obj, indent=2, default=_json_default))

    def read_json(self, key: str) -> Any:
        """The document, or None when absent or half-written by a crashed writer."""
        try:
            return json.loads(self.file(key).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    # -- status ------------------------------------------------------------------------------
    def status(self) -> dict:
        """The raw status as last written by the job (see ``state`` for the effective state)."""
        return self.read_json("status") or {"state": "queued" if self.path.exists() else "missing"}

    def update_status(self, **fields: Any) -> dict:
        """Merge fields into the status file and refresh the heartbeat."""
        status = self.read_json("status") or {}
        status.update(fields)
        status["heartbeat"] = time.time()
        status.setdefault("host", socket.gethostname())
        self.write_json("status", status)
        return status

    def state(self) -> str:
        """The effective state: a queued or running job whose process died reads 'interrupted'.

        A queued run with no pid has not been started yet; once a pid is recorded on this host, a
        dead pid means the job crashed (or the machine rebooted) before it could say so.
        """
        status = self.status()
        state = status.get("state", "queued")
        if state not in ACTIVE_STATES:
            return state
        same_host = status.get("host", socket.gethostname()) == socket.gethostname()
        if same_host and status.get("pid") and not pid_alive(status.get("pid")):
            return "interrupted"
        stale = time.time() - float(status.get("heartbeat", time.time())) > HEARTBEAT_STALE_S
        return "interrupted" if state == "running" and stale else state

    def progress(self) -> dict:
        return self.status().get("progress") or {}

    # -- metrics and log --------------------------------------------------------------------
    def append_metrics(self, record: dict) -> None:
        line = json.dumps(record, default=_json_default)
        with open(self.file("metrics"), "a") as fh:
            fh.write(line + "\n")

    def metrics(self) -> list[dict]:
        """All evaluation records; a half-written last line (crash) is ignored."""
        try:
            lines = self.file("metrics").read_text().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

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
        tmp = self.file(key).with_name(f".{FILES[key]}.tmp")
        df.to_parquet(tmp, index=False)
        os.replace(tmp, self.file(key))

    def read_table(self, key: str) -> pd.DataFrame | None:
        return pd.read_parquet(self.file(key)) if self.has(key) else None

    def write_arrays(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        tmp = self.file(key).with_name(f".{FILES[key]}.tmp.npz")
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, self.file(key))

    def read_arrays(self, key: str) -> dict[str, np.ndarray] | None:
        if not self.has(key):
            return None
        with np.load(self.file(key), allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    def reset(self) -> None:
        """Remove every output but the config, so a restarted run starts clean."""
        for key, name in FILES.items():
            if key != "config":
                (self.path / name).unlink(missing_ok=True)

    # -- completion and cancel requests -----------------------------------------------------
    def mark_done(self) -> None:
        self.file("done").touch()

    def request_cancel(self) -> None:
        self.file("cancel").touch()

    def cancel_requested(self) -> bool:
        return self.has("cancel")

    def clear_cancel(self) -> None:
        self.file("cancel").unlink(missing_ok=True)

    # -- summaries ---------------------------------------------------------------------------
    def summary(self) -> dict:
        """One row for run lists: id, state, method, protocol, key target-test metrics."""
        cfg = self.config()
        final = self.read_json("final") or {}
        test = final.get("target_test") or {}
        status = self.status()
        return {
            "run": self.id,
            "state": self.state(),
            "experiment": cfg.get("experiment", ""),
            "method": cfg.get("method", ""),
            "model": cfg.get("model", ""),
            "source": "+".join(cfg.get("source_domains") or []),
            "target": cfg.get("target_domain", ""),
            "shots": cfg.get("shots"),
            "seed": cfg.get("seed"),
            "teacher": cfg.get("teacher") or "",
            "hter": test.get("hter"),
            "auc": test.get("auc"),
            "acer": test.get("acer"),
            **_budget_summary(final),
            "progress": (status.get("progress") or {}).get("fraction"),
            "created": cfg.get("created", 0.0),
        }


def _budget_summary(final: dict) -> dict:
    """The headline regime, its labelled target videos (training + extra) and the target-dev
    regime's HTER beside it (see ``fascore.train.regimes``); None before the run finishes."""
    budget = final.get("label_budget") or {}
    used = [(budget.get(k) or {}).get("videos") for k in ("train", "extra")]
    dev = ((final.get("regimes") or {}).get("target-dev") or {}).get("target_test") or {}
    return {
        "regime": final.get("regime"),
        "target_labels": sum(used) if None not in used else None,
        "extra_labels": used[1],
        "hter_target_dev": dev.get("hter"),
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
        rows = [r.summary() for r in self]
        cols = list(Run(self.root / "x").summary().keys())
        df = pd.DataFrame(rows, columns=cols)
        return df.sort_values("created", ascending=False, kind="stable").reset_index(drop=True)
