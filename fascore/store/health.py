"""Is a run folder readable? The checks behind ``Run.problem`` and the "unreadable: <reason>"
state shown by ``fascore runs``, every dashboard page and ``report``.

One damaged file (a status holding a list, a config without a seed, a metrics line or a final
metric of the wrong type, a truncated ``best.pt`` or parquet table) makes its own run unreadable
with the reason, never the listing of the others. JSON files are checked against their typed
schema (``fascore.store.schema``); archives and tables by structure (zip directory, parquet magic
bytes), not loaded, so a run list stays fast. File names come from ``Run.file(key)``.
"""

from __future__ import annotations

import zipfile
from typing import TYPE_CHECKING

from fascore.store import schema

if TYPE_CHECKING:
    from fascore.store.runs import Run

#: Files that are zip archives (torch checkpoints, numpy .npz) or parquet tables.
ZIP_FILES = ("checkpoint", "best", "best_alt", "embeddings", "epoch_embeddings")
PARQUET_FILES = ("scores", "embedding_index", "projection", "epoch_projection", "errors")
PARQUET_MAGIC = b"PAR1"
#: JSON documents checked against their schema when present (status: see ``Run.problem``).
DOCUMENTS = ("final", "alignment", "shots")


def run_problem(run: Run) -> str | None:
    """Why the run's config, metrics, JSON documents or binary files cannot be used, or None."""
    return (
        _config_problem(run)
        or _metrics_problem(run)
        or _documents_problem(run)
        or _files_problem(run)
    )


def _config_problem(run: Run) -> str | None:
    try:
        schema.load("config", run.file("config"))
    except FileNotFoundError:
        return "config.json is missing"
    except schema.Unfit as err:
        return str(err)
    return None


def _documents_problem(run: Run) -> str | None:
    for key in DOCUMENTS:
        try:
            schema.load(key, run.file(key))
        except FileNotFoundError:
            continue
        except schema.Unfit as err:
            return str(err)
    return None


def _metrics_problem(run: Run) -> str | None:
    """A metrics line that is not a record of the schema (a torn last line, from a crash, is
    expected and skipped)."""
    path = run.file("metrics")
    try:
        lines = schema.read_text(path).splitlines()
    except FileNotFoundError:
        return None
    except schema.Unfit as err:
        return str(err)
    for n, line in enumerate(lines, start=1):
        what = f"{path.name} line {n}"
        try:
            schema.check("metrics", schema.parse(line, what), what)
        except schema.Unfit as err:
            if n < len(lines) or str(err) != f"{what} is not valid JSON":  # not a torn last line
                return str(err)
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
