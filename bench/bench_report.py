"""Time the HTML report: building it, and opening it in a browser until every figure is drawn.

Build: ``python -m fascore report RUN... --out FILE`` in a fresh process (imports included), the
demo experiment's finished runs, without and with 3 Grad-CAM samples (which load torch), best of
``--repeats``; and ``build_report`` in one warm process (what the Report page pays after its
imports). Open: Debian's chromium (playwright, headless, 1440x900) loads the file offline; the
time runs from navigation start until every plotly figure is laid out, every map has drawn all its
points (counted in the SVG) and every image is decoded. Targets for the demo: build <= 5 s,
open <= 5 s.

    python -m bench.bench_report [--store DIR] [--repeats 3] [--no-write]

The store defaults to $FASCORE_RUNS_DIR (else checkpoints/); it must hold the demo experiment
(``python -m fascore demo``).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEMO_EXPERIMENT = "synthfas-demo"
BUILD_TARGET_S, OPEN_TARGET_S = 5.0, 5.0
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip

#: Falsy until the document is loaded, every plotly figure laid out and every image decoded; then
#: the time since navigation start (ms); per SVG map (``svg.map``) its markers and how many of
#: them have a box inside the map; per plotly figure its title, its SVG points and its WebGL
#: canvases (a WebGL map draws no SVG point, so a blank one counts 0 there).
RENDERED_JS = """() => {
    if (document.readyState !== "complete") return null;
    const divs = [...document.querySelectorAll(".plotly-graph-div")];
    if (!divs.every((d) => d._fullLayout && d.querySelector(".main-svg"))) return null;
    if (![...document.images].every((img) => img.complete && img.naturalWidth > 0)) return null;
    const inside = (b, box) => b.width > 0 && b.height > 0 && b.left >= box.left - 1
        && b.right <= box.right + 1 && b.top >= box.top - 1 && b.bottom <= box.bottom + 1;
    return {
        ms: performance.now(),
        maps: [...document.querySelectorAll("svg.map")].map((svg) => {
            const box = svg.getBoundingClientRect();
            const marks = [...svg.querySelectorAll("g.pts > *")];
            return {
                title: svg.getAttribute("aria-label"),
                points: marks.length,
                drawn: marks.filter((m) => inside(m.getBoundingClientRect(), box)).length,
            };
        }),
        figures: divs.map((d) => ({
            title: (d._fullLayout.title && d._fullLayout.title.text) || "",
            points: d.querySelectorAll(".scatterlayer path.point").length,
            webgl: d.querySelectorAll("canvas").length,
        })),
    };
}"""


def launch(pw):
    """Debian's chromium through playwright (never a downloaded browser)."""
    return pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def open_report(browser, path: Path, timeout_s: float = 120.0) -> dict:
    """Open ``path`` in a fresh 1440x900 page: ``{"seconds", "busy", "maps", "figures",
    "console"}`` (``busy``: the renderer process's CPU time, what the open costs on an idle machine; ``maps`` and ``figures`` as RENDERED_JS gives them; ``console``: the page's warnings
    and errors)."""
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type in ("warning", "error") else 0)
    page.on("pageerror", lambda e: console.append(str(e)))
    try:
        page.goto(path.resolve().as_uri(), wait_until="commit")
        done = page.wait_for_function(RENDERED_JS, polling=50, timeout=timeout_s * 1000)
        result = done.json_value()
        busy = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    finally:
        page.close()
    return {"seconds": result["ms"] / 1000, "busy": busy["ProcessTime"], "console": console,
            **result}  # fmt: skip


def demo_runs(store: Path) -> list[str]:
    """The finished runs of the demo experiment, teacher first."""
    from fascore.store.runs import RunStore

    runs = [r for r in RunStore(store).runs() if r.config().get("experiment") == DEMO_EXPERIMENT]
    done = [r for r in runs if r.state() == "done"]
    if not done:
        sys.exit(f"no finished {DEMO_EXPERIMENT} run in {store}: run `python -m fascore demo`")
    return [r.id for r in sorted(done, key=lambda r: r.config().get("teacher") is not None)]


