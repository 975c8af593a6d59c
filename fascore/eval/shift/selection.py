"""The Shift debugger's view state: filters, a selection (box, lasso, ids or slice) and the URL.

One state, every view reads it (FiftyOne's and TensorBoard's linked views): the maps highlight
the selection, the grid shows it, the inspector opens one of its samples. The state is a handful
of short query parameters, so a link restores the view:

- ``regime``, ``color``; filters ``split``, ``domain``, ``label``, ``attack`` (comma lists) and
  ``err`` (one of ``ERROR_FILTERS``);
- ``sel``: ``box:s:x0,x1,y0,y1`` or ``lasso:t:x,y;x,y;...`` on the student (``s``) or teacher
  (``t``) map, ``ids:3-9.12`` (runs of sample ids) or ``slice:attack=print``;
- ``inspect``: one sample id.

A selection by shape is re-evaluated on the stored coordinates, so the link stays short whatever
the number of points it holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from fascore.errors import FascoreError

FILTERS = ("split", "domain", "label", "attack")
ERROR_FILTERS = {
    "student_wrong": "student wrong",
    "teacher_right_student_wrong": "teacher right, student wrong",
    "teacher_wrong_student_right": "teacher wrong, student right",
}
MAPS = {"t": "teacher", "s": "student"}
MAX_IDS = 2_000  # a longer id list belongs in a box or lasso, not a URL
MAX_VERTICES = 200
_NUMBER = r"-?\d+(?:\.\d+)?(?:e-?\d+)?"


@dataclass(frozen=True)
class Selection:
    """``kind`` box | lasso | ids | slice; ``where`` "t" or "s" (a shape's map); ``points``
    (x, y) vertices (a box: its two corners); ``ids`` sample ids; ``slice`` (column, value)."""

    kind: str
    where: str = "s"
    points: tuple[tuple[float, float], ...] = ()
    ids: tuple[int, ...] = ()
    slice: tuple[str, str] = ("", "")


@dataclass(frozen=True)
class ViewState:
    """Everything the page's URL holds (``to_params`` / ``from_params``)."""

    regime: str | None = None
    color: str = "domain"
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)
    err: str | None = None
    selection: Selection | None = None
    inspect: int | None = None

    def with_(self, **changes) -> ViewState:
        return replace(self, **changes)


def _num(v: float) -> str:
    return f"{v:.6g}"


def compact_ids(ids) -> str:
    """Sorted unique ids as runs: [1, 2, 3, 7] -> ``1-3.7``."""
    ids = np.unique(np.asarray(list(ids), dtype=np.int64))
    if not len(ids):
        return ""
    breaks = np.flatnonzero(np.diff(ids) != 1) + 1
    runs = np.split(ids, breaks)
    return ".".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else f"{r[0]}" for r in runs)


def expand_ids(text: str) -> tuple[int, ...]:
    """Inverse of ``compact_ids``; a FascoreError for anything else or more than ``MAX_IDS``."""
    if not re.fullmatch(r"\d+(-\d+)?(\.\d+(-\d+)?)*", text or ""):
        raise FascoreError(f"the link's selection ids {text[:40]!r} are not a list like 3-9.12")
    out: list[int] = []
    for part in text.split("."):
        a, _, b = part.partition("-")
        lo, hi = int(a), int(b or a)
        if hi < lo or len(out) + hi - lo + 1 > MAX_IDS:
            raise FascoreError(
                f"the link selects more than {MAX_IDS:,} samples by id (or a run reads "
                "backwards); select that many with a box or lasso on a map instead"
            )
        out.extend(range(lo, hi + 1))
    return tuple(out)


