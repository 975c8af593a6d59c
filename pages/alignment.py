"""Alignment: UMAP views of source and target embeddings, MMD² tests and MMD² per epoch."""

import streamlit as st

from dashboard import ui
from fascore.share import figures
from fascore.share.links import deep_link

VIEW_HELP = {
    "shift": "teacher on source vs teacher on target: the domain shift the teacher sees",
    "aligned": "teacher on source vs student on target: what distillation's MMD term aligns",
    "student": "student on source vs student on target",
}
COLOR_BY = ["domain", "label", "attack", "model", "role"]


def _pick_view(views: list[str]) -> str:
    default = "aligned" if "aligned" in views else views[0]  # what distillation aligns
    view = st.radio(
        "View", views, index=views.index(default), horizontal=True, key="view", bind="query-params"
    )
    st.caption(VIEW_HELP.get(view, ""))
    return view


def _statistics(alignment: dict | None) -> None:
    table = figures.mmd_table(alignment)
    if table.empty:
        ui.empty_state("No MMD statistics in this run (analysis off or still running).")
        return
    st.dataframe(
        table,
        hide_index=True,
        column_config={
            "MMD²": st.column_config.NumberColumn(format="%.4f"),
            "p-value": st.column_config.NumberColumn(format="%.3f", help="permutation test"),
            "proxy A-distance": st.column_config.NumberColumn(
                format="%.2f", help="kernel-free: 2(1 − 2·error) of a domain classifier; 0 = same"
            ),
        },
    )
    st.caption(f"Sampling — {figures.sampling_line(alignment)}.")


def _epochs(run, view: str, color: str, alignment: dict | None) -> None:
    frames = ui.read_table(run, "epoch_projection")
    per_epoch, series = figures.mmd_epochs(alignment)
    if series:
        fig = figures.series_figure(per_epoch, "epoch", series, "MMD² per epoch", "MMD²")
        st.plotly_chart(fig, key="al_mmd_epochs")
    if frames is None or frames.empty:
        ui.empty_state("No per-epoch maps in this run: they are written when training ends.")
        return
    part = frames[frames["view"] == view] if "view" in frames else frames
    epochs = sorted(part["epoch"].unique())
    if len(epochs) > 1:
        e = st.select_slider("Epoch", epochs, value=epochs[-1], key="al_epoch")
        title = f"'{view}' at epoch {e} (one joint map over the mapped epochs)"
        st.plotly_chart(figures.umap_figure(part[part["epoch"] == e], color, title), key="al_ep")
    with st.expander("Animate all epochs"):
        st.plotly_chart(figures.umap_animation(part, color), key="al_anim")


@ui.safe_page
def alignment_page() -> None:
    st.title("Domain alignment")
    run = ui.run_picker("Run", "al_run", param="run")
    if run is None:
        ui.empty_state("No runs yet. Build the demo on the Overview page, then come back.")
        return
    projection, alignment = ui.read_table(run, "projection"), ui.read_json(run, "alignment")
    if projection is None:
        ui.empty_state(
            f"Run {run.id} has no embeddings map yet (state: {ui.state_badge(run.state())}). "
            "Maps are written when a run with analysis on finishes."
        )
        return
    views = list(dict.fromkeys(projection["view"]))
    view = _pick_view(views)
    color = st.radio("Colour by", COLOR_BY, horizontal=True, key="al_color")
    st.caption("Link: " + deep_link(st.context.url, "alignment", run=run.id, view=view))
    map_col, stats_col = st.columns([3, 2])
    with map_col:
        part = projection[projection["view"] == view]
        st.plotly_chart(figures.umap_figure(part, color, f"UMAP view '{view}'"), key="al_map")
    with stats_col:
        st.subheader("MMD² and proxy A-distance")
        _statistics(alignment)
    st.subheader("Over training")
    _epochs(run, view, color, alignment)


alignment_page()
