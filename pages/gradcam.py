"""Grad-CAM: where teacher and student look when they call a face a spoof, side by side."""

import hashlib
import threading
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import streamlit as st

from dashboard import ui
from fascore.data.uploads import SHARE_REFUSAL, read_upload
from fascore.share import numbers, samples
from fascore.share.links import deep_link
from fascore.store.runs import Run

WIDTH = 256  # pixels per image: large enough to read a 64-px map, small enough for three
SOURCES = ("Errors and disagreements", "Any scored image", "Upload an image")
#: radio label -> ``fascore.eval.analysis.gradcam.scale_maps`` scale
ORDER = {"teacher": 0, "student": 1}  # models named in an error's title, teacher first
KINDS = {"disagree": 0, "false_accept": 1, "false_reject": 2}  # as share.samples.pick_samples
SCALES = {"shared by the models (absolute)": "shared", "each map on its own": "per-map"}


class Pick(NamedTuple):
    """The image to explain: its title, cache key, image, and (for a scored sample) its truth."""

    title: str
    key: str
    image: object  # PIL image
    label: str | None  # live / spoof, None for an upload
    role: str  # source or target: which of the runs' thresholds applies


@st.cache_resource(max_entries=4, show_spinner="Loading the run's models…")
def _models(run_path: str, stamp: tuple) -> tuple[dict, threading.Lock]:
    """The run's models, loaded once per weights version, with the lock that guards them: a
    Grad-CAM switches them to eval mode and hooks their layers, so sessions take turns."""
    from fascore.train.checkpoint import load_models  # start-up cost: torch (~4 s)

    return load_models(Run(Path(run_path))), threading.Lock()


@st.cache_data(max_entries=64, show_spinner="Computing Grad-CAM…")
def _explain(
    run_path: str, stamp: tuple, key: str, alpha: float, scale: str, _image
) -> samples.Panel:
    """One panel, cached per run, weights version (``ui.weights_stamp``), image, opacity, scale."""
    models, lock = _models(run_path, stamp)
    with lock:
        return samples.explain_images(models, [_image], [key], alpha, scale)[0]


def _merge_kinds(errors: pd.DataFrame) -> pd.DataFrame:
    """One row per image; its ``kind`` names every error on it with the models that made it, so
    an image both models miss reads ``false_accept (teacher and student)``. Kinds come in the
    report's order (disagree, false accept, false reject), so both titles start alike."""
    rank = errors["kind"].map(KINDS).fillna(len(KINDS))
    ranked = errors.assign(_k=rank).sort_values("_k", kind="stable")
    models = ranked.groupby(["path", "kind"], sort=False)["model"].agg(
        lambda m: " and ".join(
            sorted({p for x in m for p in str(x).split("+")}, key=lambda n: ORDER.get(n, 2))
        )
    )
    kinds = models.reset_index().groupby("path", sort=False)[["kind", "model"]].agg(list)
    text = {
        path: " · ".join(k if k == "disagree" else f"{k} ({m})" for k, m in zip(*row, strict=True))
        for path, row in zip(kinds.index, kinds.itertuples(index=False), strict=True)
    }
    first = errors.drop_duplicates("path").reset_index(drop=True)
    return first.assign(kind=first["path"].map(text), model="")


def _candidates(run: Run, source: str) -> pd.DataFrame:
    table = ui.read_table(run, "errors" if source == SOURCES[0] else "scores")
    if table is None or table.empty:
        return pd.DataFrame()
    table = table if source == SOURCES[0] else table[table["split"] == "test"]
    table = table.sort_values("role", key=lambda r: r != "target", kind="stable")  # target first
    return _merge_kinds(table) if "kind" in table else table.drop_duplicates("path")


def _upload() -> Pick | None:
    up = st.file_uploader("Face image (PNG or JPEG, ≤ 10 MB, ≤ 25 MP)", ["png", "jpg", "jpeg"])
    if up is None:
        return None
    data = up.getvalue()
    image = read_upload(up.name, data)
    return Pick(f"upload {up.name}", hashlib.sha256(data).hexdigest(), image, None, "target")


