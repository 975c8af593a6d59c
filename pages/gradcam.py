"""Grad-CAM: where teacher and student look when they call a face a spoof, side by side."""

import threading
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import ui
from fascore.data.uploads import SHARE_REFUSAL, read_upload
from fascore.share import samples
from fascore.share.links import deep_link
from fascore.store.runs import Run

WIDTH = 256  # pixels per image: large enough to read a 64-px map, small enough for three
SOURCES = ("Errors and disagreements", "Any scored image", "Upload an image")


@st.cache_resource(max_entries=4, show_spinner="Loading the run's models…")
def _models(run_path: str, stamp: tuple) -> tuple[dict, threading.Lock]:
    """The run's models, loaded once per weights version, with the lock that guards them: a
    Grad-CAM switches them to eval mode and hooks their layers, so sessions take turns."""
    from fascore.train.checkpoint import load_models  # start-up cost: torch (~4 s)

    return load_models(Run(Path(run_path))), threading.Lock()


@st.cache_data(max_entries=64, show_spinner="Computing Grad-CAM…")
def _explain(run_path: str, stamp: tuple, key: str, alpha: float, _image) -> samples.Panel:
    """One panel, cached per run, weights version (``ui.weights_stamp``), sample and opacity."""
    models, lock = _models(run_path, stamp)
    with lock:
        return samples.explain_images(models, [_image], [key], alpha)[0]


def _candidates(run: Run, source: str) -> pd.DataFrame:
    table = ui.read_table(run, "errors" if source == SOURCES[0] else "scores")
    if table is None or table.empty:
        return pd.DataFrame()
    table = table if source == SOURCES[0] else table[table["split"] == "test"]
    return table.sort_values("role", key=lambda r: r != "target", kind="stable")  # target first


def _pick_sample(run: Run, source: str):
    """(title, PIL image) of the chosen sample or upload, or None."""
    if source == SOURCES[2]:
        if ui.share_mode():  # read-only: the server decodes nothing a visitor sends
            st.info(SHARE_REFUSAL)
            return None
        up = st.file_uploader("Face image (PNG or JPEG, ≤ 10 MB, ≤ 25 MP)", ["png", "jpg", "jpeg"])
        if up is None:
            return None
        return f"upload {up.name} ({up.file_id})", read_upload(up.name, up.getvalue())
    rows = _candidates(run, source).drop_duplicates("path").reset_index(drop=True)
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
    if str(rows.loc[i, "sample"]) != st.query_params.get("sample"):
        st.query_params["sample"] = str(rows.loc[i, "sample"])
    return titles[i], samples.open_image(rows.loc[i, "path"])


@ui.safe_page
def gradcam_page() -> None:
    st.title("Grad-CAM on spoof decisions")
    done = ui.runs_table().query("state == 'done'")["run"].tolist()
    if not done:
        ui.empty_state("Grad-CAM needs a finished run. Build the demo on the Overview page.")
        return
    run = ui.run_picker("Run (a student shows its teacher beside it)", "gc_run", runs=done)
    source = st.radio("Sample from", SOURCES, horizontal=True, key="gc_source")
    picked = _pick_sample(run, source)
    alpha = st.slider("Heat-map opacity", 0.0, 1.0, 0.5, 0.05, key="gc_alpha")
    if picked is None:
        return
    title, image = picked
    sample = st.query_params.get("sample") if source != SOURCES[2] else None
    st.caption("Link: " + deep_link(st.context.url, "gradcam", run=run.id, sample=sample))
    panel = _explain(str(run.path), ui.weights_stamp(run), title, alpha, image)
    st.subheader(title)
    cols = st.columns(len(panel.images))
    for col, (name, img) in zip(cols, panel.images.items(), strict=True):
        col.image(img, f"{name} {panel.captions.get(name, '')}", WIDTH, output_format="PNG")
    st.caption(
        "Warmer = more evidence for 'spoof': Grad-CAM of the spoof log-odds (z_spoof − z_live) "
        "at each model's last convolutional block, upsampled to the input and scaled to [0, 1]."
    )


gradcam_page()
