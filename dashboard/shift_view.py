"""The Shift debugger's parts: cached loaders, the linked maps, the sample grid, the inspector.

``pages/shift.py`` lays them out; the logic lives in ``fascore.eval.shift`` (no Streamlit). The
view state is ``fascore.eval.shift.selection.ViewState``, read from and written to the URL.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import ui
from fascore.errors import FascoreError
from fascore.eval.shift import selection as sel
from fascore.eval.shift.data import ShiftData, load_shift
from fascore.eval.shift.epochs import EpochScores, epoch_scores
from fascore.eval.shift.neighbours import neighbours
from fascore.eval.shift.slices import error_slices, shift_ranking
from fascore.share import samples as gradcam
from fascore.store.runs import Run

GRID_MAX = 48  # thumbnails shown (worst first); the count of the rest is said
GRID_COLUMNS = 8
MAX_SELECTED = 5_000  # a larger selection gets a warning (the grid still shows its worst)
THUMB = 96
COLOR_PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                 "#17becf", "#bcbd22", "#7f7f7f"]  # fmt: skip
MAP_FILES = ("embedding_index", "embeddings", "projection", "scores", "final")


# -- cached loaders ------------------------------------------------------------------------------
def _stamp(run: Run) -> tuple:
    teacher = run.config().get("teacher")
    runs = [run] + ([Run(run.path.parent / teacher)] if teacher else [])
    return tuple((r.id, k, _changed(r, k)) for r in runs for k in MAP_FILES)


def _changed(run: Run, key: str) -> int:
    """The file's modification time in ns (0 while it does not exist): a cache key part."""
    try:
        return run.file(key).stat().st_mtime_ns
    except FileNotFoundError:
        return 0


@st.cache_resource(max_entries=4, show_spinner="Reading the run's maps…")
def _shift(path: str, regime: str | None, stamp: tuple) -> ShiftData:
    return load_shift(Run(Path(path)), regime)


def shift_data(run: Run, regime: str | None) -> ShiftData:
    """``load_shift`` cached per run, regime and the files it reads (never mutate it)."""
    return _shift(str(run.path), regime, _stamp(run))


@st.cache_resource(max_entries=4, show_spinner="Decoding the run's thumbnails (once)…")
def _thumbs(paths: tuple[str, ...], size: int, cache: str | None) -> np.ndarray:
    from fascore.data.images import load_images  # start-up cost: torch (~4 s)

    frame = pd.DataFrame({"path": list(paths)})
    images = load_images(frame, size, Path(cache) if cache else None, log=lambda _: None)
    bad = np.flatnonzero(~images.ok.numpy())
    if len(bad):
        raise FascoreError(
            f"{len(bad)} of {len(paths)} images of this run cannot be read (first: "
            f"{paths[bad[0]]}): the data set moved or changed since the run was analysed. Put it "
            "back where the run's manifest says, or re-run `python -m fascore analyse RUN`."
        )
    return images.images.numpy().transpose(0, 2, 3, 1)  # (N, H, W, 3), memory-mapped


def image_cache(run: Run) -> str | None:
    """The run store's decoded-image cache folder, or None where the store is read-only (a
    shared dashboard): images are then decoded in memory, once per server."""
    folder = run.path.parent / ".cache"
    return (
        str(folder) if os.access(folder if folder.exists() else run.path.parent, os.W_OK) else None
    )


def thumbnails(run: Run, data: ShiftData) -> np.ndarray:
    """uint8 (N, H, W, 3) of every sample on the maps, from the decoded-image cache of the run
    store (``fascore.data.images``): decoded once, then memory-mapped."""
    size = int(run.config().get("image_size") or 64)
    paths = tuple(data.samples["path"].astype(str))
    return _thumbs(paths, size, image_cache(run))


