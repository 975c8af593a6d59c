"""Plotly figures and display tables shared by the dashboard pages and the HTML report.

Each builder takes plain frames or dicts read from run folders (see docs/run-folder.md) and returns
a ``plotly.graph_objects.Figure`` (or a ``DataFrame`` ready to show), so a page and the report draw
the very same picture. No Streamlit here. The spoof class is the positive class throughout: a
sample is called spoof iff its score >= threshold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from scipy.special import (
    ndtri,  # the normal quantile (= scipy.stats.norm.ppf, 10x faster to import)
)

from fascore import metrics
from fascore.eval.compare import METRICS

#: One fixed colour per model role, so teacher and student look the same on every figure.
MODEL_COLORS = {"teacher": "#1f77b4", "student": "#d62728"}
PALETTE = px.colors.qualitative.Set2
HOVER = ["sample", "path", "domain", "label", "attack", "model"]
#: DET axes run on the probit scale (bob.pad / ISO 19795); these are the tick positions.
DET_TICKS = (0.001, 0.01, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8)
DET_RANGE = (0.0005, 0.95)
LAYOUT = dict(template="plotly_white", margin=dict(l=50, r=20, t=50, b=40), height=420)


def _color(name: str, i: int) -> str:
    return MODEL_COLORS.get(name, PALETTE[i % len(PALETTE)])


def _finish(fig: go.Figure, title: str, **layout: object) -> go.Figure:
    fig.update_layout(title=title, **{**LAYOUT, **layout})
    return fig


def roc_figure(sets: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str = "ROC") -> go.Figure:
    """ROC curves overlaid, one per model: ``sets[name] = (y (N,) 1 = spoof, score (N,))``.

    Spoof is the positive class, so FPR = lives called spoof (BPCER) and TPR = attacks detected
    (1 - APCER pooled over species); the legend carries each curve's AUC.
    """
    fig = go.Figure()
    for i, (name, (y, score)) in enumerate(sets.items()):
        fpr, tpr, _ = metrics.roc_points(y, score)
        auc = metrics.auc(y, score)
        fig.add_trace(
            go.Scatter(
                x=fpr,
                y=tpr,
                mode="lines",
                name=f"{name} (AUC {auc:.3f})",
                line=dict(color=_color(name, i), width=2),
            )
        )
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="chance",
            line=dict(color="#999", dash="dot", width=1),
            hoverinfo="skip",
        )
    )
    return _finish(
        fig,
        title,
        xaxis=dict(title="BPCER (live called spoof)", range=[0, 1]),
        yaxis=dict(title="1 − APCER (attacks detected)", range=[0, 1.01]),
    )


def det_figure(sets: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str = "DET") -> go.Figure:
    """DET curves (APCER against BPCER on probit axes, as bob.pad draws them), one per model."""
    fig = go.Figure()
    for i, (name, (y, score)) in enumerate(sets.items()):
        apcer, bpcer = metrics.det_points(y, score)
        x, yy = _probit(bpcer), _probit(apcer)
        fig.add_trace(
            go.Scatter(
                x=x,
                y=yy,
                mode="lines",
                name=name,
                line=dict(color=_color(name, i), width=2),
                customdata=np.stack([bpcer, apcer], axis=1),
                hovertemplate="BPCER %{customdata[0]:.3f}<br>APCER %{customdata[1]:.3f}",
            )
        )
    ticks = dict(
        tickvals=_probit(np.array(DET_TICKS)),
        ticktext=[f"{t:g}" for t in DET_TICKS],
        range=list(_probit(np.array(DET_RANGE))),
    )
    return _finish(
        fig,
        title,
        xaxis=dict(title="BPCER (live called spoof)", **ticks),
        yaxis=dict(title="APCER (attacks called live)", **ticks),
    )


def _probit(p: np.ndarray) -> np.ndarray:
    """Normal deviate of a rate, clipped to the DET axes so that 0 and 1 stay on the plot."""
    return ndtri(np.clip(np.asarray(p, dtype=float), DET_RANGE[0], DET_RANGE[1]))


def score_histogram(
    frames: Mapping[str, pd.DataFrame],
    by: str = "label",
    thresholds: Mapping[str, float] | None = None,
    title: str | None = None,
) -> go.Figure:
    """Score distributions per model (one panel each), coloured by ``by`` (label, attack, domain).

    ``frames[name]`` is a scores table (columns ``score`` and ``by``); each panel carries its
    model's decision threshold as a dashed line. Densities, so small groups stay visible.
    """
    df = pd.concat([f.assign(model=name) for name, f in frames.items()], ignore_index=True)
    fig = px.histogram(
        df,
        x="score",
        color=by,
        facet_col="model",
        barmode="overlay",
        opacity=0.6,
        histnorm="probability density",
        nbins=30,
        range_x=[0, 1],
        color_discrete_sequence=PALETTE,
        category_orders={"model": list(frames)},
    )
    for i, name in enumerate(frames):
        if thresholds and name in thresholds:
            fig.add_vline(x=thresholds[name], line_dash="dash", line_color="#333", col=i + 1)
    fig.for_each_annotation(lambda a: a.update(text=a.text.replace("model=", "")))
    fig.update_xaxes(title="spoof score")
    fig.update_yaxes(rangemode="tozero")
    note = " (dashed: each model's threshold)" if thresholds else ""
    return _finish(fig, (title or f"Score distributions by {by}") + note)


def error_rate_figure(sweep: pd.DataFrame, threshold: float | None = None) -> go.Figure:
    """APCER and BPCER against the threshold, per model: ``sweep`` has columns
    ``model, threshold, apcer, bpcer`` (see ``fascore.eval.compare.error_rate_sweep``)."""
    fig = go.Figure()
    for i, (name, part) in enumerate(sweep.groupby("model", sort=False)):
        color = _color(str(name), i)
        for rate, dash in (("apcer", "solid"), ("bpcer", "dot")):
            fig.add_trace(
                go.Scatter(
                    x=part["threshold"],
                    y=part[rate],
                    mode="lines",
                    name=f"{name} {rate.upper()}",
                    line=dict(color=color, dash=dash, width=2),
                )
            )
    if threshold is not None:
        fig.add_vline(x=threshold, line_dash="dash", line_color="#333")
    return _finish(
        fig,
        "APCER and BPCER as the threshold moves",
        xaxis=dict(title="threshold on the spoof score", range=[0, 1]),
        yaxis=dict(title="error rate", range=[0, 1.01]),
    )


def umap_figure(projection: pd.DataFrame, color: str = "domain", title: str = "UMAP") -> go.Figure:
    """A 2-D embedding scatter (one view of ``projection.parquet``), coloured by ``color``
    (domain, label, attack or model); source and target differ by marker, hover names the
    sample and its image path."""
    df = projection.copy()
    fig = px.scatter(
        df,
        x="x",
        y="y",
        color=color,
        symbol="role" if "role" in df else None,
        hover_data=[c for c in HOVER if c in df and c != color],
        render_mode="webgl",
        color_discrete_sequence=PALETTE,
        color_discrete_map=_color_map(color),
        category_orders={color: sorted(df[color].astype(str).unique())},
    )
    fig.update_traces(marker=dict(size=6, opacity=0.8))
    fig.update_xaxes(title="UMAP 1", showticklabels=False)
    fig.update_yaxes(title="UMAP 2", showticklabels=False)
    return _finish(fig, title, legend=dict(title=color))


def _color_map(color: str) -> dict[str, str]:
    return dict(MODEL_COLORS) if color == "model" else {}


def umap_animation(
    epoch_projection: pd.DataFrame, color: str = "domain", title: str = "UMAP by epoch"
) -> go.Figure:
    """The per-epoch projections as plotly animation frames (a slider and a play button), on
    fixed axes so that points visibly move as source and target come together."""
    df = epoch_projection.sort_values(["epoch", "sample"]).copy()
    pad = lambda s: [s.min() - 0.05 * np.ptp(s), s.max() + 0.05 * np.ptp(s)]  # noqa: E731
    fig = px.scatter(
        df,
        x="x",
        y="y",
        color=color,
        animation_frame="epoch",
        animation_group="sample" if "sample" in df else None,
        hover_data=[c for c in HOVER if c in df and c != color],
        color_discrete_sequence=PALETTE,
        color_discrete_map=_color_map(color),
        category_orders={color: sorted(df[color].astype(str).unique())},
        range_x=pad(df["x"]),
        range_y=pad(df["y"]),
    )
    fig.update_traces(marker=dict(size=6, opacity=0.8))
    fig.update_xaxes(title="UMAP 1", showticklabels=False)
    fig.update_yaxes(title="UMAP 2", showticklabels=False)
    return _finish(fig, title, height=480, legend=dict(title=color))


def series_figure(
    df: pd.DataFrame, x: str, ys: Sequence[str], title: str, ytitle: str = ""
) -> go.Figure:
    """Lines of ``df[y]`` against ``df[x]`` (MMD² per epoch, training curves), markers at points."""
    fig = go.Figure()
    for i, y in enumerate(ys):
        if y in df:
            fig.add_trace(
                go.Scatter(
                    x=df[x],
                    y=df[y],
                    mode="lines+markers",
                    name=y,
                    line=dict(color=PALETTE[i % len(PALETTE)], width=2),
                )
            )
    xaxis = dict(title=x, dtick=1) if x == "epoch" else dict(title=x)
    return _finish(fig, title, xaxis=xaxis, yaxis=dict(title=ytitle), height=340)


# -- tables shared by the pages and the report ------------------------------------------------
def fmt_ci(value: float | None, ci: Sequence[float] | None = None) -> str:
    """``0.125 [0.050, 0.200]``; an em dash for a missing or NaN value."""
    if value is None or not np.isfinite(value):
        return "—"
    if ci is None or len(ci) != 2 or not all(np.isfinite(c) for c in ci):
        return f"{value:.3f}"
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def budget_text(final: dict | None) -> str:
    """What a run's headline numbers cost in target labels, from final.json, e.g.
    ``few-shot: 10 labelled target videos (60 images) for training, none extra``."""
    final = final or {}
    budget = final.get("label_budget")
    if not budget:
        return "label budget not recorded (a run from before label budgets)"
    train, extra = budget.get("train") or {}, budget.get("extra") or {}
    text = (
        f"{final.get('regime', '?')}: {train.get('videos', 0)} labelled target videos "
        f"({train.get('images', 0)} images) for training, "
    )
    if extra.get("videos"):
        return text + f"uses {extra['videos']} extra target labels (videos) for selection/threshold"
    return text + "none extra"


def metrics_table(finals: dict[str, dict]) -> pd.DataFrame:
    """One row per run: each compared metric with its 95 % interval, the threshold and counts.

    ``finals[name]`` is a ``fascore.metrics.evaluate`` block (e.g. final.json's target_test).
    """
    rows = []
    for name, block in finals.items():
        row = {"run": name}
        for key, label in METRICS:
            row[label] = fmt_ci(block.get(key), block.get(f"{key}_ci"))
        row["threshold (dev EER)"] = fmt_ci(block.get("threshold"))
        row["live / attack units"] = f"{block.get('n_live', '?')} / {block.get('n_attack', '?')}"
        rows.append(row)
    return pd.DataFrame(rows)


def mmd_table(alignment: dict | None) -> pd.DataFrame:
    """The alignment statistics as rows ``view, class, MMD², p-value, n source, n target, proxy
    A-distance`` (class "all" is the whole view; its per-class rows follow it)."""
    rows = []
    for view, stats in ((alignment or {}).get("views") or {}).items():
        rows.append(_mmd_row(view, "all", stats))
        for cls, sub in (stats.get("per_class") or {}).items():
            rows.append(_mmd_row(view, cls, sub))
    return pd.DataFrame(rows, columns=list(MMD_COLUMNS.values()))


#: alignment.json key -> column of ``mmd_table``
MMD_COLUMNS = {
    "view": "view",
    "class": "class",
    "mmd2": "MMD²",
    "p_value": "p-value",
    "n_source": "n source",
    "n_target": "n target",
    "proxy_a_distance": "proxy A-distance",
}


def _mmd_row(view: str, cls: str, stats: dict) -> dict:
    row = {MMD_COLUMNS[k]: stats.get(k) for k in list(MMD_COLUMNS)[2:]}
    return {"view": view, "class": cls, **row}


def mmd_epochs(alignment: dict | None) -> tuple[pd.DataFrame, list[str]]:
    """MMD² per epoch: a frame with an ``epoch`` column and the series to plot (one per view,
    else the headline ``mmd2``)."""
    per_epoch = (alignment or {}).get("per_epoch") or []
    if not per_epoch:
        return pd.DataFrame(columns=["epoch"]), []
    df = pd.json_normalize(per_epoch)
    views = [v for v in ("shift", "aligned", "student") if v in df]
    return df, views or [c for c in df.columns if c != "epoch"]


def sampling_line(alignment: dict | None) -> str:
    """How the embedded samples were drawn (n, seed, method) for the statistics and per epoch,
    and the MMD kernel's bandwidth rule."""
    parts = []
    for key, what in (("sampling", "statistics and maps"), ("epoch_sampling", "per epoch")):
        s = (alignment or {}).get(key) or {}
        if s:
            items = ", ".join(
                f"{k.replace('_', ' ')} {_plain(v)}" for k, v in s.items() if k != "kernel"
            )
            parts.append(f"{what}: {items}")
    rule = ((alignment or {}).get("kernel") or {}).get("rule")
    if rule:
        parts.append(f"kernel: {rule}")
    return "; ".join(parts) or "not recorded"


def _plain(value: object) -> str:
    return "/".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def delta_table(deltas: pd.DataFrame) -> pd.DataFrame:
    """``Comparison.deltas`` formatted for reading: each value with its interval."""
    a, b = [c for c in deltas.columns[2:4]]
    return pd.DataFrame(
        {
            "metric": deltas["label"],
            a: [fmt_ci(v, ci) for v, ci in zip(deltas[a], deltas[f"{a}_ci"], strict=True)],
            b: [fmt_ci(v, ci) for v, ci in zip(deltas[b], deltas[f"{b}_ci"], strict=True)],
            "delta (second − first)": [
                fmt_ci(d, (lo, hi))
                for d, lo, hi in zip(
                    deltas["delta"], deltas["delta_lo"], deltas["delta_hi"], strict=True
                )
            ],
        }
    )
