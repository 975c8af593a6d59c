"""Overview: every run and experiment with its state, protocol and key metrics."""

import pandas as pd
import streamlit as st

from dashboard import ui
from fascore.jobs import control as jobs
from fascore.jobs import watch

REFRESH_S = 3
#: The headline regime's columns, then the target-dev regime's: each HTER beside the label
#: budget it used (issue 21, item 2). Seven numbers and four texts fit 1440 px (item 10).
COLUMNS = {
    "run": st.column_config.LinkColumn(
        "run (opens Compare)", display_text=r"compare\?run=(.*)", help="compare with its teacher"
    ),
    "state": st.column_config.TextColumn("state"),
    "protocol": st.column_config.TextColumn("protocol", help="source → target, k shots"),
    "regime": st.column_config.TextColumn(
        "regime", help="headline regime: few-shot uses only the k shots; zero-shot none"
    ),
    "hter": st.column_config.NumberColumn(
        "HTER %", format="%.1f", help="target test, headline regime (its threshold: see caption)"
    ),
    "auc": st.column_config.NumberColumn("AUC %", format="%.1f", help="target test"),
    "acer": st.column_config.NumberColumn("ACER %", format="%.1f", help="headline regime"),
    "labels": st.column_config.NumberColumn(
        "labels", format="%d", help="labelled target videos the headline regime used"
    ),
    "hter_dev": st.column_config.NumberColumn(
        "HTER % t-dev",
        format="%.1f",
        help="target-dev regime: selected and thresholded on target dev",
    ),
    "labels_dev": st.column_config.NumberColumn(
        "labels t-dev", format="%d", help="labelled target videos the target-dev regime used"
    ),
}
#: a regime's recorded ``threshold_from`` -> where its threshold comes from, in words
THRESHOLD_FROM = {
    "source_dev": "the source dev split",
    "target_dev": "the target dev split",
    "shots": "the k shots",
    "fixed": "a fixed 0.5",
    "oracle": "the test split itself (optimistic)",
}


def _state(group: pd.DataFrame) -> pd.Series:
    badges = group["state"].combine(group.get("problem", ""), ui.state_badge)
    running = (group["state"] == "running") & group["progress"].notna()
    pct = pd.to_numeric(group["progress"], errors="coerce").mul(100).round()
    return badges.where(~running, badges + " " + pct.astype("Int64").astype(str) + " %")


def _rows(group: pd.DataFrame) -> pd.DataFrame:
    shots = group["shots"].map(lambda k: "all" if k is None or k != k else int(k))
    percent = lambda key: pd.to_numeric(group[key], errors="coerce") * 100  # noqa: E731
    return pd.DataFrame(
        {
            "run": "compare?run=" + group["run"],
            "state": _state(group),
            "protocol": group["source"] + " → " + group["target"] + ", k=" + shots.astype(str),
            "regime": group["regime"],
            # metrics of unfinished runs are None: numeric NaN shows as an empty cell
            "hter": percent("hter"),
            "auc": percent("auc"),
            "acer": percent("acer"),
            "labels": pd.to_numeric(group["target_labels"], errors="coerce"),
            "hter_dev": percent("hter_target_dev"),
            "labels_dev": pd.to_numeric(group["target_dev_labels"], errors="coerce"),
        }
    )


def _threshold_caption(table: pd.DataFrame) -> str:
    """Where each regime's threshold comes from, as the runs recorded it."""
    rules = sorted({r for r in table.get("threshold_from", pd.Series(dtype=str)) if r})
    headline = " / ".join(THRESHOLD_FROM.get(r, r.replace("_", " ")) for r in rules)
    return (
        "Target test set, in % (each run's scoring level, video by default). HTER, ACER and "
        "labels (labelled target videos used): the headline regime (few-shot or zero-shot), "
        f"threshold from {headline or 'the rule each run records'}; t-dev: the target-dev "
        "regime, epoch and threshold from the target dev split, whose videos its labels include."
    )


def _summary(table: pd.DataFrame) -> None:
    counts = table["state"].value_counts()
    cols = st.columns(4)
    for col, state in zip(cols, ("running", "queued", "done"), strict=False):
        col.metric(ui.state_badge(state), int(counts.get(state, 0)))
    stopped = sum(int(counts.get(s, 0)) for s in jobs.RESUMABLE_STATES)
    cols[3].metric("⚠️ stopped", stopped, help="failed, cancelled or interrupted: resume on Train")


def _stage(epoch: int, epochs: int) -> str:
    """``epoch 3/8``; before the first epoch "starting"; after the last, the analysis."""
    if not epochs:
        return "starting"
    if epoch >= epochs:
        return f"epoch {epoch}/{epochs} done, scoring and analysis"
    return f"epoch {epoch}/{epochs}"


def _progress(group: pd.DataFrame) -> None:
    """Runs done and left of the batch still going (``watch.current_batch``), each running run's
    epoch, and the time left at the pace so far."""
    store = ui.store()
    runs = [store.run(rid) for rid in group["run"]]
    created = group["created"].astype(float)
    batch = watch.current_batch(
        [(r.id, r.state(), r.status(), c) for r, c in zip(runs, created, strict=True)]
    )
    p = watch.group_progress(batch)
    epochs = ", ".join(f"`{rid}` {_stage(e, n)}" for rid, e, n in p.running) or "none yet"
    if p.remaining_s is None:
        eta = "time left: measured once the first epoch ends"
    elif p.per_run_s is not None:
        eta = (
            f"about {ui.duration(p.remaining_s)} left at the pace so far (a finished run took "
            f"{ui.duration(p.per_run_s)} on this machine, analysis included)"
        )
    else:
        eta = (
            f"at least {ui.duration(p.remaining_s)} left at the pace so far "
            f"({ui.duration(p.elapsed_s)} for {p.fraction:.0%} of the epochs; each run's "
            "analysis after its last epoch comes on top)"
        )
    st.progress(p.fraction, text=f"{p.done} of {p.done + p.left} runs done, {p.left} left · {eta}")
    st.caption(f"Running: {epochs}.")


def _active(table: pd.DataFrame) -> frozenset[str]:
    return frozenset(table.loc[table["state"].isin(("queued", "running")), "run"])


def _experiments(table: pd.DataFrame) -> None:
    teacher_first = table.assign(student=table["method"] != "source_only")
    for experiment, group in teacher_first.groupby("experiment", sort=False):
        group = group.sort_values(["student", "created"], kind="stable")
        st.subheader(f"Experiment · {ui.plain(experiment) if experiment else '(none)'}")
        if group["state"].isin(("queued", "running")).any():
            _progress(group)
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
    st.caption(_threshold_caption(table) + (f" Refreshing every {REFRESH_S} s." if active else ""))
    st.fragment(_live, run_every=REFRESH_S if active else None)(active)


overview()