@st.cache_data(max_entries=8, show_spinner="Ranking attributes (permutation test)…")
def _ranking(path: str, regime: str | None, stamp: tuple, model: str) -> pd.DataFrame:
    data = shift_data(Run(Path(path)), regime)
    return shift_ranking(data.samples, data.embeddings[model], data.attributes)


def ranking(run: Run, data: ShiftData, model: str) -> pd.DataFrame:
    return _ranking(str(run.path), data.regime, _stamp(run), model)


@st.cache_data(max_entries=8, show_spinner="Bootstrapping error slices…")
def _slices(path: str, regime: str | None, stamp: tuple, model: str) -> pd.DataFrame:
    data = shift_data(Run(Path(path)), regime)
    rows = target_test(data)
    wrong = ~rows[f"{model}_right"].astype(bool).to_numpy()
    return error_slices(rows, wrong, data.attributes)


def slices(run: Run, data: ShiftData, model: str) -> pd.DataFrame:
    return _slices(str(run.path), data.regime, _stamp(run), model)


def target_test(data: ShiftData) -> pd.DataFrame:
    s = data.samples
    return s[(s["role"] == "target") & (s["split"] == "test")]


# -- the view state in widgets -------------------------------------------------------------------
def synced(key: str, url_value, options: list) -> None:
    """Set a widget's value from the link when the link changed since it was last synced (a new
    URL, or a page opened from one); a value the options lack is dropped."""
    if url_value != st.session_state.get(f"_{key}_synced"):
        st.session_state[f"_{key}_synced"] = url_value
        if url_value is not None:
            st.session_state[key] = url_value
    value = st.session_state.get(key)
    if value is not None and not all(
        v in options for v in (value if isinstance(value, list) else [value])
    ):
        del st.session_state[key]


# -- maps ----------------------------------------------------------------------------------------
def map_figure(data: ShiftData, model: str, color: str, chosen: np.ndarray | None) -> go.Figure:
    """One WebGL map of ``model``: every sample coloured by ``color``, the ``chosen`` rows (N,)
    bool outlined on top (the others faded); ``customdata`` holds sample ids."""
    s, p = data.samples, model[0]
    fig = go.Figure()
    values = s[color].astype(str).to_numpy()
    x, y, ids = s[f"{p}x"].to_numpy(), s[f"{p}y"].to_numpy(), s["sample"].to_numpy()
    for i, value in enumerate(pd.unique(values)):
        rows = np.flatnonzero(values == value)
        fig.add_trace(go.Scattergl(
            x=x[rows], y=y[rows], mode="markers", name=value, customdata=ids[rows, None],
            marker=dict(size=5, color=COLOR_PALETTE[i % len(COLOR_PALETTE)],
                        opacity=0.35 if chosen is not None else 0.7),
            hovertemplate="sample %{customdata[0]}<extra>" + value + "</extra>",
        ))  # fmt: skip
    picked = np.flatnonzero(chosen) if chosen is not None else []
    if len(picked):
        fig.add_trace(go.Scattergl(
            x=x[picked], y=y[picked], mode="markers", name="selected", customdata=ids[picked, None],
            marker=dict(size=7, color="rgba(0,0,0,0)", line=dict(color="black", width=1.5)),
            hovertemplate="sample %{customdata[0]} (selected)<extra></extra>",
        ))  # fmt: skip
    title = "teacher's map (teacher on both domains)" if model == "teacher" else \
        "student's map (student on both domains)"  # fmt: skip
    fig.update_layout(title=title, template="plotly_white", height=460, dragmode="select",
                      margin=dict(l=30, r=10, t=40, b=30), legend=dict(orientation="h"))  # fmt: skip
    return fig


