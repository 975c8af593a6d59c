"""One self-contained HTML report of one or more runs, to send to an advisor.

The file opens offline: plotly.js is inlined once (with the first figure), every image is a
base64 data URI and every UMAP map inline SVG (``share.svgmap``: no WebGL, whose contexts run out
after ~16 maps), so nothing is fetched from the network and every figure draws in any browser. It
lists teachers before their students and states the protocol, the scoring level, the
preprocessing record and the shots; the metrics of both regimes (few-shot, or zero-shot for a
teacher, and target-dev), each with its threshold rule and the target labels it used; the
students' paired differences from their teachers, ROC/DET, score distributions, UMAP views (a map
equal to one above is named, not redrawn), the MMD tests with their permutation counts, MMD² per
epoch and the chosen Grad-CAMs. ``python -m fascore report RUN... --out FILE.html`` writes it.
"""

from __future__ import annotations

import hashlib
import html
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from fascore.atomic import atomic_write_text
from fascore.data.manifest import read_preprocessing
from fascore.errors import FascoreError
from fascore.eval.compare import compare_runs, score_sets
from fascore.share import cases, figures
from fascore.share.figures import metrics_table, mmd_epochs, sampling_line
from fascore.share.htmldoc import HtmlDoc, data_uri
from fascore.share.links import deep_link, is_local
from fascore.share.report_tables import (
    REGIME_NOTE,
    delta_rows,
    mmd_report_table,
    regime_metrics,
    shots_table,
    unbroken,
)
from fascore.share.samples import Panel
from fascore.share.svgmap import svg_map
from fascore.store.runs import Run


def run_names(runs: Sequence[Run]) -> list[str]:
    """Short unique names: the method, else method + seed, else the run id."""
    cfgs = [r.config() for r in runs]
    for make in (
        lambda c, r: c.get("method", "?"),
        lambda c, r: f"{c.get('method', '?')} s{c.get('seed', '?')}",
        lambda c, r: r.id,
    ):
        names = [make(c, r) for c, r in zip(cfgs, runs, strict=True)]
        if len(set(names)) == len(names):
            return names
    return [r.id for r in runs]


def _target_set(run: Run, role: str = "target"):
    """The run's own ``role`` test scores at its scoring level, or None when not scored yet."""
    scores = run.read_table("scores")
    if scores is None:
        return None
    part = scores[(scores["role"] == role) & (scores["split"] == "test")]
    if part.empty:
        return None
    level = run.config().get("level") or "video"
    return score_sets(part.assign(score_run=part["score"]), ["run"], level)["run"]


def teacher_first(runs: Sequence[Run]) -> list[Run]:
    """The runs with every listed teacher before the runs it taught (otherwise as given)."""
    teachers = {r.config().get("teacher") for r in runs} - {None}
    return sorted(runs, key=lambda r: r.id not in teachers)


def _protocol_section(doc: HtmlDoc, runs: Sequence[Run], names: list[str]) -> None:
    doc.h(2, "Protocol")
    cfgs = [r.config() for r in runs]
    by_id = {r.id: n for n, r in zip(names, runs, strict=True)}
    rows = [
        {
            "run": n,
            "method": c.get("method"),
            "teacher": by_id.get(c.get("teacher"), c.get("teacher")) or "none",
            "source": "+".join(c.get("source_domains") or []),
            "target": c.get("target_domain"),
            "shots": f"{c.get('shots')} per class ({c.get('shot_unit')})",
            "scoring level": (r.read_json("final") or {}).get("level") or c.get("level"),
            "seed": c.get("seed"),
            "run id": r.id,
        }
        for n, c, r in zip(names, cfgs, runs, strict=True)
    ]
    doc.table(pd.DataFrame(rows))
    doc.p(
        "Decisions: spoof iff score ≥ threshold; the threshold is fixed at the EER point of a "
        "development set and applied to the test set. Every run is evaluated under two regimes "
        "(Metrics below), each with the target labels it used: "
        + "; ".join(f"{k}: {v}" for k, v in REGIME_NOTE.items())
        + ". HTER is not an ISO/IEC 30107-3 metric; APCER is the maximum over PAI species. "
        "Intervals are 95 % video bootstraps.",
        "note",
    )
    for path in sorted({p for c in cfgs for p in c.get("data") or []}):
        record = read_preprocessing(path) or {"note": "no preprocessing record beside it"}
        doc.h(3, f"Preprocessing record of {Path(path).parent.name}/{Path(path).name}")
        doc.json(record, summary=_record_line(record))
    doc.h(3, "Shots (labelled target samples each run trained on)")
    doc.table(shots_table({n: r.read_json("shots") for n, r in zip(names, runs, strict=True)}))


