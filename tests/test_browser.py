"""Every dashboard page in a real browser: Debian's chromium driven by playwright against a real
``streamlit run`` server on a fake run store. Screenshots go to $FASCORE_SCREENSHOTS (or tmp)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.fakes import make_fake_store

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
#: (sidebar link, URL path, the page's title) for every page of dashboard/app.py.
PAGES = [
    ("Overview", "", "Runs"),
    ("Train", "train", "Train"),
    ("Experiment", "experiment", "Experiment"),
    ("Compare", "compare", "Compare teacher and student"),
    ("Alignment", "alignment", "Domain alignment"),
    ("Grad-CAM", "gradcam", "Grad-CAM on spoof decisions"),
    ("Report", "report", "Share a report"),
]


#: The script finished and every element is painted (no loading skeleton, images loaded).
IDLE = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    return app && app.dataset.testScriptState === "notRunning"
        && !document.querySelector('[data-testid="stSkeleton"]')
        && [...document.images].every((img) => img.complete);
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"streamlit did not answer {url}/_stcore/health within {timeout:.0f} s")


@contextlib.contextmanager
def dashboard_server(store: Path, log_dir: Path):
    """``streamlit run dashboard/app.py`` on a free loopback port over run store ``store``,
    as a user starts it; yields its URL and stops its process group afterwards. Skips (with the
    reason) where Debian's chromium or playwright is missing."""
    if not Path(CHROMIUM).exists() or not shutil.which("chromium"):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
    port = _free_port()
    env = {**os.environ, "FASCORE_RUNS_DIR": str(store), "FASCORE_SHARE": ""}
    cmd = [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.port",
           str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
           "--browser.gatherUsageStats", "false"]  # fmt: skip
    with open(log_dir / "streamlit.log", "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
        try:
            _wait_healthy(f"http://127.0.0.1:{port}", proc)
            yield f"http://127.0.0.1:{port}"
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@contextlib.contextmanager
def chromium():
    """Debian's chromium driven by playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright  # lazy: only browser tests need playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    store = tmp_path_factory.mktemp("browser") / "runs"
    runs = make_fake_store(store, n_students=3, weights=True)  # weights: Grad-CAM renders
    with dashboard_server(store, tmp_path_factory.mktemp("browser-log")) as url:
        yield url, runs


@pytest.fixture(scope="module")
def browser(server):
    with chromium() as b:
        yield b


def _screens(tmp_path: Path) -> Path:
    out = Path(os.environ.get("FASCORE_SCREENSHOTS") or tmp_path / "screens")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _check(page, title: str, shot: Path) -> None:
    """The page's title is visible, it finished running, and no exception box is shown."""
    page.get_by_role("heading", name=title, level=1).wait_for(state="visible", timeout=30_000)
    page.wait_for_function(IDLE, timeout=30_000)
    page.screenshot(path=str(shot), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0, f"exception on {title}"
    assert "Traceback" not in page.inner_text("body"), f"traceback on {title}"


def test_every_page_renders_through_the_sidebar(server, browser, tmp_path):
    url, _ = server
    screens = _screens(tmp_path)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    for link, path, title in PAGES:
        page.get_by_test_id("stSidebarNav").get_by_role("link", name=link).click()
        page.wait_for_url(f"{url}/{path}**", timeout=15_000)
        _check(page, title, screens / f"{path or 'overview'}.png")
    page.close()


def test_a_deep_link_opens_the_exact_run(server, browser, tmp_path):
    url, runs = server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/train?run={runs[0].id}")
    _check(page, "Train", _screens(tmp_path) / "train-deep-link.png")
    picked = page.get_by_role("combobox", name="Run").input_value()
    assert picked.startswith(f"{runs[0].id} · source_only") and f"run={runs[0].id}" in page.url
    page.close()


#: Widths of the Overview table: its scrolling box against the grid it holds (glide-data-grid).
TABLE_WIDTHS = """() => [...document.querySelectorAll('[data-testid="stDataFrame"] .dvn-scroller')]
    .map((el) => [el.scrollWidth, el.clientWidth])"""


def test_the_overview_table_fits_1440_px(server, browser, tmp_path):
    """Every column, the run id (the Compare link) included, is visible without scrolling at
    1440x900 (issue 21, item 10)."""
    url, _ = server
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(url)
    _check(page, "Runs", _screens(tmp_path) / "overview-1440.png")
    widths = page.evaluate(TABLE_WIDTHS)
    assert widths and all(scroll <= client + 1 for scroll, client in widths), widths
    page.close()