def draw_map(data: ShiftData, model: str, color: str, chosen) -> sel.Selection | None:
    """Draw one map; return a selection the user just made on it (None: nothing new)."""
    key = f"shift_map_{model}"
    event = st.plotly_chart(
        map_figure(data, model, color, chosen), key=key, on_select="rerun",
        selection_mode=("points", "box", "lasso"), config={"displaylogo": False},
    )  # fmt: skip
    picked = sel.from_plotly(dict(event.selection) if event else {}, model[0], data.samples)
    code = sel.encode_selection(picked)
    if code is None or st.session_state.get(f"{key}_seen") == code:
        return None
    st.session_state[f"{key}_seen"] = code
    return picked


# -- grid and inspector --------------------------------------------------------------------------
def _verdict(row, model: str) -> str:
    right = row.get(f"{model}_right")
    score = row.get(f"{model}_score")
    if score is None or pd.isna(score):
        return f"{model[0].upper()} –"
    mark = "✓" if right is True or right == 1.0 else "✗"
    return f"{model[0].upper()} {score:.2f} {mark}"


def caption(row, models: list[str]) -> str:
    """``spoof/print · phone · s012 · T 0.81 ✓ · S 0.41 ✗`` for one sample row (a dict)."""
    who = row.get("subject") or row.get("video")
    parts = [f"#{row['sample']}", f"{row['label']}/{row['attack']}", row["domain"], str(who)]
    return " · ".join(parts + [_verdict(row, m) for m in models])


def grid(rows: pd.DataFrame, images: np.ndarray, models: list[str]) -> int | None:
    """Thumbnails of ``rows`` (already ordered, at most ``GRID_MAX``), each with a caption and an
    Inspect button; returns the sample id whose button was pressed."""
    pressed = None
    for i, (pos, row) in enumerate(rows.iterrows()):
        if i % GRID_COLUMNS == 0:  # one row of columns at a time: reading order = worst first
            cols = st.columns(GRID_COLUMNS)
        with cols[i % GRID_COLUMNS], st.container(key=f"thumb_{row['sample']}"):
            st.image(images[pos], width=THUMB)
            st.caption(caption(row, models))
            if st.button("Inspect", key=f"inspect_{row['sample']}"):
                pressed = int(row["sample"])
    return pressed


@st.cache_resource(max_entries=2, show_spinner="Loading the run's models…")
def _models(run_path: str, stamp: tuple) -> tuple[dict, threading.Lock]:
    from fascore.train.checkpoint import load_models  # start-up cost: torch (~4 s)

    return load_models(Run(Path(run_path))), threading.Lock()


@st.cache_data(max_entries=64, show_spinner="Computing Grad-CAM…")
def _cams(run_path: str, stamp: tuple, image_path: str) -> gradcam.Panel:
    models, lock = _models(run_path, stamp)
    image = gradcam.open_image(image_path)
    with lock:
        return gradcam.explain_images(models, [image], [image_path])[0]


def cams(run: Run, path: str) -> gradcam.Panel:
    """Teacher and student Grad-CAM of one image (``fascore.share.samples``), cached."""
    return _cams(str(run.path), ui.weights_stamp(run), path)


@st.cache_resource(max_entries=2, show_spinner="Embedding the source training samples (once)…")
def _reference(run_path: str, stamp: tuple):
    from fascore.eval.shift.reference import build_reference  # start-up cost: torch (~4 s)

    models, lock = _models(run_path, stamp)
    with lock:
        run = Run(Path(run_path))
        cache = image_cache(run)
        return build_reference(run, models, Path(cache) if cache else None)


def reference(run: Run):
    """The run's source training samples embedded by its models (``Reference``), cached per
    weights version."""
    return _reference(str(run.path), ui.weights_stamp(run))


@st.cache_data(max_entries=256, show_spinner=False)
def _query(run_path: str, stamp: tuple, path: str, _image: np.ndarray) -> dict[str, np.ndarray]:
    from fascore.eval.shift.reference import embed_images  # start-up cost: torch (~4 s)

    models, lock = _models(run_path, stamp)
    with lock:
        return {m: z[0] for m, z in embed_images(models, _image[None]).items()}


