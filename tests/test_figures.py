"""Figure and table builders: the right traces, built from the right numbers."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from scipy.stats import norm

from fascore import metrics
from fascore.share import figures

RNG = np.random.default_rng(0)
Y = np.r_[np.zeros(20), np.ones(20)].astype(int)
SETS = {"teacher": (Y, RNG.random(40)), "student": (Y, 0.6 * Y + 0.4 * RNG.random(40))}


def _scores(n: int = 40) -> pd.DataFrame:
    y = np.arange(n) % 2
    return pd.DataFrame(
        {
            "score": np.clip(0.3 + 0.4 * y + RNG.normal(0, 0.1, n), 0, 1),
            "label": np.where(y, "spoof", "live"),
            "attack": np.where(y, np.where(np.arange(n) % 4 == 1, "print", "replay"), "none"),
            "domain": np.where(np.arange(n) < n // 2, "studio", "phone"),
        }
    )


def test_roc_overlays_one_curve_per_model_from_the_metrics_module():
    fig = figures.roc_figure(SETS)
    assert isinstance(fig, go.Figure)
    assert [t.name.split(" (")[0] for t in fig.data] == ["teacher", "student", "chance"]
    fpr, tpr, _ = metrics.roc_points(*SETS["student"])
    np.testing.assert_allclose(fig.data[1].x, fpr)
    np.testing.assert_allclose(fig.data[1].y, tpr)
    assert "AUC 1.000" in fig.data[1].name  # the student's scores separate perfectly
    assert fig.data[0].line.color == figures.MODEL_COLORS["teacher"]


def test_det_draws_apcer_against_bpcer_on_probit_axes():
    fig = figures.det_figure(SETS)
    assert len(fig.data) == 2
    apcer, bpcer = metrics.det_points(*SETS["teacher"])
    lo, hi = figures.DET_RANGE
    np.testing.assert_allclose(fig.data[0].x, norm.ppf(np.clip(bpcer, lo, hi)))
    np.testing.assert_allclose(fig.data[0].y, norm.ppf(np.clip(apcer, lo, hi)))
    assert list(fig.layout.xaxis.ticktext)[:2] == ["0.001", "0.01"]


@pytest.mark.parametrize("by, groups", [("label", 2), ("attack", 3), ("domain", 2)])
def test_score_histogram_has_one_panel_per_model_and_their_thresholds(by, groups):
    frames = {"teacher": _scores(), "student": _scores()}
    fig = figures.score_histogram(frames, by, {"teacher": 0.4, "student": 0.6})
    assert len(fig.data) == 2 * groups  # one histogram per group and model panel
    assert {t.xaxis for t in fig.data} == {"x", "x2"}
    assert sorted(s.x0 for s in fig.layout.shapes) == [0.4, 0.6]
    assert "threshold" in fig.layout.title.text


def test_error_rate_figure_draws_apcer_and_bpcer_per_model_and_the_threshold():
    sweep = pd.DataFrame(
        {
            "model": ["a"] * 3 + ["b"] * 3,
            "threshold": [0, 0.5, 1] * 2,
            "apcer": [0, 0.2, 1] * 2,
            "bpcer": [1, 0.1, 0] * 2,
        }
    )
    fig = figures.error_rate_figure(sweep, threshold=0.5)
    assert [t.name for t in fig.data] == ["a APCER", "a BPCER", "b APCER", "b BPCER"]
    assert fig.layout.shapes[0].x0 == 0.5


def _projection(epochs: int | None = None) -> pd.DataFrame:
    n = 30
    df = pd.DataFrame(
        {
            "view": "aligned",
            "x": RNG.normal(size=n),
            "y": RNG.normal(size=n),
            "sample": np.arange(n),
            "model": np.where(np.arange(n) < 15, "teacher", "student"),
            "role": np.where(np.arange(n) < 15, "source", "target"),
            "domain": np.where(np.arange(n) < 15, "studio", "phone"),
            "label": np.where(np.arange(n) % 2, "spoof", "live"),
            "attack": "none",
            "path": [f"/data/img{i}.png" for i in range(n)],
        }
    )
    if epochs is None:
        return df
    return pd.concat([df.assign(epoch=e, x=df["x"] * e) for e in range(1, epochs + 1)])


def test_umap_figure_colours_by_the_choice_and_hovers_sample_and_path():
    fig = figures.umap_figure(_projection(), "label")
    assert {t.name.split(",")[0] for t in fig.data} == {"live", "spoof"}
    assert "path" in fig.data[0].hovertemplate and "sample" in fig.data[0].hovertemplate
    by_model = figures.umap_figure(_projection(), "model")
    colors = {t.name.split(",")[0]: t.marker.color for t in by_model.data}
    assert colors == figures.MODEL_COLORS


def test_umap_animation_has_one_frame_per_epoch_on_fixed_axes():
    df = _projection(epochs=3)
    fig = figures.umap_animation(df, "domain")
    assert [f.name for f in fig.frames] == ["1", "2", "3"]
    lo, hi = fig.layout.xaxis.range
    assert lo <= df["x"].min() and hi >= df["x"].max()  # every epoch fits the fixed range


def test_series_figure_skips_missing_columns_and_counts_epochs_in_steps_of_one():
    df = pd.DataFrame({"epoch": [1, 2, 3], "aligned": [0.3, 0.2, 0.1]})
    fig = figures.series_figure(df, "epoch", ["aligned", "absent"], "MMD²")
    assert [t.name for t in fig.data] == ["aligned"]
    assert fig.layout.xaxis.dtick == 1


def test_fmt_ci_formats_values_intervals_and_missing_numbers():
    assert figures.fmt_ci(0.125, [0.05, 0.2]) == "0.125 [0.050, 0.200]"
    assert figures.fmt_ci(0.125) == "0.125"
    assert figures.fmt_ci(0.125, [float("nan"), 0.2]) == "0.125"
    assert figures.fmt_ci(None) == figures.fmt_ci(float("nan")) == "—"


ALIGNMENT = {
    "views": {
        "shift": {
            "mmd2": 0.2, "p_value": 0.005, "n_source": 40, "n_target": 30,
            "proxy_a_distance": 1.6,
            "per_class": {"live": {"mmd2": 0.1, "p_value": 0.02, "n_source": 20, "n_target": 15}},
        },
    },
    "sampling": {"n_per_side": 1000, "seed": 0, "splits": ["dev", "test"]},
    "per_epoch": [{"epoch": 1, "mmd2": 0.3, "shift": 0.3}, {"epoch": 2, "mmd2": 0.2, "shift": 0.2}],
    "epoch_sampling": {"n_source": 64, "seed": 0},
}  # fmt: skip


def test_mmd_tables_read_the_alignment_document():
    table = figures.mmd_table(ALIGNMENT)
    assert table[["view", "class"]].values.tolist() == [["shift", "all"], ["shift", "live"]]
    assert table.loc[0, "p-value"] == 0.005 and table.loc[0, "proxy A-distance"] == 1.6
    assert table.loc[1, "n target"] == 15
    assert figures.mmd_table(None).empty
    epochs, series = figures.mmd_epochs(ALIGNMENT)
    assert series == ["shift"] and epochs["shift"].tolist() == [0.3, 0.2]
    assert figures.mmd_epochs({})[1] == []
    line = figures.sampling_line(ALIGNMENT)
    assert "n per side 1000" in line and "splits dev/test" in line and "per epoch" in line


def test_metrics_table_puts_each_metric_with_its_interval():
    block = {"hter": 0.1, "hter_ci": [0.05, 0.2], "auc": 0.9, "threshold": 0.42, "n_live": 4}
    table = figures.metrics_table({"student": block})
    assert table.loc[0, "HTER (non-ISO)"] == "0.100 [0.050, 0.200]"
    assert table.loc[0, "APCER (max over species)"] == "—"
    assert table.loc[0, "threshold (dev EER)"] == "0.420"


def test_svg_map_draws_one_marker_per_row_with_its_sample_in_the_tooltip():
    from fascore.share.svgmap import svg_map

    df = pd.DataFrame(
        {
            "x": [0.0, 1.0, 2.0, 3.0],
            "y": [3.0, 2.0, 1.0, 1.0],
            "sample": [7, 8, 9, 10],
            "role": ["source", "source", "target", "target"],
            "domain": ["studio", "studio", "phone", "phone"],
            "path": ["a.png", "b.png", "c<d>.png", "e.png"],
        }
    )
    svg = svg_map(df, "domain", "title & more")
    groups = re.findall(r'<g class="pts" fill="([^"]+)"[^>]*>(.*?)</g>', svg)
    assert sum(g.count("<title>") for _, g in groups) == len(df)
    # colours as figures.umap_figure gives them: PALETTE in sorted category order
    assert [fill for fill, _ in groups] == [figures.PALETTE[0], figures.PALETTE[1]]
    assert groups[0][1].count("<path d=") == 2  # phone = target = diamonds (roles sorted)
    assert groups[1][1].count("<circle") == 2  # studio = source = circles
    assert "sample 9 · phone · c&lt;d&gt;.png" in svg and "title &amp; more" in svg
