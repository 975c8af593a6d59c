"""Report: one self-contained HTML file (opens offline) of chosen runs, to share with an advisor."""

import pandas as pd
import streamlit as st

from dashboard import ui
from fascore.share import report, samples
from fascore.share.links import DASHBOARD_URL, deep_link, is_local

MAX_CAMS = 6


@st.cache_data(max_entries=4, show_spinner="Building the report (bootstrap, figures, Grad-CAM)…")
def _build(
    ids: tuple[str, ...], stamps: tuple, cams: tuple[str, ...], alpha: float, url: str
) -> bytes:
    store = ui.store()
    runs = [store.get(i) for i in ids]
    rows = samples.chosen_rows(runs[-1].read_table("errors"), cams)
    panels = samples.gradcam_panels(runs[-1], rows, alpha)
    html = report.build_report(runs, panels, dashboard=None if is_local(url) else url)
    return html.encode("utf-8")


def _default_runs(table: pd.DataFrame, done: list[str]) -> list[str]:
    """The linked run and its teacher, else every finished run of the newest experiment."""
    wanted = st.query_params.get("run")
    if wanted in done:
        teacher = table.set_index("run").loc[wanted, "teacher"]
        return [r for r in (teacher, wanted) if r in done]
    newest = table[table["run"].isin(done)].iloc[0]["experiment"]
    return table[(table["experiment"] == newest) & table["run"].isin(done)]["run"].tolist()[::-1]


def _cams(last) -> tuple[tuple[str, ...], float]:
    """The Grad-CAM samples (paths) chosen from the last run's errors, and the opacity."""
    candidates = samples.pick_samples(ui.read_table(last, "errors"), 24)
    if candidates.empty:
        st.caption(f"{last.id} has no error table, so no Grad-CAM samples to offer.")
        return (), 0.5
    titles = {r.path: samples.sample_title(r) for r in candidates.itertuples()}
    chosen = st.multiselect(
        f"Grad-CAM samples from {last.id}'s errors (optional, at most {MAX_CAMS})",
        list(titles),
        default=list(titles)[:3],
        format_func=titles.get,
        max_selections=MAX_CAMS,
        key="rep_cams",
    )
    alpha = st.slider("Heat-map opacity", 0.0, 1.0, 0.5, 0.05, key="rep_alpha")
    return tuple(chosen), alpha


def _links(runs) -> None:
    """Deep links to each run's views in this dashboard."""
    for run in runs:
        teacher = run.config().get("teacher")
        links = [
            f"[{title}]({deep_link(st.context.url, page, run=run.id, teacher=t)})"
            for page, title, t in (
                ("compare", "Compare", teacher),
                ("alignment", "Alignment", None),
                ("gradcam", "Grad-CAM", None),
            )
        ]
        st.caption(f"Open `{run.id}` in the dashboard: " + " · ".join(links))
    if is_local(st.context.url or DASHBOARD_URL):
        st.caption(
            "These links are left out of the report: this dashboard runs on this machine only "
            "(a loopback address), which a reader's browser cannot reach."
        )


@ui.safe_page
def report_page() -> None:
    st.title("Share a report")
    table = ui.runs_table()
    done = table.loc[table["state"] == "done", "run"].tolist()
    if not done:
        ui.empty_state("Reports are made of finished runs. Build the demo on the Overview page.")
        return
    ids = st.multiselect(
        "Runs (the report lists teachers first)",
        done,
        default=_default_runs(table, done),
        key="rep_runs",
    )
    if not ids:
        ui.empty_state("Pick at least one run.")
        return
    store = ui.store()
    runs = [store.get(i) for i in ids]
    cams, alpha = _cams(runs[-1])
    st.caption(
        "From a terminal (Grad-CAM samples picked for you): `python -m fascore report "
        + " ".join(ids)
        + " --out report.html"
        + (f" --gradcam {len(cams)}`" if cams else "`")
    )
    _links(runs)
    if st.button("Build the report", type="primary", key="rep_build"):
        stamps = tuple(r.file("final").stat().st_mtime_ns for r in runs if r.has("final"))
        stamps += ui.weights_stamp(runs[-1])  # its Grad-CAMs load these weights
        data = _build(tuple(ids), stamps, cams, alpha, st.context.url or DASHBOARD_URL)
        st.success(f"Report ready: {len(data) / 1e6:.1f} MB, one HTML file that opens offline.")
        st.download_button(
            "Download report.html",
            data,
            "fascore-report.html",
            "text/html",
            on_click="ignore",
            key="rep_download",
        )


report_page()