def query(run: Run, path: str, image: np.ndarray) -> dict[str, np.ndarray]:
    """One sample's embedding by each of the run's models (the weights the reference used)."""
    return _query(str(run.path), ui.weights_stamp(run), path, image)


def neighbour_strip(ref, z: dict[str, np.ndarray], model: str) -> None:
    """The k nearest source training samples of row ``pos`` under ``model``, as thumbnails."""
    if model not in ref.embeddings:
        st.caption(f"This run has no {model} model to embed the source training samples with.")
        return
    near = neighbours(ref.samples, ref.embeddings, {model: z[model]})
    cols = st.columns(len(near) or 1)
    for col, row in zip(cols, near.itertuples(), strict=False):
        col.image(ref.images[row.row], width=72)
        col.caption(f"{row.label}/{row.attack} · cos {row.similarity:.3f}")
    lives = int((near["label"] == "live").sum())
    st.caption(
        f"{lives} of {len(near)} nearest source training samples under the {model} are live."
    )


def inspector(run: Run, data: ShiftData, images: np.ndarray, sample: int) -> None:
    """One sample: the frame large, teacher and student Grad-CAM, both scores against their
    regime thresholds, and its nearest source samples under each model."""
    s = data.samples
    hits = np.flatnonzero(s["sample"].to_numpy() == sample)
    if not len(hits):
        raise FascoreError(f"sample {sample} is not on this run's maps; pick one from the grid")
    pos, row = int(hits[0]), s.iloc[int(hits[0])].to_dict()
    st.subheader(f"Sample {sample}: {row['label']}/{row['attack']} · {row['domain']}")
    panel = cams(run, str(row["path"]))
    cols = st.columns(1 + len(panel.images))
    cols[0].image(gradcam.open_image(row["path"]), caption="frame", width=256)
    for col, (name, img) in zip(cols[1:], panel.images.items(), strict=True):
        label = "input (model size)" if name == "input" else f"{name} Grad-CAM"
        col.image(img, caption=f"{label} {panel.captions.get(name, '')}", width=192)
    table = pd.DataFrame([{
        "model": m, "P(spoof)": row.get(f"{m}_score"),
        "threshold": row.get(f"{m}_threshold"),
        "decision": "right" if row.get(f"{m}_right") is True else "wrong",
    } for m in data.models])  # fmt: skip
    st.dataframe(table, hide_index=True)
    st.caption(f"Thresholds of the {data.regime} regime; spoof iff P(spoof) ≥ threshold.")
    ref, z = reference(run), query(run, str(row["path"]), images[pos])
    for model in data.models:
        st.markdown(f"**Nearest source training samples under the {model}'s embedding**")
        neighbour_strip(ref, z, model)


