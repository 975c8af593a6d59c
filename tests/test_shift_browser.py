"""The Shift debugger in a real browser (Debian's chromium, playwright) on a fake run store: a
box drawn with the mouse, the URL it leaves, the same grid from that URL in a new page, the
inspector, and one readable message for each kind of bad input."""

from __future__ import annotations

import re
import shutil
from urllib.parse import parse_qs, urlparse

import pytest

from fascore.eval.shift import selection as sel
from fascore.eval.shift.data import load_shift
from fascore.store.runs import Run
from tests.fakes import make_fake_store
from tests.test_browser import IDLE, chromium, dashboard_server

pytestmark = pytest.mark.browser
GRID_MAX = 48  # dashboard.shift_view.GRID_MAX (not imported: it pulls in streamlit)


def _broken_copies(student: Run) -> tuple[str, str]:
    """Two copies of a student run: one without its analysis, one whose images moved."""
    bare = Run(student.path.parent / f"{student.id}-bare")
    shutil.copytree(student.path, bare.path)
    for key in ("embeddings", "embedding_index", "projection"):
        bare.file(key).unlink()
    moved = Run(student.path.parent / f"{student.id}-moved")
    shutil.copytree(student.path, moved.path)
    index = moved.read_table("embedding_index")
    moved.write_table("embedding_index", index.assign(path="/nowhere/" + index["path"]))
    return bare.id, moved.id


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    store = tmp_path_factory.mktemp("shift-browser") / "runs"
    runs = make_fake_store(store, n_students=1, weights=True)
    broken = _broken_copies(runs[1])
    with dashboard_server(store, tmp_path_factory.mktemp("shift-log")) as url:
        yield url, runs, broken


@pytest.fixture(scope="module")
def browser(server):
    with chromium() as b:
        yield b


def _open(browser, url: str):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(url)
    _settle(page)
    return page


