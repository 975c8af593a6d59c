"""A self-contained HTML document: embedded PNG images and plotly.js inlined once."""

from __future__ import annotations

import base64
import html
import io
import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from PIL import Image

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#222}h1{font-size:1.7em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:2em}table{border-collapse:collapse;font-size:.9em;margin:.5em 0}td,th{border:1px solid
#ddd;padding:.25em .6em;text-align:left}th{background:#f4f4f4}pre{background:#f7f7f7;padding:.6em;
overflow:auto;font-size:.85em}.note{color:#666;font-size:.9em}.cams{display:flex;flex-wrap:wrap;
gap:1em}.cams figure{margin:0}.cams img{width:160px;image-rendering:pixelated}code{font-size:.9em}
svg.map{width:100%;height:auto;display:block;margin:.5em 0}svg.map text{fill:#444}svg.map .title{
font-size:16px;fill:#222}
"""


def png_bytes(image: np.ndarray | Image.Image | bytes) -> bytes:
    """PNG bytes of an RGB image: uint8 (H, W, 3) or (3, H, W) array, PIL image or PNG bytes."""
    if isinstance(image, bytes):
        return image
    if isinstance(image, np.ndarray):
        arr = image.transpose(1, 2, 0) if image.ndim == 3 and image.shape[0] == 3 else image
        image = Image.fromarray(np.ascontiguousarray(arr).astype(np.uint8))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def data_uri(image: np.ndarray | Image.Image | bytes) -> str:
    """A ``data:image/png;base64,...`` URI: the report embeds images, it never links them."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode()


class HtmlDoc:
    """An HTML body under construction; inlines plotly.js with the first figure only."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.n_figures = 0

    def add(self, markup: str) -> None:
        self.parts.append(markup)

    def h(self, level: int, text: str) -> None:
        self.add(f"<h{level}>{html.escape(text)}</h{level}>")

    def p(self, text: str, cls: str = "") -> None:
        self.add(
            f'<p class="{cls}">{html.escape(text)}</p>' if cls else f"<p>{html.escape(text)}</p>"
        )

    def table(self, df: pd.DataFrame) -> None:
        self.add(df.to_html(index=False, na_rep="—", float_format=lambda v: f"{v:.4g}", border=0))

    def json(self, obj: object, summary: str | None = None) -> None:
        """A JSON block; with ``summary``, folded under it (long records stay one line)."""
        block = f"<pre>{html.escape(json.dumps(obj, indent=2, default=str))}</pre>"
        if summary:
            block = f"<details><summary>{html.escape(summary)}</summary>{block}</details>"
        self.add(block)

    def figure(self, fig: go.Figure) -> None:
        self.add(
            fig.to_html(
                full_html=False,
                include_plotlyjs=self.n_figures == 0,
                config={"displaylogo": False, "responsive": True},
            )
        )
        self.n_figures += 1

    def html(self, title: str) -> str:
        return (
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
            + "\n".join(self.parts)
            + "</body></html>"
        )