def _pick_sample(run: Run, source: str) -> Pick | None:
    """The chosen sample or upload, or None."""
    if source == SOURCES[2]:
        if ui.share_mode():  # read-only: the server decodes nothing a visitor sends
            st.info(SHARE_REFUSAL)
            return None
        return _upload()
    rows = _candidates(run, source).reset_index(drop=True)
    if rows.empty:
        ui.empty_state("Nothing to pick here yet: try another source, or upload an image.")
        return None
    titles = [samples.sample_title(r) for r in rows.itertuples()]
    wanted = st.query_params.get("sample")
    hits = rows.index[rows["sample"].astype(str) == str(wanted)].tolist()
    i = st.selectbox(
        "Sample",
        rows.index,
        index=hits[0] if hits else 0,
        format_func=lambda k: titles[k],
        key=f"gc_sample_{source}",
    )
    row = rows.loc[i]
    if str(row["sample"]) != st.query_params.get("sample"):
        st.query_params["sample"] = str(row["sample"])
    image = samples.open_image(row["path"])
    return Pick(titles[i], f"sample:{row['path']}", image, row["label"], row["role"])


def _final(run: Run, model: str) -> dict:
    """final.json of the run a model comes from (the teacher's own run for ``teacher``)."""
    teacher = run.config().get("teacher")
    owner = ui.store().run(teacher) if model == "teacher" and teacher else run
    return ui.read_json(owner, "final") or {}


def _caption(name: str, score: float, threshold: float | None, label: str | None) -> str:
    """``student · P(spoof) 0.030 < 0.412 → live (right)``."""
    if threshold is None:
        return f"{name} · P(spoof) {score:.3f} (no threshold recorded)"
    says = "spoof" if score >= threshold else "live"
    sign = "≥" if says == "spoof" else "<"
    truth = "" if label is None else (" (right)" if says == label else f" (wrong: {label})")
    return f"{name} · P(spoof) {score:.3f} {sign} {threshold:.3f} → {says}{truth}"


def _scale_caption(panel: samples.Panel, scale: str) -> str:
    peaks = ", ".join(f"{m} {v:.3g}" for m, v in panel.peaks.items())
    if scale == "shared":
        top = max(panel.peaks.values(), default=0.0)
        return (
            f"One colour scale for both models: red = {top:.3g} spoof log-odds per cell of the "
            f"layer's grid, the larger map's maximum (each map's own: {peaks}), blue = 0. Only "
            "spoof evidence is drawn: a model that says live outweighs it with live evidence."
        )
    return (
        f"Each map scaled to its own maximum ({peaks} spoof log-odds per cell): compare where "
        "the models look, not how strongly; a model that says live still shows a red peak."
    )


def _show(run: Run, pick: Pick, panel: samples.Panel, scale: str) -> None:
    st.subheader(pick.title)
    cols = st.columns(len(panel.images))
    for col, (name, img) in zip(cols, panel.images.items(), strict=True):
        caption = "input" if name == "input" else ""
        if name in panel.scores:
            threshold = (_final(run, name).get(f"{pick.role}_test") or {}).get("threshold")
            caption = _caption(name, panel.scores[name], threshold, pick.label)
        col.image(img, caption, WIDTH, output_format="PNG")
    st.caption(
        "Warmer = more evidence for 'spoof': Grad-CAM of the spoof log-odds (z_spoof − z_live) "
        "at each model's last convolutional block, upsampled to the input. "
        + _scale_caption(panel, scale)
        + f" Thresholds ({pick.role} test, each model's own run): "
        + "; ".join(f"{m}: {numbers.threshold_text(_final(run, m))}" for m in panel.scores)
        + ". A frame is decided alone here; the runs' metrics average the frames of a video."
    )


@ui.safe_page
def gradcam_page() -> None:
    st.title("Grad-CAM on spoof decisions")
    done = ui.runs_table().query("state == 'done'")["run"].tolist()
    if not done:
        ui.empty_state("Grad-CAM needs a finished run. Build the demo on the Overview page.")
        return
    run = ui.run_picker("Run (a student shows its teacher beside it)", "gc_run", runs=done)
    source = st.radio("Sample from", SOURCES, horizontal=True, key="gc_source")
    pick = _pick_sample(run, source)
    left, right = st.columns([2, 1])
    alpha = left.slider("Heat-map opacity", 0.0, 1.0, 0.5, 0.05, key="gc_alpha")
    scale = SCALES[right.radio("Heat-map scale", list(SCALES), key="gc_scale")]
    if pick is None:
        return
    sample = st.query_params.get("sample") if source != SOURCES[2] else None
    st.caption("Link: " + deep_link(st.context.url, "gradcam", run=run.id, sample=sample))
    panel = _explain(str(run.path), ui.weights_stamp(run), pick.key, alpha, scale, pick.image)
    _show(run, pick, panel, scale)


gradcam_page()