def _record_line(record: dict) -> str:
    """One line naming how the images were made (the full record unfolds below it)."""
    keys = ("generator", "decoder", "detector", "crop", "frame_rule", "version")
    said = [f"{k}: {record[k]}" for k in keys if isinstance(record.get(k), str | int | float)]
    return "; ".join(said) or "show the full record"


def _metrics_section(doc: HtmlDoc, runs: Sequence[Run], names: list[str], n_boot: int) -> None:
    doc.h(2, "Metrics")
    finals = {n: r.read_json("final") for n, r in zip(names, runs, strict=True)}
    for regime in ("few-shot", "target-dev"):
        table = regime_metrics(finals, regime)
        if not table.empty:
            title = "few-shot (zero-shot for a teacher)" if regime == "few-shot" else regime
            doc.h(3, f"Target test, {title} regime")
            doc.p(REGIME_NOTE[regime] + ".", "note")
            doc.table(table)
    sources = {n: (f or {}).get("source_test") for n, f in finals.items()}
    sources = {n: b for n, b in sources.items() if b}
    if sources:
        doc.h(3, "Source test (each run's headline regime)")
        doc.table(metrics_table(sources).map(unbroken))
    deltas = _teacher_deltas(runs, names, n_boot)
    if deltas:
        doc.h(3, "Each student minus its teacher (target test, paired bootstrap over videos)")
        doc.p(
            "Both models scored on the same resampled videos, each at the threshold of its "
            "headline regime (few-shot, zero-shot for the teacher); negative error differences "
            "and positive AUC differences favour the student.",
            "note",
        )
        doc.table(delta_rows(deltas))


def _teacher_deltas(runs: Sequence[Run], names: list[str], n_boot: int) -> dict:
    """``{student name: Comparison.deltas}`` for each listed student whose teacher is listed."""
    by_id = {r.id: r for r in runs}
    out = {}
    for name, run in zip(names, runs, strict=True):
        teacher = by_id.get(run.config().get("teacher") or "")
        if teacher and run.has("final") and teacher.has("final"):
            out[name] = compare_runs(teacher, run).deltas(n_boot)
    return out


def _curves_section(doc: HtmlDoc, runs: Sequence[Run], names: list[str]) -> None:
    sets = {n: _target_set(r) for n, r in zip(names, runs, strict=True)}
    sets = {n: (s.y, s.score) for n, s in sets.items() if s is not None}
    if not sets:
        return
    doc.h(2, "ROC and DET (target test)")
    doc.figure(figures.roc_figure(sets, "ROC, target test"))
    doc.figure(figures.det_figure(sets, "DET, target test"))
    doc.h(2, "Score distributions")
    doc.p(
        "Scores of each run's headline weights (few-shot, zero-shot for a teacher); the dashed "
        "line is that regime's threshold (source dev EER).",
        "note",
    )
    frames = {n: r.read_table("scores") for n, r in zip(names, runs, strict=True)}
    tests = {n: f[f["split"] == "test"] for n, f in frames.items() if f is not None}
    thresholds = {
        n: (r.read_json("final") or {}).get("target_test", {}).get("threshold")
        for n, r in zip(names, runs, strict=True)
    }
    thresholds = {n: t for n, t in thresholds.items() if t is not None}
    targets = {n: f[f["role"] == "target"] for n, f in tests.items()}
    for by, parts in (("label", targets), ("attack", targets), ("domain", tests)):
        doc.figure(figures.score_histogram(parts, by, thresholds, f"Test scores by {by}"))


