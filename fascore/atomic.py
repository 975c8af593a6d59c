"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Every writer in fascore goes through ``atomic_path``: it hands out a temporary name beside the
target, private to this process and call (``.<stem>.<pid>-<random>.tmp<suffix>``: jobs sharing a
cache or a run folder never write one temporary file, and the suffix keeps libraries that look
at it happy), renames it over the target when the block succeeds and removes it when it fails.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


def temp_name(path: Path) -> Path:
    """The temporary name ``atomic_path`` uses for ``path``."""
    return path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; it replaces ``path`` when the block exits normally."""
    path = Path(path)
    tmp = temp_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, flushed to disk before the rename."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))
