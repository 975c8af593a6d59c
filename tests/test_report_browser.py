"""The HTML report in a real browser: Debian's chromium (playwright, offline file) draws every
figure and every point of every map. A report of a teacher and six students holds more maps than
chromium's 16 live WebGL contexts, which is how WebGL maps came out blank."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.bench_report import CHROMIUM, launch, open_report
from fascore.share.report import _map_key, teacher_first, write_report
from tests.fakes import make_fake_store

pytestmark = pytest.mark.browser


def _distinct_maps(runs) -> list[int]:
    """Points of each map the report should draw: every view of every run, equal maps once."""
    sizes: dict[str, int] = {}
    for run in teacher_first(runs):
        for _, part in run.read_table("projection").groupby("view", sort=False):
            sizes.setdefault(_map_key(part), len(part))
    return list(sizes.values())


def _coloured_pixels(png: bytes) -> int:
    """Pixels of a screenshot that are clearly coloured (markers; text and frame are grey)."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return int(((rgb.max(axis=2) - rgb.min(axis=2)) > 60).sum())


@pytest.fixture(scope="module")
def opened(tmp_path_factory):
    if not Path(CHROMIUM).exists() or not shutil.which("chromium"):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    folder = tmp_path_factory.mktemp("report-browser")
    runs = make_fake_store(folder / "runs", n_students=6)
    path = write_report(folder / "report.html", runs, n_boot=20)
    shots = Path(os.environ.get("FASCORE_SCREENSHOTS") or folder)
    with sync_api.sync_playwright() as pw:
        browser = launch(pw)
        try:
            result = open_report(browser, path)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(path.resolve().as_uri())
            pixels = [_coloured_pixels(m.screenshot()) for m in page.locator("svg.map").all()]
            page.screenshot(path=str(shots / "report.png"), full_page=True)
        finally:
            browser.close()
    return runs, result, pixels


def test_every_map_draws_every_point(opened):
    runs, result, pixels = opened
    expected = _distinct_maps(runs)
    maps = result["maps"]
    views = sum(r.read_table("projection")["view"].nunique() for r in runs)
    assert views > 16  # more views than chromium has WebGL contexts (equal maps drawn once)
    assert sorted(m["points"] for m in maps) == sorted(expected)
    assert [m["drawn"] for m in maps] == [m["points"] for m in maps]  # each inside its map
    assert len(pixels) == len(maps) and min(pixels) > 200, pixels  # painted, not blank


def test_every_plotly_figure_is_laid_out_without_webgl_or_console_errors(opened):
    _, result, _ = opened
    assert len(result["figures"]) >= 5  # ROC, DET, three score distributions (+ MMD per epoch)
    assert not [f for f in result["figures"] if f["webgl"]]
    assert not result["console"], result["console"]