def _settle(page) -> None:
    page.get_by_role("heading", name="Shift debugger", level=1).wait_for(timeout=60_000)
    page.wait_for_timeout(300)
    page.wait_for_function(IDLE, timeout=60_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "Traceback" not in page.inner_text("body")


#: per map, the sample ids of its "selected" (outlined) trace
OUTLINED = """() => [...document.querySelectorAll('.js-plotly-plot')].slice(0, 2).map(g => {
    const t = g._fullData.find((t) => t.name === 'selected');
    return t ? Array.from(t.customdata, (c) => Number(c[0])) : [];
})"""


def _grid(page) -> list[int]:
    """Sample ids of the grid's thumbnails, in order."""
    classes = page.locator("[class*='st-key-thumb_']").evaluate_all(
        "els => els.map(e => e.className)"
    )
    return [int(re.search(r"st-key-thumb_(\d+)", c).group(1)) for c in classes]


def _drag_box(page, plot_index: int, frac=(0.2, 0.15, 0.75, 0.85)) -> None:
    """Press, move and release the mouse over a map's plotting area (plotly's box select)."""
    area = page.locator(".js-plotly-plot").nth(plot_index).locator(".nsewdrag").first
    area.scroll_into_view_if_needed()
    bb = area.bounding_box()
    x0, y0 = bb["x"] + bb["width"] * frac[0], bb["y"] + bb["height"] * frac[1]
    x1, y1 = bb["x"] + bb["width"] * frac[2], bb["y"] + bb["height"] * frac[3]
    page.mouse.move(x0, y0)
    page.mouse.down()
    for i in range(1, 13):
        page.mouse.move(x0 + (x1 - x0) * i / 12, y0 + (y1 - y0) * i / 12)
    page.mouse.up()


def _expected(run: Run, url: str) -> list[int]:
    """The grid the URL's selection must give, from the run's stored coordinates."""
    state, problems = sel.from_params({k: v[-1] for k, v in parse_qs(urlparse(url).query).items()})
    assert not problems
    samples = load_shift(run, state.regime).samples
    return (
        sel.worst_first(samples[sel.selected_mask(samples, state)])["sample"]
        .head(GRID_MAX)
        .tolist()
    )


def test_a_box_on_the_student_map_is_the_grid_the_url_and_the_inspector(server, browser):
    url, runs, _ = server
    student = runs[1]
    page = _open(browser, f"{url}/shift?run={student.id}")
    assert page.locator(".js-plotly-plot").count() >= 2  # teacher's and student's maps
    _drag_box(page, 1)
    page.wait_for_url(re.compile(r".*sel=box%3As%3A.*"), timeout=30_000)
    _settle(page)
    box = sel.decode_selection(parse_qs(urlparse(page.url).query)["sel"][0])
    samples = load_shift(student).samples
    (x0, y0), (x1, y1) = box.points
    inside = samples[
        (samples.sx >= x0) & (samples.sx <= x1) & (samples.sy >= y0) & (samples.sy <= y1)
    ]
    assert 0 < len(inside) < len(samples)
    grid = _grid(page)
    assert grid == _expected(student, page.url)
    outlined = page.evaluate(OUTLINED)  # the same samples outlined on both maps
    assert sorted(outlined[0]) == sorted(outlined[1]) == sorted(inside["sample"].tolist())
    if len(inside) <= GRID_MAX:
        assert set(grid) == set(inside["sample"])
    else:
        assert len(grid) == GRID_MAX and set(grid) <= set(inside["sample"])
    link = page.url
    again = _open(browser, link)  # a new page from the link restores the same grid
    assert _grid(again) == grid
    again.close()
    page.locator(f".st-key-thumb_{grid[0]}").get_by_role("button", name="Inspect").click()
    page.wait_for_url(re.compile(rf".*inspect={grid[0]}.*"), timeout=30_000)
    _settle(page)
    page.get_by_text("Nearest source training samples under the student's embedding").wait_for()
    body = page.inner_text("body")
    assert "teacher Grad-CAM" in body and "student Grad-CAM" in body
    assert "Nearest source training samples under the teacher's embedding" in body
    page.close()


def test_clicking_an_error_slice_selects_its_samples(server, browser):
    from fascore.eval.shift.slices import error_slices

    url, runs, _ = server
    student = runs[1]
    page = _open(browser, f"{url}/shift?run={student.id}")
    table = page.locator(".st-key-sh_slices [data-testid='stDataFrame']").first
    table.locator("canvas").first.wait_for(timeout=30_000)
    for attempt in range(3):  # the grid is a canvas: a click before it is painted is lost
        table.evaluate("e => e.scrollIntoView({block: 'center'})")
        page.wait_for_timeout(800)
        box = table.bounding_box()
        page.mouse.click(box["x"] + 16, box["y"] + 35 + 17)  # the first row's selection cell
        try:
            page.wait_for_url(re.compile(r".*sel=slice.*"), timeout=15_000)
            break
        except Exception:  # noqa: BLE001 - playwright's timeout; try the click again
            if attempt == 2:
                raise
    _settle(page)
    data = load_shift(student)
    s = data.samples
    target = s[(s["role"] == "target") & (s["split"] == "test")]
    first = error_slices(target, ~target["student_right"].astype(bool).to_numpy(), data.attributes)
    want = sel.Selection("slice", slice=(first.iloc[0]["attribute"], first.iloc[0]["value"]))
    assert parse_qs(urlparse(page.url).query)["sel"] == [sel.encode_selection(want)]
    assert _grid(page) == _expected(student, page.url) and _grid(page)
    page.close()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("sel=box:s:zz&inspect=abc", "This link is partly unreadable"),
        ("sel=ids:0-49999", "more than 2,000 samples by id"),
        ("sel=box:s:1e6,2e6,1e6,2e6", "The selection holds no sample"),
        ("sel=lasso:q:1,2;3", "not a box, lasso, id list or slice"),
    ],
)
def test_bad_links_get_one_readable_message(server, browser, query, message):
    url, runs, _ = server
    page = _open(browser, f"{url}/shift?run={runs[1].id}&{query}")
    assert message in page.inner_text("body")
    page.close()


@pytest.mark.parametrize("which, message", [(0, "analysis on"), (1, "data set moved")])
def test_a_run_without_analysis_or_images_gets_one_message(server, browser, which, message):
    url, _, broken = server
    page = _open(browser, f"{url}/shift?run={broken[which]}")
    alerts = page.locator('[data-testid="stAlert"]')
    assert message in page.inner_text("body") and alerts.count() >= 1
    page.close()