#: What each UMAP view embeds (``fascore.eval.analysis.alignment.VIEWS``).
VIEW_NOTE = {
    "shift": "teacher on source vs teacher on target: the domain shift the teacher sees",
    "aligned": "teacher on source vs student on target: what distillation's MMD term aligns",
    "student": "student on source vs student on target",
}


def _map_key(part: pd.DataFrame) -> str:
    """A fingerprint of one map (samples, roles, models and coordinates): equal maps draw once."""
    cols = [c for c in ("sample", "role", "model", "x", "y") if c in part]
    digest = hashlib.sha1(pd.util.hash_pandas_object(part[cols], index=False).to_numpy())
    return digest.hexdigest()


def _maps(
    doc: HtmlDoc, projection: pd.DataFrame, name: str, seen: dict[str, str], notes: dict
) -> None:
    """One inline SVG map per view (``fascore.share.svgmap``), under ``notes[view]``; a map
    already drawn above (the shared teacher's 'shift' view of its students) is named, not
    drawn again."""
    for view, part in projection.groupby("view", sort=False):
        doc.p(f"View '{view}': {notes.get(str(view), 'embeddings by domain')}.", "note")
        key = _map_key(part)
        if key in seen:
            doc.p(f"The same map as {seen[key]} (same samples, embeddings and coordinates).")
            continue
        seen[key] = f"{name}'s view '{view}' above"
        title = f"{name}: UMAP view '{view}' by domain ({len(part)} points)"
        doc.add(svg_map(part, "domain", title))


def _own_view(doc: HtmlDoc, name: str, projection: pd.DataFrame, alignment: dict | None) -> tuple:
    """A run without a teacher (a teacher itself, or a student trained alone) whose views all
    embed its one model: only its first view, said so (maps, tests and notes for that view)."""
    if projection["view"].nunique() < 2:  # a teacher: its one view is the shift it sees
        return projection, alignment, VIEW_NOTE, None
    only = str(projection["view"].iloc[0])
    doc.p(f"{name} has no teacher: its views embed one model on both sides, so only the view "
          f"'{only}' is shown.", "note")  # fmt: skip
    views = (alignment or {}).get("views") or {}
    alignment = {**alignment, "views": {only: views[only]}} if only in views else alignment
    notes = {only: f"{name}'s own model on source vs on target"}
    return projection[projection["view"] == only], alignment, notes, only


def _alignment_section(doc: HtmlDoc, run: Run, name: str, seen: dict[str, str]) -> None:
    projection, alignment = run.read_table("projection"), run.read_json("alignment")
    if projection is None and alignment is None:
        return
    doc.h(2, f"Domain alignment: {name}")
    notes, only = VIEW_NOTE, None
    if not run.config().get("teacher") and projection is not None:
        projection, alignment, notes, only = _own_view(doc, name, projection, alignment)
    if projection is not None:
        _maps(doc, projection, name, seen, notes)
    table = mmd_report_table(alignment)
    if not table.empty:
        doc.table(table)
    epochs, series = mmd_epochs(alignment)
    series = [only] if only in series else series
    if series:
        doc.figure(
            figures.series_figure(epochs, "epoch", series, f"{name}: MMD² per epoch", "MMD²")
        )
    doc.p(f"Sampling: {sampling_line(alignment)}.", "note")


def _gradcam_section(doc: HtmlDoc, panels: Sequence[Panel]) -> None:
    if not panels:
        return
    doc.h(2, "Grad-CAM on spoof decisions")
    doc.p("Warmer = more evidence for 'spoof' (the spoof logit's Grad-CAM).", "note")
    for panel in panels:
        doc.h(3, panel.title)
        cells = "".join(
            f'<figure><img alt="{html.escape(k)}" src="{data_uri(img)}"><figcaption>'
            f"{html.escape(k)} {html.escape(panel.captions.get(k, ''))}</figcaption></figure>"
            for k, img in panel.images.items()
        )
        doc.add(f'<div class="cams">{cells}</div>')