def encode_selection(sel: Selection | None) -> str | None:
    """The ``sel`` query parameter of a selection (None for none)."""
    if sel is None:
        return None
    if sel.kind == "ids":
        return "ids:" + compact_ids(sel.ids)
    if sel.kind == "slice":
        return f"slice:{sel.slice[0]}={sel.slice[1]}"
    pts = sel.points
    if sel.kind == "box":
        (x0, y0), (x1, y1) = pts
        return f"box:{sel.where}:" + ",".join(_num(v) for v in (x0, x1, y0, y1))
    return f"lasso:{sel.where}:" + ";".join(f"{_num(x)},{_num(y)}" for x, y in pts)


def decode_selection(text: str | None) -> Selection | None:
    """Inverse of ``encode_selection``; a FascoreError naming what is wrong with ``text``."""
    if not text:
        return None
    kind, _, rest = text.partition(":")
    if kind == "ids":
        return Selection("ids", ids=expand_ids(rest))
    if kind == "slice" and re.fullmatch(r"[^=]{1,64}=[^=]{1,200}", rest):
        col, _, value = rest.partition("=")
        return Selection("slice", slice=(col, value))
    where, _, coords = rest.partition(":")
    if kind == "box" and where in MAPS and re.fullmatch(rf"{_NUMBER}(,{_NUMBER}){{3}}", coords):
        x0, x1, y0, y1 = (float(v) for v in coords.split(","))
        return Selection("box", where, ((x0, y0), (x1, y1)))
    pair = rf"{_NUMBER},{_NUMBER}"
    if kind == "lasso" and where in MAPS and re.fullmatch(rf"{pair}(;{pair}){{2,}}", coords):
        pts = tuple(tuple(float(v) for v in p.split(",")) for p in coords.split(";"))
        if len(pts) <= MAX_VERTICES:
            return Selection("lasso", where, pts)  # type: ignore[arg-type]
    raise FascoreError(
        f"the link's selection {text[:60]!r} is not a box, lasso, id list or slice; "
        "the page shows no selection instead"
    )


def to_params(state: ViewState, run_id: str) -> dict[str, str]:
    """The query parameters of a view (empty parts left out)."""
    params = {"run": run_id, "regime": state.regime, "color": state.color, "err": state.err,
              "sel": encode_selection(state.selection),
              "inspect": None if state.inspect is None else str(state.inspect)}  # fmt: skip
    params.update({k: ",".join(v) for k, v in state.filters.items() if v})
    return {k: v for k, v in params.items() if v}


def from_params(params: dict[str, str]) -> tuple[ViewState, list[str]]:
    """A view from query parameters and the problems found; a bad part is dropped, not fatal."""
    problems, sel, inspect = [], None, None
    try:
        sel = decode_selection(params.get("sel"))
    except FascoreError as err:
        problems.append(str(err))
    raw = params.get("inspect")
    if raw:
        if raw.isdigit():
            inspect = int(raw)
        else:
            problems.append(f"the link's inspected sample {raw[:20]!r} is not a sample id")
    err = params.get("err")
    if err and err not in ERROR_FILTERS:
        problems.append(
            f"the link's error filter {err[:30]!r} is not one of {', '.join(ERROR_FILTERS)}"
        )
        err = None
    filters = {k: tuple(v for v in params[k].split(",") if v) for k in FILTERS if params.get(k)}
    state = ViewState(
        params.get("regime"), params.get("color") or "domain", filters, err, sel, inspect
    )
    return state, problems


