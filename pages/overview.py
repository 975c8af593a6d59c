"""Overview: every run and experiment with its state, protocol and key metrics."""

import pandas as pd
import streamlit as st

from dashboard import ui
from fascore.jobs import control as jobs

REFRESH_S = 3
COLUMNS = {
    "state": st.column_config.TextColumn("state"),
    "method": st.column_config.TextColumn("method"),
    "protocol": st.column_config.TextColumn("protocol", help="source → target, k shots"),
    "hter": st.column_config.NumberColumn(
        "HTER %", format="%.1f", help="target test, headline regime's dev-EER threshold"
    ),
    "auc": st.column_config.NumberColumn("AUC %", format="%.1f"),
    "regime": st.column_config.TextColumn("regime", help="few-shot: only the k shots are labelled"),
    "labels": st.column_config.NumberColumn(
        "target labels", format="%d", help="labelled target videos used (training + extra)"
    ),
    "hter_dev": st.column_config.NumberColumn(
        "HTER % (target-dev)", format="%.1f", help="selected and thresholded on target dev"
    ),
    "acer": st.column_config.NumberColumn("ACER %", format="%.1f"),
    "progress": st.column_config.ProgressColumn(
        "progress", format="percent", min_value=0, max_value=1
    ),
    "seed": st.column_config.NumberColumn("seed", format="%d"),
    "compare": st.column_config.LinkColumn("open", display_text="compare ↗"),
    "run": st.column_config.TextColumn("run"),
}


def _rows(group: pd.DataFrame) -> pd.DataFrame:
    shots = group["shots"].map(lambda k: "all" if k is None or k != k else int(k))
    return pd.DataFrame(
        {
            "state": group["state"].combine(group.get("problem", ""), ui.state_badge),
            "method": group["method"],
            "protocol": group["source"] + " → " + group["target"] + ", k=" + shots.astype(str),
            # metrics of unfinished runs are None: numeric NaN shows as an empty cell
            "hter": pd.to_numeric(group["hter"], errors="coerce") * 100,
            "auc": pd.to_numeric(group["auc"], errors="coerce") * 100,
            "acer": pd.to_numeric(group["acer"], errors="coerce") * 100,
            "regime": group["regime"],
            "labels": pd.to_numeric(group["target_labels"], errors="coerce"),
            "hter_dev": pd.to_numeric(group["hter_target_dev"], errors="coerce") * 100,
            "progress": group["progress"],
            "seed": group["seed"],
            "compare": "compare?run=" + group["run"],
            "run": group["run"],
        }
    )


def _summary(table: pd.DataFrame) -> None:
    counts = table["state"].value_counts()
    cols = st.columns(4)
    for col, state in zip(cols, ("running", "queued", "done"), strict=False):
        col.metric(ui.state_badge(state), int(counts.get(state, 0)))
    stopped = sum(int(counts.get(s, 0)) for s in jobs.RESUMABLE_STATES)
    cols[3].metric("⚠️ stopped", stopped, help="failed, cancelled or interrupted: resume on Train")


def _active(table: pd.DataFrame) -> frozenset[str]:
    return frozenset(table.loc[table["state"].isin(("queued", "running")), "run"])


def _experiments(table: pd.DataFrame) -> None:
    teacher_first = table.assign(student=table["method"] != "source_only")
    for experiment, group in teacher_first.groupby("experiment", sort=False):
        group = group.sort_values(["student", "created"], kind="stable")
        st.subheader(f"Experiment · {ui.plain(experiment) if experiment else '(none)'}")
        st.dataframe(_rows(group), hide_index=True, column_config=COLUMNS, key=f"exp-{experiment}")


def _live(active_at_start: frozenset[str]) -> None:
    table = ui.runs_table()
    if _active(table) != active_at_start:
        st.rerun()  # a job started or finished: a full rerun sets the refresh timer anew
    _summary(table)
    _experiments(table)


def _build_demo() -> None:
    with st.spinner("Preparing SynthFAS data and submitting the demo runs…"):
        runs = jobs.submit_demo("demo")
    st.toast(f"Submitted {len(runs)} runs: the teacher first; its students wait for it.")


@ui.safe_page
def overview() -> None:
    st.title("Runs")
    table = ui.runs_table()
    if table.empty:
        ui.empty_state(
            "No runs yet. Build the demo experiment (a teacher on SynthFAS studio, six students "
            "on the phone domain with 5 shots; a few minutes on CPU), or launch your own on the "
            "Train page. From a terminal: `python -m fascore demo`."
        )
        if not ui.share_mode() and st.button("Build the demo experiment", type="primary"):
            _build_demo()
            st.rerun()
        return
    active = _active(table)
    st.caption(
        "Metrics are on the target test set at the dev-set EER threshold (video level). "
        + (f"Refreshing every {REFRESH_S} s while jobs run." if active else "")
    )
    st.fragment(_live, run_every=REFRESH_S if active else None)(active)


overview()
