"""Is a run folder readable? Cheap structural checks behind ``Run.problem`` and the
"unreadable: <reason>" state shown by ``fascore runs``, every dashboard page and ``report``.

One damaged file (a status holding a list, a config without a seed, a corrupt metrics line, a
truncated ``best.pt`` or parquet table) makes its own run unreadable with the reason, never the
listing of the others. Archives and tables are checked by structure (zip directory, parquet magic
bytes), not loaded, so a run list stays fast. File names come from ``Run.file(key)``.
"""

from __future__ import annotations

import json
import zipfile
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fascore.store.runs import Run

#: Config fields every run's summary needs, with the types they must have.
KEY_FIELDS = {"method": str, "target_domain": str, "source_domains": list, "seed": int}
#: Files that are zip archives (torch checkpoints, numpy .npz) or parquet tables.
ZIP_FILES = ("checkpoint", "best", "best_alt", "embeddings", "epoch_embeddings")
PARQUET_FILES = ("scores", "embedding_index", "projection", "epoch_projection", "errors")
PARQUET_MAGIC = b"PAR1"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def run_problem(run: Run) -> str | None:
    """Why the run's config, metrics or binary files cannot be used, or None."""
    return _config_problem(run) or _metrics_problem(run) or _files_problem(run)


def status_problem(doc: Any, states: tuple[str, ...]) -> str | None:
    """Why a parsed status document is unusable, or None."""
    if not isinstance(doc, dict):
        return f"status.json holds a {type(doc).__name__}, not an object"
    if doc.get("state", "queued") not in states:
        return f"status.json has an unknown state {doc.get('state')!r}"
    for key in ("pid", "pgid"):
        value = doc.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            return f"status.json has a {key} {value!r} that is not a whole number"
    for key in ("heartbeat", "pid_started"):
        if doc.get(key) is not None and not _is_number(doc.get(key)):
            return f"status.json has a {key} {doc.get(key)!r} that is not a number"
    if doc.get("progress") is not None and not isinstance(doc.get("progress"), dict):
        return "status.json has a progress that is not an object"
    return None


def _config_problem(run: Run) -> str | None:
    try:
        cfg = json.loads(run.file("config").read_text())
    except FileNotFoundError:
        return "config.json is missing"
    except (OSError, UnicodeDecodeError) as err:
        return f"config.json cannot be read ({err})"
    except json.JSONDecodeError:
        return "config.json is not valid JSON"
    if not isinstance(cfg, dict):
        return f"config.json holds a {type(cfg).__name__}, not an object"
    for key, kind in KEY_FIELDS.items():
        if key not in cfg:
            return f"config.json lacks {key}"
        if not isinstance(cfg[key], kind) or isinstance(cfg[key], bool):
            return f"config.json has a {key} {cfg[key]!r} that is not a {kind.__name__}"
    return None


def _metrics_problem(run: Run) -> str | None:
    """A corrupt metrics line (a torn last line, from a crash, is expected and skipped)."""
    try:
        lines = run.file("metrics").read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return None
    except OSError as err:
        return f"metrics.jsonl cannot be read ({err})"
    for n, line in enumerate(lines[:-1], start=1):
        try:
            ok = isinstance(json.loads(line), dict)
        except json.JSONDecodeError:
            ok = False
        if not ok:
            return f"metrics.jsonl line {n} is not a JSON record"
    return None


def _files_problem(run: Run) -> str | None:
    """A truncated or foreign weights, arrays or table file, by its structure."""
    for key in ZIP_FILES:
        path = run.file(key)
        if path.exists() and not zipfile.is_zipfile(path):
            return f"{path.name} is damaged (truncated or not a checkpoint)"
    for key in PARQUET_FILES:
        path = run.file(key)
        if not path.exists():
            continue
        try:
            with open(path, "rb") as fh:
                head = fh.read(4)
                fh.seek(max(0, path.stat().st_size - 4))
                tail = fh.read(4)
        except OSError as err:
            return f"{path.name} cannot be read ({err})"
        if head != PARQUET_MAGIC or tail != PARQUET_MAGIC:
            return f"{path.name} is damaged (not a complete parquet table)"
    return None
