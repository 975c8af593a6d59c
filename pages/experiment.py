"""Experiment: one experiment's runs aggregated over seeds, both regimes side by side."""

import streamlit as st

from dashboard import ui
from fascore.eval import experiment
from fascore.jobs import sweep
from fascore.share.figures import experiment_figure


@st.cache_data(max_entries=8, show_spinner="Reading the experiment's runs…")
def _rows(name: str, stamp: tuple) -> list[dict]:
    table = ui.runs_table()
    rows = []
    for run_id in table.loc[(table["experiment"] == name) & (table["state"] == "done"), "run"]:
        run = ui.store().get(run_id)
        rows += experiment.run_rows(run.id, run.config(), ui.read_json(run, "final"))
    return rows


@ui.safe_page
def experiment_page() -> None:
    st.title("Experiment")
    table = ui.runs_table()
    names = sorted(n for n in table["experiment"].unique() if n) if not table.empty else []
    if not names:
        ui.empty_state("No experiments yet: launch a sweep on the Train page.")
        return
    name = st.selectbox("Experiment", names, key="exp", bind="query-params")
    group = table[table["experiment"] == name]
    done = group[group["state"] == "done"]
    st.caption(f"{len(done)} of {len(group)} runs done · mean ± std over seeds per method and k")
    df = experiment.results_frame(_rows(name, tuple(sorted(done["run"]))))
    if df.empty:
        ui.empty_state("No finished run in this experiment yet.")
        return
    summary = experiment.summarise(df)
    st.dataframe(sweep.side_by_side(summary), hide_index=True, key="exp-table")
    st.caption(
        "few-shot: only the k shots are labelled target data (source-dev threshold); "
        "target-dev also selects and thresholds on the target dev split (its videos are the "
        "'extra' labels); zero-shot: the teacher, source-dev threshold."
    )
    metric = st.radio("Metric", list(experiment.METRICS), horizontal=True, key="exp-metric")
    st.plotly_chart(experiment_figure(summary, metric), key="exp-figure")
    methods = sorted(df["method"].unique())
    default = methods.index("finetune") if "finetune" in methods else 0
    baseline = st.selectbox("Baseline for paired differences", methods, index=default)
    pairs = experiment.paired_differences(df, baseline)
    st.dataframe(sweep.paired_table(pairs), hide_index=True, key="exp-pairs")


experiment_page()
