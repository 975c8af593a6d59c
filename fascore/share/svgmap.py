"""The report's 2-D maps (UMAP views) as inline SVG: drawn by the browser's parser, no script.

A report of many maps cannot use WebGL (a browser keeps ~16 live WebGL contexts: chromium drew 8
of the demo report's 19 maps and left 11 blank), and plotly's SVG scatter costs ~150 ms of script
per 1,200-point map in chromium (``bench/bench_report.py``), so the report draws each map as plain
SVG: the same colours (``figures.PALETTE`` in sorted category order), one marker shape per role
(circle = source, diamond = target: roles in sorted order), a legend,
and a tooltip per point naming its sample, so every point can be followed to its image.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from fascore.share.figures import HOVER, PALETTE

WIDTH, HEIGHT = 1000, 420  # viewBox units; the map scales with the page's width
PLOT = (50, 40, 820, 390)  # left, top, right, bottom of the plotting area
RADIUS = 3.0  # plotly's marker size 6 is its diameter


def _unit(values: np.ndarray) -> np.ndarray:
    """Values mapped to [0, 1] over their range (a constant maps to 0.5)."""
    lo, hi = float(np.min(values)), float(np.max(values))
    return np.full(len(values), 0.5) if hi <= lo else (values - lo) / (hi - lo)


def _marker(shape: int, x: float, y: float, tip: str, radius: float = RADIUS) -> str:
    """A circle (shape 0) or a diamond of ``radius`` at (x, y) with a tooltip."""
    title = f"<title>{tip}</title>"
    if shape == 0:
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius:g}">{title}</circle>'
    r = radius * 1.3
    return f'<path d="M{x:.1f} {y - r:.1f}l{r:.1f} {r:.1f}l-{r:.1f} {r:.1f}l-{r:.1f}-{r:.1f}z">{title}</path>'


def _tips(df: pd.DataFrame) -> list[str]:
    """One escaped tooltip per row: ``sample 12 · phone · spoof · print · teacher · img/x.png``."""
    cols = [c for c in HOVER if c in df and c != "path"] + (["path"] if "path" in df else [])
    text = df[cols].astype(str)
    if "sample" in text:
        text["sample"] = "sample " + text["sample"]
    return [html.escape(" · ".join(row)) for row in text.itertuples(index=False)]


def _legend(colors: dict[str, str], roles: list[str], color: str) -> str:
    x, y, items = (
        PLOT[2] + 30,
        PLOT[1] + 10,
        [f'<text x="{PLOT[2] + 24}" y="{PLOT[1]}">{color}</text>'],
    )
    for name, fill in colors.items():
        y += 20
        items.append(f'<circle cx="{x}" cy="{y - 4}" r="5" fill="{fill}"/>')
        items.append(f'<text x="{x + 12}" y="{y}">{html.escape(name)}</text>')
    for i, role in enumerate(roles):
        y += 20
        items.append(f'<g fill="#555">{_marker(i, x, y - 4, html.escape(role), 5.0)}</g>')
        items.append(f'<text x="{x + 12}" y="{y}">{html.escape(role)}</text>')
    return "".join(items)


def svg_map(projection: pd.DataFrame, color: str = "domain", title: str = "map") -> str:
    """One view of ``projection.parquet`` (columns ``x, y`` and ``color``; ``role`` and the
    ``figures.HOVER`` columns when present) as an ``<svg class="map">`` element: one marker per
    row, grouped in ``<g class="pts">`` by colour and role."""
    df = projection.reset_index(drop=True)
    cats = sorted(df[color].astype(str).unique())
    colors = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(cats)}
    roles = sorted(df["role"].astype(str).unique()) if "role" in df else [""]
    role = df["role"].astype(str) if "role" in df else pd.Series("", index=df.index)
    left, top, right, bottom = PLOT
    xs = left + 8 + _unit(df["x"].to_numpy(float)) * (right - left - 16)
    ys = bottom - 8 - _unit(df["y"].to_numpy(float)) * (bottom - top - 16)
    tips, groups = _tips(df), []
    for cat, fill in colors.items():
        for shape, name in enumerate(roles):
            rows = np.flatnonzero(
                (df[color].astype(str) == cat).to_numpy() & (role == name).to_numpy()
            )
            marks = "".join(_marker(shape, xs[i], ys[i], tips[i]) for i in rows)
            if marks:
                groups.append(f'<g class="pts" fill="{fill}" fill-opacity="0.8">{marks}</g>')
    frame = f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" fill="none" stroke="#ddd"/>'
    axes = (
        f'<text x="{(left + right) / 2}" y="{HEIGHT - 8}" text-anchor="middle">UMAP 1</text>'
        f'<text transform="translate(18 {(top + bottom) / 2}) rotate(-90)" text-anchor="middle">UMAP 2</text>'
        f'<text class="title" x="{left}" y="24">{html.escape(title)}</text>'
    )
    return (
        f'<svg class="map" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{html.escape(title)}" '
        f'font-size="13">{frame}{axes}{"".join(groups)}'
        f"{_legend(colors, roles if 'role' in df else [], color)}</svg>"
    )
