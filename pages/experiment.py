"""Experiment: one experiment's runs, mean and 95 % CI over episodes, paired verdicts."""

import pandas as pd
import streamlit as st

from dashboard import ui
from fascore.eval.results import frame, stats, tables
from fascore.eval.results.figure import experiment_figure
from fascore.eval.results.sweep_page import headline_pairs


@st.cache_data(max_entries=8, show_spinner="Reading the experiment's runs…")
def _rows(name: str, stamp: tuple) -> list[dict]:
    table = ui.runs_table()
    rows = []
    for run_id in table.loc[(table["experiment"] == name) & (table["state"] == "done"), "run"]:
        run = ui.store().get(run_id)
        rows += frame.run_rows(run.id, run.config(), ui.read_json(run, "final"))
    return rows


@st.cache_data(max_entries=8)
def _summary(name: str, stamp: tuple) -> pd.DataFrame:
    return stats.summarise(frame.results_frame(_rows(name, stamp)))


@st.cache_data(max_entries=32)
def _pairs(name: str, stamp: tuple, baseline: str) -> pd.DataFrame:
    """Paired tests against one baseline: cached by input, so a click elsewhere reuses them."""
    return tables.paired_table(headline_pairs(frame.results_frame(_rows(name, stamp)), baseline))


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
    stamp = tuple(sorted(group.loc[group["state"] == "done", "run"]))
    st.caption(f"{len(stamp)} of {len(group)} runs done · target test metrics in %, mean "
               "[95 % CI] over episodes (one shot draw per teacher seed and episode)")  # fmt: skip
    summary = _summary(name, stamp)
    if summary.empty:
        ui.empty_state("No finished run in this experiment yet.")
        return
    st.dataframe(tables.side_by_side(summary), hide_index=True, key="exp-table")
    st.caption(
        "few-shot: only the k shots are labelled target data, thresholded at the midpoint of "
        "the shots' class means (or the source dev EER, its own column); target-dev also "
        "selects and thresholds on the target dev split ('extra' labels); the zero-shot "
        "teacher is thresholded on source dev."
    )
    metric = st.radio("Metric", list(frame.METRICS), horizontal=True, key="exp-metric")
    st.plotly_chart(experiment_figure(summary, metric), key="exp-figure")
    students = sorted(m for m in summary["method"].unique() if m != "source_only")
    if not students:
        st.info("Only the zero-shot teacher has finished: paired tests need student runs.")
        return
    default = students.index("finetune") if "finetune" in students else 0
    baseline = st.selectbox("Baseline (name it before looking)", students, index=default)
    st.dataframe(_pairs(name, stamp, baseline), hide_index=True, key="exp-pairs")
    st.caption("Per episode, HTER minus the baseline's; paired t-test, Holm-corrected across "
               "the table. Verdict: better / worse, or no detectable difference.")  # fmt: skip


experiment_page()
