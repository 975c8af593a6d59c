"""Shift debugger: point at the target samples a student gets wrong and see why.

Linked teacher and student maps (box, lasso or click selects the same samples in both), the
selection as a grid worst first, an inspector (frame, both Grad-CAMs, scores against thresholds,
nearest source samples), trajectories over training and where the shift lives. The whole view
lives in the URL.
"""

import numpy as np
import streamlit as st

from dashboard import shift_view as view
from dashboard import ui
from fascore.errors import FascoreError
from fascore.eval.shift import selection as sel
from fascore.eval.shift.data import budget_line
from fascore.share import cases

EMPTY = "(all)"
COLOURS = ("domain", "domain_label", "label", "attack", "student_right", "teacher_right")


def _controls(state: sel.ViewState, data) -> sel.ViewState:
    """Regime, colour, filters and the error filter, each initialised from the link."""
    s = data.samples
    left, mid, right = st.columns([1, 1, 2])
    view.synced("sh_regime", state.regime, data.regimes)
    regime = left.selectbox("Regime", data.regimes, key="sh_regime")
    colours = [*COLOURS, *data.attributes]
    colours = [c for c in dict.fromkeys(colours) if c in s]
    view.synced("sh_color", state.color, colours)
    color = mid.selectbox("Colour by", colours, key="sh_color")
    errs = [EMPTY, *sel.ERROR_FILTERS]
    view.synced("sh_err", state.err, errs)
    err = right.radio("Show", errs, key="sh_err", horizontal=True,
                      format_func=lambda k: sel.ERROR_FILTERS.get(k, "all samples"))  # fmt: skip
    filters = {}
    for col, name in zip(st.columns(len(sel.FILTERS)), sel.FILTERS, strict=True):
        options = sorted(s[name].astype(str).unique())
        view.synced(f"sh_f_{name}", list(state.filters.get(name, ())) or None, options)
        filters[name] = tuple(col.multiselect(name, options, key=f"sh_f_{name}"))
    return state.with_(regime=regime, color=color, err=None if err == EMPTY else err,
                       filters={k: v for k, v in filters.items() if v})  # fmt: skip


def _write_link(state: sel.ViewState, run_id: str) -> None:
    """Put the view in the URL and remember what each widget's link now says, so the next run
    tells a new link (restore it) from the user's own change (keep it)."""
    st.query_params.from_dict(sel.to_params(state, run_id))
    linked = {"sh_regime": state.regime, "sh_color": state.color, "sh_err": state.err}
    linked.update({f"sh_f_{k}": list(state.filters.get(k, ())) or None for k in sel.FILTERS})
    for key, value in linked.items():
        st.session_state[f"_{key}_synced"] = value


def _selected(data, state: sel.ViewState):
    """The rows the view selects (None: none); a selection that cannot apply is dropped."""
    try:
        return sel.selected_mask(data.samples, state)
    except FascoreError as err:
        st.warning(str(err))
        return sel.selected_mask(data.samples, state.with_(selection=None))


def _grid(data, images, rows) -> int | None:
    n = len(rows)
    if n == 0:
        ui.empty_state("The selection holds no sample: draw a box or lasso over points, or clear "
                       "the filters.")  # fmt: skip
        return None
    if n > view.MAX_SELECTED:
        st.warning(f"{n:,} samples selected, more than the {view.MAX_SELECTED:,} worth looking "
                   f"at one by one: the grid shows the {view.GRID_MAX} worst. Narrow it with a "
                   "smaller box, a lasso or the filters.")  # fmt: skip
    st.caption(f"{n:,} samples selected; the {min(n, view.GRID_MAX)} worst shown first "
               f"(wrong at the threshold, furthest on the wrong side).")  # fmt: skip
    return view.grid(sel.worst_first(rows).head(view.GRID_MAX), images, data.models)


def _where(run, data, state) -> sel.ViewState:
    st.subheader("Where the shift lives")
    model = st.radio("Embedding", data.models, horizontal=True, key="sh_rank_model")
    st.dataframe(view.ranking(run, data, model), hide_index=True)
    st.caption("Separation = linear MMD² of source vs target within each value (subjects "
               "relabelled for the null; Bonferroni over attributes).")  # fmt: skip
    judge = data.models[-1]
    table = view.slices(run, data, judge)
    st.markdown(f"**The {judge}'s error rate on the target test split per value** (click a row "
                "to select its samples; 95 % CI resampling subjects)")  # fmt: skip
    event = st.dataframe(table, hide_index=True, on_select="rerun", selection_mode="single-row",
                         key="sh_slices")  # fmt: skip
    rows = event.selection.rows if event else []
    if rows:
        r = table.iloc[rows[0]]
        pick = sel.Selection("slice", slice=(str(r["attribute"]), str(r["value"])))
        if sel.encode_selection(pick) != st.session_state.get("_sh_slice_seen"):
            st.session_state["_sh_slice_seen"] = sel.encode_selection(pick)
            return state.with_(selection=pick, inspect=None)
    return state


@ui.safe_page
def shift_page() -> None:
    st.title("Shift debugger")
    done = ui.runs_table().query("state == 'done'")["run"].tolist()
    if not done:
        ui.empty_state(
            "The Shift debugger needs a finished run. Build the demo on the Overview page."
        )
        return
    run = ui.run_picker("Run (a student shows its teacher beside it)", "sh_run", runs=done)
    state, problems = sel.from_params(st.query_params.to_dict())
    if problems:
        st.warning("This link is partly unreadable: " + "; ".join(problems) + ".")
    data = view.shift_data(run, state.regime)
    state = _controls(state, data)
    if state.regime != data.regime:  # the regime was just changed: judge under the new one
        data = view.shift_data(run, state.regime)
    st.caption("Thresholds: " + budget_line(data))
    if st.button("Clear selection", disabled=state.selection is None):
        state = state.with_(selection=None, inspect=None)
    chosen = _selected(data, state)
    maps = st.columns(len(data.models))
    for col, model in zip(maps, data.models, strict=True):
        with col:
            picked = view.draw_map(data, model, state.color, chosen)
        if picked is not None:
            _write_link(state.with_(selection=picked, inspect=None), run.id)
            st.rerun()
    images = view.thumbnails(run, data)
    rows = data.samples[chosen if chosen is not None else np.zeros(len(data.samples), bool)]
    if chosen is not None and (pressed := _grid(data, images, rows)) is not None:
        state = state.with_(inspect=pressed)
    if state.inspect is not None:
        try:
            view.inspector(run, data, images, state.inspect)
        except FascoreError as err:
            st.warning(str(err))
            state = state.with_(inspect=None)
    can_save = chosen is not None and not ui.share_mode()  # a shared dashboard writes nothing
    if can_save and st.button("Add this selection to the report as a case"):
        cases.add_case(run, sel.to_params(state, run.id), rows["sample"].tolist())
        st.success("Added: the report of this run now shows it as a case.")
    view.over_training(run, data, rows)
    new = _where(run, data, state)
    _write_link(new, run.id)
    if new != state:
        st.rerun()


shift_page()