def time_cli(store: Path, ids: list[str], out: Path, gradcam: int, repeats: int) -> tuple:
    """Best wall time of ``python -m fascore report`` in a fresh process, and its CPU time
    (user + system: what it costs on an idle machine, whatever else shares this one)."""
    cmd = [sys.executable, "-m", "fascore", "report", *ids, "--out", str(out)]
    cmd += ["--gradcam", str(gradcam)] if gradcam else []
    env = {**os.environ, "FASCORE_RUNS_DIR": str(store)}
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        best = min(best, (wall, cpu))
    return best


def time_in_process(store: Path, ids: list[str], repeats: int) -> tuple[float, float]:
    """Best wall and CPU time of ``build_report`` (no Grad-CAM) after a first, discarded call."""
    from fascore.share.report import build_report
    from fascore.store.runs import RunStore

    runs = [RunStore(store).get(i) for i in ids]
    build_report(runs)
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        build_report(runs)
        best = min(best, (time.perf_counter() - t0, time.process_time() - c0))
    return best


def time_open(path: Path, repeats: int) -> tuple[float, float, dict]:
    """Best open time in chromium, the renderer's CPU time then, and the last result."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            results = [open_report(browser, path) for _ in range(repeats)]
        finally:
            browser.close()
    best = min(results, key=lambda r: r["seconds"])
    return best["seconds"], best["busy"], results[-1]


def table(rows: list[tuple[str, float, float, float | None]]) -> str:
    """Markdown rows: what, wall seconds, CPU (or busy) seconds, target and verdict."""
    lines = ["| what | wall (s) | CPU (s) | target | within (wall) |", "|---|---:|---:|---:|---|"]
    for what, wall, cpu, target in rows:
        verdict = ("yes" if wall <= target else "NO") if target else "—"
        lines.append(
            f"| {what} | {wall:.2f} | {cpu:.2f} | {f'≤ {target:.0f}' if target else '—'} | "
            f"{verdict} |"
        )
    return "\n".join(lines)


def _summary(ids: list[str], repeats: int, load: float, sizes: tuple, last: dict) -> str:
    """The paragraph above the table: store, load, sizes and what the browser drew."""
    maps = last["maps"] + [f for f in last["figures"] if "UMAP" in f["title"]]
    drawn = sum(m.get("drawn", m["points"]) for m in maps)
    blank = sum(1 for m in maps if m.get("drawn", m["points"]) == 0)
    return (
        f"Store: {len(ids)} finished runs of the {DEMO_EXPERIMENT} experiment. Best of "
        f"{repeats} each; load average (1 min) {load:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after, on a machine other work shares: wall times grow with "
        "the load; CPU time (user + system, all threads) is close to what an idle machine's "
        "wall time would be. The report is "
        f"{sizes[0]:.1f} MB without Grad-CAMs, {sizes[1]:.1f} MB with; opened, it holds "
        f"{len(last['figures'])} plotly figures "
        f"and {len(maps)} UMAP maps with {drawn} points drawn, {blank} blank; "
        f"console warnings and errors: {len(last['console'])}.\n\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", default=os.environ.get("FASCORE_RUNS_DIR") or "checkpoints")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs alone")
    args = parser.parse_args()
    store = Path(args.store).resolve()
    ids = demo_runs(store)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.html"
        cams = time_cli(store, ids, Path(tmp) / "cams.html", 3, args.repeats)
        cli = time_cli(store, ids, out, 0, args.repeats)
        warm = time_in_process(store, ids, args.repeats)
        size, size_cams = out.stat().st_size / 1e6, (Path(tmp) / "cams.html").stat().st_size / 1e6
        opened, busy, last = time_open(Path(tmp) / "cams.html", args.repeats)
    rows = [
        (f"build: `python -m fascore report` of the {len(ids)} demo runs (fresh process)", *cli,
         BUILD_TARGET_S),
        ("build: the same with `--gradcam 3` (loads torch for Grad-CAM)", *cams, BUILD_TARGET_S),
        ("build: `build_report` in a warm process (the Report page after its imports)", *warm,
         None),
        ("open: chromium, navigation start to every figure drawn (the `--gradcam 3` file; CPU = "
         "the renderer process's)", opened, busy, OPEN_TARGET_S),
    ]  # fmt: skip
    body = _summary(ids, args.repeats, load_before, (size, size_cams), last) + table(rows)
    print(body)
    if not args.no_write:
        from bench._report import write_section

        write_section("report", "HTML report: build and open", "python -m bench.bench_report", body)


if __name__ == "__main__":
    main()
