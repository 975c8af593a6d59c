"""Alignment: UMAP views of source and target embeddings, MMD² tests and MMD² per epoch."""

from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from dashboard import ui
from fascore.share import figures, numbers
from fascore.share.links import deep_link
from fascore.store.runs import Run

VIEW_HELP = {
    "shift": "teacher on source vs teacher on target: the domain shift the teacher sees",
    "aligned": "teacher on source vs student on target: what distillation's MMD term aligns",
    "student": "student on source vs student on target",
}
COLOR_BY = ["domain", "label", "attack", "model", "role"]


@st.cache_data(max_entries=64, show_spinner=False)
def _map(path: str, key: str, stamp: int, view: str, color: str, epoch: int | None) -> go.Figure:
    """One UMAP view (``epoch``: of the per-epoch maps; -1: all of them animated), built once per
    input so that a click back to a seen view or colour redraws nothing."""
    frames = ui.read_table(Run(Path(path)), key)
    part = frames[frames["view"] == view] if "view" in frames else frames
    if epoch == -1:
        return figures.umap_animation(part, color)
    if epoch is not None:
        title = f"'{view}' at epoch {epoch} (one joint map over the mapped epochs)"
        return figures.umap_figure(part[part["epoch"] == epoch], color, title)
    return figures.umap_figure(part, color, f"UMAP view '{view}'")


def _views(run: Run, views: list[str]) -> tuple[list[str], dict[str, str]]:
    """The views worth showing and what each one is. A run without a teacher (``target_only``)
    has one network: its shift, aligned and student views are the same map, so one is shown."""
    if run.config().get("teacher") or len(views) == 1:
        help_ = dict(VIEW_HELP)
        if views == ["shift"]:
            help_["shift"] += " (a teacher run: the aligned and student views need a student)"
        return views, help_
    method = run.config().get("method", "this run")
    own = "student" if "student" in views else views[0]
    text = (
        f"`{method}` has no teacher: one network embeds both domains, so the shift, aligned and "
        f"student views are the same map with the same MMD². Shown once: {method} on source vs "
        f"{method} on target, the shift this model still sees."
    )
    return [own], {own: text}


def _pick_view(views: list[str], help_: dict[str, str]) -> str:
    if len(views) == 1:
        st.caption(help_.get(views[0], ""))
        return views[0]
    default = "aligned" if "aligned" in views else views[0]  # what distillation aligns
    view = st.radio(
        "View", views, index=views.index(default), horizontal=True, key="view", bind="query-params"
    )
    st.caption(help_.get(view, ""))
    return view


def _statistics(alignment: dict | None, views: list[str]) -> None:
    table = figures.mmd_table(alignment)
    if table.empty:
        ui.empty_state("No MMD statistics in this run (analysis off or still running).")
        return
    permutations = ((alignment or {}).get("sampling") or {}).get("permutations")
    table = table[table["view"].isin(views)]
    table = table.assign(
        **{"p-value": [numbers.p_value_text(p, permutations) for p in table["p-value"]]}
    )
    st.dataframe(
        table,
        hide_index=True,
        column_config={
            "MMD²": st.column_config.NumberColumn(format="%.4f"),
            "p-value": st.column_config.TextColumn(
                help="permutation test over whole videos; its smallest possible value is "
                "1 / (permutations + 1)"
            ),
            "proxy A-distance": st.column_config.NumberColumn(
                format="%.2f", help="kernel-free: 2(1 − 2·error) of a domain classifier; 0 = same"
            ),
        },
    )
    st.caption(f"Sampling — {figures.sampling_line(alignment)}.")


def _epochs(run: Run, view: str, views: list[str], color: str, alignment: dict | None) -> None:
    per_epoch, series = figures.mmd_epochs(alignment)
    series = [s for s in series if s in views] or series
    if series:
        fig = figures.series_figure(per_epoch, "epoch", series, "MMD² per epoch", "MMD²")
        st.plotly_chart(fig, key="al_mmd_epochs")
    frames = ui.read_table(run, "epoch_projection")
    if frames is None or frames.empty:
        ui.empty_state("No per-epoch maps in this run: they are written when training ends.")
        return
    stamp = ui.mtime(run, "epoch_projection")
    part = frames[frames["view"] == view] if "view" in frames else frames
    epochs = sorted(int(e) for e in part["epoch"].unique())
    if len(epochs) > 1:
        e = st.select_slider("Epoch", epochs, value=epochs[-1], key="al_epoch")
        fig = _map(str(run.path), "epoch_projection", stamp, view, color, e)
        st.plotly_chart(fig, key="al_ep")
    with st.expander("Animate all epochs"):
        fig = _map(str(run.path), "epoch_projection", stamp, view, color, -1)
        st.plotly_chart(fig, key="al_anim")


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
    views, help_ = _views(run, list(dict.fromkeys(projection["view"])))
    view = _pick_view(views, help_)
    color = st.radio("Colour by", COLOR_BY, horizontal=True, key="al_color")
    st.caption("Link: " + deep_link(st.context.url, "alignment", run=run.id, view=view))
    fig = _map(str(run.path), "projection", ui.mtime(run, "projection"), view, color, None)
    st.plotly_chart(fig, key="al_map")
    st.subheader("MMD² and proxy A-distance")  # full width: every column readable at 1440 px
    _statistics(alignment, views)
    st.subheader("Over training")
    _epochs(run, view, views, color, alignment)


alignment_page()
