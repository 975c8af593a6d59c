"""Cases: selections saved from the Shift debugger, rendered as report sections.

A case is what a researcher pointed at: the page's view state (its query parameters, so the
report links back to the same view), the selected sample ids and when it was saved. Cases live
in the run folder (``cases`` in ``fascore.store.runs.FILES``); ``case_section`` renders each with
its worst thumbnails, teacher and student Grad-CAMs of the worst few, its composition and the
run's error-slice and shift-ranking tables.
"""

from __future__ import annotations

import html
import time

import pandas as pd
from PIL import Image

from fascore.eval.shift.data import budget_line, load_shift
from fascore.eval.shift.selection import compact_ids, expand_ids, worst_first
from fascore.eval.shift.slices import error_slices, shift_ranking
from fascore.share.htmldoc import HtmlDoc, data_uri
from fascore.share.links import deep_link
from fascore.share.samples import gradcam_panels, open_image
from fascore.store.runs import Run

THUMBS = 16  # thumbnails per case, worst first
CAMS = 3  # Grad-CAM panels per case (each loads the models' forward and backward pass)
MAX_CASES = 20


def read_cases(run: Run) -> list[dict]:
    """The run's saved cases, oldest first (an unreadable file reads as none)."""
    doc = run.read_json("cases")  # checked against its schema: an unfit file reads as None
    return list(doc["cases"]) if doc else []


def add_case(run: Run, params: dict[str, str], samples: list[int]) -> dict:
    """Save one selection as a case (the newest ``MAX_CASES`` are kept); returns it."""
    case = {"created": time.time(), "params": dict(params), "samples": compact_ids(samples),
            "n": len(set(samples))}  # fmt: skip
    run.write_json("cases", {"cases": (read_cases(run) + [case])[-MAX_CASES:]})
    return case


def _thumb(path: str) -> str:
    try:
        image = open_image(path).convert("RGB")
    except Exception:  # noqa: BLE001 - a moved image leaves a blank cell, the rest renders
        image = Image.new("RGB", (96, 96), (230, 230, 230))
    return data_uri(image.resize((96, 96), Image.Resampling.BILINEAR))


def _composition(rows: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    agg = {"n": ("sample", "size")}
    agg.update({f"{m} wrong": (f"{m}_right", lambda r: int((r == False).sum()))  # noqa: E712
                for m in models})  # fmt: skip
    return rows.groupby(["domain", "label", "attack"]).agg(**agg).reset_index()


def _one_case(doc: HtmlDoc, run: Run, case: dict, i: int, dashboard: str | None) -> None:
    data = load_shift(run, case.get("params", {}).get("regime"))
    ids = set(expand_ids(case["samples"])) if case.get("samples") else set()
    rows = worst_first(data.samples[data.samples["sample"].isin(ids)])
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(case.get("created", 0)))
    doc.h(3, f"Case {i}: {len(rows)} samples (saved {when})")
    link = deep_link(dashboard, "shift", **case.get("params", {}))
    doc.add(f"<p class='note'>View: <code>{html.escape(link)}</code></p>")
    doc.p(f"Thresholds: {budget_line(data)}.", "note")
    doc.table(_composition(rows, data.models))
    cells = "".join(
        f'<figure><img alt="sample {r.sample}" src="{_thumb(r.path)}"><figcaption>'
        f"#{r.sample} {html.escape(f'{r.label}/{r.attack}')}</figcaption></figure>"
        for r in rows.head(THUMBS).itertuples()
    )
    doc.add(f'<div class="cams">{cells}</div>')
    for panel in gradcam_panels(run, rows.head(CAMS)):
        pics = "".join(
            f'<figure><img alt="{html.escape(k)}" src="{data_uri(img)}"><figcaption>'
            f"{html.escape(k)} {html.escape(panel.captions.get(k, ''))}</figcaption></figure>"
            for k, img in panel.images.items()
        )
        doc.add(f"<p>{html.escape(panel.title)}</p><div class='cams'>{pics}</div>")


def case_section(doc: HtmlDoc, run: Run, name: str, dashboard: str | None = None) -> None:
    """The run's saved cases as one report section (nothing when it has none)."""
    cases = read_cases(run)
    if not cases:
        return
    doc.h(2, f"Cases from the Shift debugger: {name}")
    for i, case in enumerate(cases, 1):
        _one_case(doc, run, case, i, dashboard)
    data = load_shift(run)
    model = data.models[-1]
    target = data.samples[(data.samples["role"] == "target") & (data.samples["split"] == "test")]
    doc.h(3, f"Where the shift lives ({model}'s embedding)")
    doc.table(shift_ranking(data.samples, data.embeddings[model], data.attributes))
    doc.h(3, f"The {model}'s target test error per attribute value (95 % CI over subjects)")
    wrong = ~target[f"{model}_right"].astype(bool).to_numpy()
    doc.table(error_slices(target, wrong, data.attributes))