def epoch_figure(frames: pd.DataFrame, ids: np.ndarray, view: str = "student") -> go.Figure | None:
    """Small multiples of the per-epoch maps of ``view`` (the run's tracked subset, one joint
    fit, so positions compare across panels): every tracked sample in grey, the selected ones
    in red; None when none of them is tracked."""
    from plotly.subplots import make_subplots  # only this figure needs it

    part = frames[frames["view"] == view]
    if not part["sample"].isin(ids).any():
        return None
    epochs = sorted(part["epoch"].unique())
    cols = min(4, len(epochs))
    rows = -(-len(epochs) // cols)
    fig = make_subplots(rows, cols, subplot_titles=[f"epoch {e}" for e in epochs],
                        shared_xaxes=True, shared_yaxes=True,
                        horizontal_spacing=0.02, vertical_spacing=0.08)  # fmt: skip
    for i, epoch in enumerate(epochs):
        at = part[part["epoch"] == epoch]
        mine = at["sample"].isin(ids).to_numpy()
        for mask, color, size in ((~mine, "#ccc", 3), (mine, "#d62728", 5)):
            fig.add_trace(go.Scattergl(x=at["x"][mask], y=at["y"][mask], mode="markers",
                                       marker=dict(color=color, size=size), showlegend=False,
                                       hoverinfo="skip"), i // cols + 1, i % cols + 1)  # fmt: skip
    fig.update_layout(title=f"selected samples (red) on the per-epoch '{view}' maps",
                      template="plotly_white", height=260 * rows,
                      margin=dict(l=30, r=10, t=60, b=30))  # fmt: skip
    return fig


def score_figure(scores: EpochScores, thresholds: dict[str, float], regime: str):
    """One line per shown sample (its P(spoof) per epoch, red spoof, green live) and the
    regime's threshold of each role shown as a dashed line."""
    fig = go.Figure()
    for sample, part in scores.frame.groupby("sample", sort=False):
        label, attack = part["label"].iloc[0], part["attack"].iloc[0]
        fig.add_trace(go.Scatter(
            x=part["epoch"], y=part["score"], mode="lines+markers", showlegend=False,
            line=dict(color="#d62728" if label == "spoof" else "#2ca02c", width=1),
            marker=dict(size=4), opacity=0.7,
            hovertemplate=f"sample {sample} · {label}/{attack} · {part['role'].iloc[0]}<br>"
            "epoch %{x}: P(spoof) %{y:.3f}<extra></extra>",
        ))  # fmt: skip
    for role in scores.frame["role"].unique():
        if role in thresholds:
            where = "top left" if role == "target" else "bottom right"  # no overlap if close
            fig.add_hline(y=thresholds[role], line_dash="dash", line_color="black",
                          annotation_position=where, annotation_text=f"{role} threshold "
                          f"({regime}) {thresholds[role]:.3f}")  # fmt: skip
    fig.update_layout(title=f"the {scores.model}'s P(spoof) per epoch (red spoof, green live)",
                      template="plotly_white", height=320, xaxis_title="epoch",
                      yaxis=dict(title="P(spoof)", range=[-0.02, 1.02]),
                      margin=dict(l=30, r=10, t=40, b=30))  # fmt: skip
    return fig


def score_curves(run: Run, data: ShiftData, rows: pd.DataFrame) -> None:
    """The selected tracked samples' P(spoof) per epoch by the run's own model (the student),
    worst first, at most ``epochs.MAX_LINES`` of them, against the regime's thresholds."""
    model = data.models[-1]
    ids = sel.worst_first(rows)["sample"].to_numpy()
    scores = epoch_scores(ui.read_arrays(run, "epoch_embeddings"), ids, model)
    if not scores.stored:
        st.caption("This run predates per-epoch scores: its tracker stored embeddings only, "
                   "so no score curve is drawn.")  # fmt: skip
        return
    if len(scores.frame):
        fig = score_figure(scores, data.thresholds.get(model, {}), data.regime)
        st.plotly_chart(fig, key="sh_epoch_scores")
    drawn = f"; the {scores.shown} worst drawn" if scores.shown < scores.tracked else ""
    st.caption(
        f"{scores.tracked:,} of the {scores.selected:,} selected samples are in the subset the "
        "run tracked per epoch (a fixed balanced subset, up to 128 per domain, half live and "
        f"half spoof){drawn}. Dashed: the {data.regime} regime's threshold of each domain "
        "shown; spoof iff P(spoof) ≥ threshold."
    )


def over_training(run: Run, data: ShiftData, rows: pd.DataFrame) -> None:
    """The selected samples' trajectories across the run's per-epoch maps and their P(spoof)
    per epoch."""
    st.subheader("Over training")
    frames = ui.read_table(run, "epoch_projection")
    fig = epoch_figure(frames, rows["sample"].to_numpy()) if frames is not None else None
    if fig is None:
        ui.empty_state(
            "Select samples on a map to follow them across the per-epoch maps and scores (only "
            "the subset the run tracked per epoch has them)."
        )
        return
    st.plotly_chart(fig, key="sh_epochs")
    score_curves(run, data, rows)
