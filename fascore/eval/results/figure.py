"""HTER against the number of shots k, a PNG for docs and sweep folders (matplotlib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fascore.eval.results.frame import shots_key
from fascore.eval.results.tables import _summary_cell

PANELS = (("few-shot", "shots", "few-shot (shots threshold)"),
          ("target-dev", "target_dev", "target-dev (extra labels)"))  # fmt: skip


def shots_figure(summary: pd.DataFrame, path: Path) -> None:
    """Target test HTER % (mean, 95 % CI over episodes) against k on a numeric axis (the
    zero-shot teacher at k = 0, ``all`` one step past the largest k), one line per method, one
    panel per regime."""
    import matplotlib  # start-up cost: matplotlib (~1 s), only when a figure is written

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after use("Agg"): no display needed

    panels = [p for p in PANELS if not _summary_cell(summary, p[0], p[1]).empty] or [PANELS[0]]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 3.8), dpi=110,
                             squeeze=False)  # fmt: skip
    finite = [shots_key(k) for k in summary["shots"].unique() if k != "all"]
    top = max(finite, default=0) * 1.5 + 1
    for ax, (regime, rule, title) in zip(axes[0], panels, strict=True):
        sub = _summary_cell(summary, regime, rule)
        for method, rows in sub.groupby("method"):
            rows = rows.assign(x=rows["shots"].map(lambda k: top if k == "all" else float(k)))
            rows = rows.sort_values("x")
            lo = (rows["hter_mean"] - rows["hter_lo"]).fillna(0) * 100
            hi = (rows["hter_hi"] - rows["hter_mean"]).fillna(0) * 100
            ax.errorbar(rows["x"], rows["hter_mean"] * 100, yerr=np.vstack([lo, hi]), marker="o",
                        capsize=3, label=method)  # fmt: skip
        ax.set(title=title, xlabel="labelled target presentations per class (k)",
               ylabel="target test HTER %")  # fmt: skip
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def experiment_figure(summary: pd.DataFrame, metric: str = "hter"):
    """``metric`` in % (mean, 95 % CI over episodes; no bar for one episode) against k on a
    numeric axis, from ``stats.summarise``: one line per method, solid for the few-shot regime
    under the shots threshold, dotted for target-dev; the zero-shot teacher is a point at k = 0
    named as such. Returns a plotly figure."""
    import plotly.graph_objects as go  # start-up cost: plotly (~1 s), only for the page

    fig = go.Figure()
    fig.update_layout(template="plotly_white", height=420, margin={"t": 60})
    if summary.empty:
        return fig.update_layout(title="no finished runs yet")
    finite = [shots_key(k) for k in summary["shots"].unique() if k != "all"]
    top = max(finite, default=0) * 1.5 + 1
    for method in sorted(summary["method"].unique()):
        for regime, rule, dash in (("few-shot", "shots", "solid"),
                                   ("target-dev", "target_dev", "dot")):  # fmt: skip
            rows = _summary_cell(summary[summary["method"] == method], regime, rule)
            if rows.empty:
                continue
            rows = rows.assign(x=rows["shots"].map(lambda k: top if k == "all" else float(k)))
            rows = rows.sort_values("x")
            name = "zero-shot" if (rows["regime"] == "zero-shot").all() else regime
            up = ((rows[f"{metric}_hi"] - rows[f"{metric}_mean"]) * 100).fillna(0)
            down = ((rows[f"{metric}_mean"] - rows[f"{metric}_lo"]) * 100).fillna(0)
            fig.add_trace(go.Scatter(
                x=rows["x"].tolist(), y=(rows[f"{metric}_mean"] * 100).tolist(),
                error_y={"type": "data", "array": up.tolist(), "arrayminus": down.tolist()},
                mode="lines+markers", name=f"{method} · {name}", line={"dash": dash},
            ))  # fmt: skip
    ticks = sorted({float(k) for k in finite})
    return fig.update_layout(
        title=f"target test {metric.upper()} % against k (mean, 95 % CI over episodes)",
        xaxis={"title": "labelled target presentations per class (k)", "type": "linear",
               "tickvals": ticks + ([top] if "all" in set(summary["shots"]) else []),
               "ticktext": [f"{k:g}" for k in ticks] + (["all"] if "all" in set(summary["shots"])
                                                         else [])},
        yaxis={"title": f"{metric.upper()} %"},
    )  # fmt: skip
