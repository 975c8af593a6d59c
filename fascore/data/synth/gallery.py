"""A labelled grid of sample images: rows = domains, columns = live and each PAI species.

Works on any manifest (SynthFAS or imported), so a data set can be eyeballed before training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from fascore.data.decode import decode_image
from fascore.data.manifest import read_manifest
from fascore.errors import FascoreError


def pick(df: pd.DataFrame, per_cell: int) -> list[str]:
    """``per_cell`` image paths from different videos, first frames, spread over the subjects."""
    first = df.sort_values(["subject", "video", "frame"] if "frame" in df else ["subject", "video"])
    first = first.drop_duplicates("video")
    idx = np.linspace(0, len(first) - 1, num=min(per_cell, len(first))).round().astype(int)
    return list(first["abspath"].iloc[idx])


def _tile(path: str, size: int) -> Image.Image:
    try:
        img = decode_image(path)  # the one decoder, within the pixel limit
    except (OSError, ValueError) as err:
        raise FascoreError(
            f"cannot read {path} ({err}); run `python -m fascore validate` on the manifest."
        ) from None
    return img.resize(
        (size, size), Image.Resampling.NEAREST
    )  # nearest: keep moire and dots visible


def make_gallery(data: str | Path, out: str | Path, per_cell: int = 2, tile: int = 128) -> Path:
    """Write the grid PNG for the manifest at ``data`` (file or folder) to ``out``."""
    df = read_manifest(data)
    domains = list(df["domain"].unique())
    species = ["none"] + [a for a in df["attack"].unique() if a != "none"]
    font = ImageFont.load_default(size=max(12, tile // 8))
    left, top, gap = tile, tile // 4, 4
    cell = per_cell * tile + (per_cell - 1) * 2
    width = left + len(species) * (cell + gap)
    sheet = Image.new("RGB", (width, top + len(domains) * (tile + gap)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for j, attack in enumerate(species):
        label = "live" if attack == "none" else attack
        draw.text(
            (left + j * (cell + gap) + cell // 2, top // 2),
            label,
            fill=(0, 0, 0),
            font=font,
            anchor="mm",
        )
    for i, domain in enumerate(domains):
        y = top + i * (tile + gap)
        draw.text((left // 2, y + tile // 2), domain, fill=(0, 0, 0), font=font, anchor="mm")
        for j, attack in enumerate(species):
            part = df[(df["domain"] == domain) & (df["attack"] == attack)]
            for k, path in enumerate(pick(part, per_cell)):
                sheet.paste(_tile(path, tile), (left + j * (cell + gap) + k * (tile + 2), y))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)
    return out
