"""Write one benchmark's results into its own section of ``docs/benchmarks.md``.

Each benchmark script owns one section, delimited by HTML comments, and rewrites only that section,
so numbers in the docs always come from the script named beside them.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import torch

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\n"
    "Every section below is written by the script named in it; never edit the numbers by hand.\n"
)


def machine() -> str:
    """One line naming the machine the numbers come from."""
    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, {dev}, "
        f"torch {torch.__version__}, {time.strftime('%Y-%m-%d')}"
    )


def write_section(key: str, title: str, command: str, body_md: str, doc: Path = DOC) -> None:
    """Replace (or append) the section ``key`` of the benchmarks doc."""
    begin, end = f"<!-- begin {key} -->", f"<!-- end {key} -->"
    block = (
        f"{begin}\n## {title}\n\nWritten by `{command}` on {machine()}.\n\n{body_md.strip()}\n{end}"
    )
    text = doc.read_text() if doc.exists() else HEADER
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
