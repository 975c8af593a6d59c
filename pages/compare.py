"""Compare: a teacher and a student on the same target test set, metrics, curves and errors."""

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import ui
from fascore.eval import compare
from fascore.share import figures, numbers
from fascore.share.figures import budget_text
from fascore.share.links import deep_link
from fascore.share.numbers import delta_table_percent
from fascore.store.runs import Run

GALLERY = 12  # disagreement thumbnails shown


def _stamp(run: Run) -> tuple[int, ...]:
    keys = ("config", "final", "scores")
    return tuple(run.file(k).stat().st_mtime_ns if run.has(k) else 0 for k in keys)


@st.cache_data(max_entries=8, show_spinner="Comparing runs (paired bootstrap)…")
def _load(a: str, b: str, stamps: tuple) -> tuple[compare.Comparison, pd.DataFrame]:
    store = ui.store()
    cmp = compare.compare_runs(store.get(a), store.get(b))
    return cmp, cmp.deltas(n_boot=300)


def _pick_runs(done: list[str]) -> tuple[Run, Run] | None:
    left, right = st.columns(2)
    with left:
        student = ui.run_picker("Student (or any finished run)", "cmp_run", runs=done)
    if st.session_state.get("cmp_last") not in (None, student.id):
        st.query_params.pop("teacher", None)  # a new student: default to its own teacher
    st.session_state["cmp_last"] = student.id
    with right:
        teacher = ui.run_picker(
            "Teacher (or the run to compare against)",
            f"cmp_teacher_{student.id}",
            runs=done,
            default=student.config().get("teacher"),
            param="teacher",
        )
    if teacher.id == student.id:
        ui.empty_state("Pick two different runs: a student and its teacher, or two students.")
        return None
    return teacher, student


def _curves(cmp: compare.Comparison, student: Run) -> None:
    sets = {n: (s.y, s.score) for n, s in cmp.sets.items()}
    left, right = st.columns(2)
    left.plotly_chart(figures.roc_figure(sets), key="cmp_roc")
    right.plotly_chart(figures.det_figure(sets), key="cmp_det")


def _distributions(cmp: compare.Comparison, student: Run) -> None:
    by = st.radio("Colour by", ["label", "attack", "domain"], horizontal=True, key="cmp_by")
    frames = cmp.test_scores(all_roles=by == "domain")
    st.plotly_chart(figures.score_histogram(frames, by, cmp.thresholds), key="cmp_hist")


def _threshold(cmp: compare.Comparison, student: Run) -> None:
    start = round(cmp.thresholds[cmp.names[1]], 2)
    t = st.slider("Threshold (spoof iff score ≥ threshold)", 0.0, 1.0, start, 0.01, key="cmp_t")
    rates = compare.rates_at(cmp.sets, t).set_index("model")
    cols = st.columns(len(cmp.names) * 2)
    for i, name in enumerate(cmp.names):
        cols[2 * i].metric(f"{name} APCER", f"{rates.loc[name, 'apcer']:.1%}")
        cols[2 * i + 1].metric(f"{name} BPCER", f"{rates.loc[name, 'bpcer']:.1%}")
    sweep = compare.error_rate_sweep(cmp.sets)
    st.plotly_chart(figures.error_rate_figure(sweep, t), key="cmp_sweep")


def _gallery(cmp: compare.Comparison, student: Run) -> None:
    dis = compare.disagreements(cmp.joined, cmp.thresholds)
    st.caption(
        f"{len(dis)} test images decided differently, each model at its own threshold (its rule "
        "above), frame by frame; under each: the scores and which model is right."
    )
    a, b = cmp.names
    cols = st.columns(6)
    for i, row in enumerate(dis.head(GALLERY).to_dict("records")):  # names may hold spaces
        with cols[i % 6]:
            if Path(row["path"]).exists():
                st.image(row["path"], width="stretch")
            link = deep_link(st.context.url, "gradcam", run=student.id, sample=row[f"sample_{b}"])
            st.caption(
                f"{row['label']}/{row['attack']}  \n{a} {row[f'score_{a}']:.2f} · "
                f"{b} {row[f'score_{b}']:.2f} · {row['correct']} right  \n[Grad-CAM ↗]({link})"
            )


TABS = {
    "Curves": _curves,
    "Distributions": _distributions,
    "Threshold": _threshold,
    "Disagreements": _gallery,
}


@ui.safe_page
def compare_page() -> None:
    st.title("Compare teacher and student")
    done = ui.runs_table().query("state == 'done'")["run"].tolist()
    if len(done) < 2:
        ui.empty_state("Comparing needs two finished runs. Build the demo on the Overview page.")
        return
    picked = _pick_runs(done)
    if picked is None:
        return
    teacher, student = picked
    cmp, deltas = _load(teacher.id, student.id, (_stamp(teacher), _stamp(student)))
    head = st.empty()  # filled once the open tab is known, so the link reopens it
    st.dataframe(delta_table_percent(deltas), hide_index=True)
    st.caption(
        "HTER is not ISO/IEC 30107-3; APCER is the maximum over PAI species; "
        "the oracle HTER uses the test set's own EER threshold (optimistic)."
    )
    for name, run in zip(cmp.names, cmp.runs, strict=True):
        st.caption(f"Label budget, {name} `{run.id}`: {budget_text(ui.read_json(run, 'final'))}")
    tabs = st.tabs(list(TABS), key="view", bind="query-params")  # ?view=... opens one tab
    view = next((v for v, tab in zip(TABS, tabs, strict=True) if tab.open), None)
    link = deep_link(st.context.url, "compare", run=student.id, teacher=teacher.id, view=view)
    regimes = " · ".join(
        f"{name}: {final.get('regime', '?')} regime, {numbers.threshold_text(final)}"
        for name, final in (
            (n, ui.read_json(r, "final") or {}) for n, r in zip(cmp.names, cmp.runs, strict=True)
        )
    )
    head.caption(
        f"Target test set, {cmp.level} level, {len(cmp.joined)} images · {regimes} · link: {link}"
    )
    for tab, show in zip(tabs, TABS.values(), strict=True):
        if tab.open:  # only the open tab is computed
            with tab:
                show(cmp, student)


compare_page()