def in_polygon(x: np.ndarray, y: np.ndarray, poly) -> np.ndarray:
    """Points (x, y) (N,) inside a polygon [(x, y), ...] (even-odd rule, vectorised ray cast)."""
    px, py = np.asarray(poly, dtype=float).T
    qx, qy = np.roll(px, -1), np.roll(py, -1)
    inside = np.zeros(len(x), dtype=bool)
    for ax, ay, bx, by in zip(px, py, qx, qy, strict=True):
        crosses = (ay > y) != (by > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = ax + (y - ay) * (bx - ax) / (by - ay)
        inside ^= crosses & (x < at)
    return inside


def filter_mask(samples: pd.DataFrame, state: ViewState) -> np.ndarray:
    """Rows (N,) that pass the state's filters."""
    mask = np.ones(len(samples), dtype=bool)
    for col, values in state.filters.items():
        if values and col in samples:
            mask &= samples[col].astype(str).isin(values).to_numpy()
    if state.err:
        t = samples.get("teacher_right", pd.Series(np.nan, index=samples.index))
        s = samples.get("student_right", pd.Series(np.nan, index=samples.index))
        t, s = t.astype("boolean"), s.astype("boolean")
        rule = {
            "student_wrong": s == False,  # noqa: E712 (missing stays missing)
            "teacher_right_student_wrong": (t == True) & (s == False),  # noqa: E712
            "teacher_wrong_student_right": (t == False) & (s == True),  # noqa: E712
        }[state.err]
        mask &= rule.fillna(False).to_numpy(dtype=bool)
    return mask


def selection_mask(samples: pd.DataFrame, sel: Selection | None) -> np.ndarray | None:
    """Rows (N,) inside the selection (None: no selection). A shape on a map the run lacks, or a
    slice on a column it lacks, is a FascoreError."""
    if sel is None:
        return None
    if sel.kind == "ids":
        return samples["sample"].isin(sel.ids).to_numpy()
    if sel.kind == "slice":
        col, value = sel.slice
        if col not in samples:
            raise FascoreError(f"the selected slice names a column {col!r} this run lacks")
        return (samples[col].astype(str) == value).to_numpy()
    cols = (f"{sel.where}x", f"{sel.where}y")
    if cols[0] not in samples:
        raise FascoreError(f"this run has no {MAPS[sel.where]} map to select on")
    x, y = samples[cols[0]].to_numpy(), samples[cols[1]].to_numpy()
    if sel.kind == "box":
        (x0, y0), (x1, y1) = sel.points
        return (x >= min(x0, x1)) & (x <= max(x0, x1)) & (y >= min(y0, y1)) & (y <= max(y0, y1))
    return in_polygon(x, y, sel.points)


def selected_mask(samples: pd.DataFrame, state: ViewState) -> np.ndarray | None:
    """The samples the view selects: those inside the selection that pass the filters (the
    filters alone when nothing is drawn); None when the view selects nothing at all."""
    if state.selection is None and not state.err and not any(state.filters.values()):
        return None
    inside = selection_mask(samples, state.selection)
    passing = filter_mask(samples, state)
    return passing if inside is None else passing & inside


def from_plotly(event: dict, where: str, samples: pd.DataFrame) -> Selection | None:
    """The selection of a plotly selection event (``st.plotly_chart(on_select=...)``): its box
    or lasso shape when it has one, else the clicked points' sample ids (``customdata``)."""
    box, lasso = event.get("box") or [], event.get("lasso") or []
    if box:
        xs, ys = box[-1]["x"], box[-1]["y"]
        return Selection("box", where, ((min(xs), min(ys)), (max(xs), max(ys))))
    if lasso:
        pts = tuple(zip(lasso[-1]["x"], lasso[-1]["y"], strict=True))[:MAX_VERTICES]
        return Selection("lasso", where, pts)
    ids = [int(p["customdata"][0]) for p in event.get("points") or [] if p.get("customdata")]
    return Selection("ids", ids=tuple(sorted(set(ids)))) if ids else None


def worst_first(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows ordered worst first: wrong students first, then by the student's (else the
    teacher's) distance on the wrong side of its threshold, largest first."""
    model = "student" if "student_score" in rows else "teacher"
    score, thr = rows[f"{model}_score"], rows[f"{model}_threshold"]
    margin = (score - thr) * np.where(rows["y"] == 1, -1.0, 1.0)  # > 0 = wrong side
    return rows.assign(_m=margin.fillna(-np.inf)).sort_values("_m", ascending=False,
                                                              kind="stable").drop(columns="_m")  # fmt: skip