def build_report(
    runs: Sequence[Run],
    panels: Sequence[Panel] = (),
    n_boot: int = 300,
    title: str | None = None,
    dashboard: str | None = None,
) -> str:
    """The whole report as one HTML string (see the module docstring for what it holds)."""
    if not runs:
        raise FascoreError(
            "no run to report on; pass run ids (list them with `python -m fascore runs`)"
        )
    left_out = {r.id: why for r in runs if (why := r.problem())}
    runs = [r for r in runs if r.id not in left_out]
    if not runs:
        raise FascoreError("every run asked for is unreadable: " + _unreadable_line(left_out))
    runs = teacher_first(runs)
    names = run_names(runs)
    title = title or f"fascore report: {', '.join(names)}"
    doc = HtmlDoc()
    doc.h(1, title)
    doc.p(
        f"Generated {time.strftime('%Y-%m-%d %H:%M')} by fascore from the run folders below "
        "(teachers first).",
        "note",
    )
    if left_out:
        doc.p("Left out: " + _unreadable_line(left_out), "note")
    _protocol_section(doc, runs, names)
    _metrics_section(doc, runs, names, n_boot)
    _curves_section(doc, runs, names)
    seen: dict[str, str] = {}
    for name, run in zip(names, runs, strict=True):
        _alignment_section(doc, run, name, seen)
        cases.case_section(doc, run, name, dashboard)
    _gradcam_section(doc, panels)
    if dashboard:
        _links_section(doc, runs, names, dashboard)
    return strip_local_paths(doc.html(title), runs)


def _links_section(doc: HtmlDoc, runs: Sequence[Run], names: list[str], dashboard: str) -> None:
    """Each run's Compare view in the dashboard; a loopback address is said to be local."""
    local = is_local(dashboard)
    doc.h(2, "Open in the dashboard" + (" (local links)" if local else ""))
    if local:
        doc.p(
            f"These links point at {dashboard}, the dashboard on the machine that wrote this "
            "report: they open only there, not on a reader's computer.",
            "note",
        )
    for name, run in zip(names, runs, strict=True):
        link = deep_link(dashboard, "compare", run=run.id, teacher=run.config().get("teacher"))
        doc.add(f"<p>{html.escape(name)}: <code>{html.escape(link)}</code></p>")


def _unreadable_line(left_out: dict[str, str]) -> str:
    return "; ".join(f"run {rid} is unreadable: {why}" for rid, why in left_out.items())


def strip_local_paths(text: str, runs: Sequence[Run]) -> str:
    """The report without this machine's absolute paths: image paths become relative to their
    data set's folder (``data-set/img/x.png``), run folders to the store (``runs/RUN``), and the
    home folder ``~``; both plain and JSON-escaped (``\\u002f``) spellings are replaced."""
    roots: dict[str, str] = {}
    for run in runs:
        for manifest in run.config().get("data") or []:
            folder = Path(manifest).parent
            for spelling in {str(folder), str(folder.resolve())}:
                roots[spelling] = folder.resolve().name
        store = run.path.parent
        for spelling in {str(store), str(store.resolve())}:
            roots[spelling] = "runs"
    roots.setdefault(str(Path.home()), "~")
    for root in sorted(roots, key=len, reverse=True):  # the longest (innermost) first
        if len(root) > 1:
            for a, b in ((root + "/", roots[root] + "/"), (root, roots[root])):
                text = text.replace(a, b).replace(a.replace("/", "\\u002f"), b)
    return text


def write_report(out: str | Path, runs: Sequence[Run], **kwargs: object) -> Path:
    """Write ``build_report(runs, **kwargs)`` to ``out`` (an .html file); returns the path."""
    target = Path(out)
    if target.suffix.lower() not in (".html", ".htm"):
        raise FascoreError(f"{target} should end in .html (the report is one HTML file)")
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, build_report(runs, **kwargs))  # type: ignore[arg-type]
    return target
