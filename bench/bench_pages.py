"""Time every dashboard page's render through Streamlit's AppTest, cold and warm, and its clicks.

Cold: the page's first run in a fresh Python process (its imports and cache misses included, the
interpreter and Streamlit's own start-up excluded). Warm: the best of the next runs in that
process (caches filled), which is what a user sees when clicking around. Uncached: the best of
as many runs after clearing ``st.cache_data`` (imports done, every computation redone: what a
newly picked pair of runs costs on the Compare page). Clicks (``CLICKS``): one radio of the page
set to an option not seen yet (first click), then back and forth between options already seen
(warm click: the best of those; what cache-by-input must make cheap). Targets: < 3 s cold,
< 1 s warm, < 0.5 s warm click. The store is the demo experiment when the run store holds it (``python -m fascore
demo``), else a fake store of the demo's size (a teacher and six students, ~840 scored images
each; tests/fakes.py); the output says which.

    python bench/bench_pages.py [--store DIR] [--warm-runs 3] [--pages compare ...]

With ``--pages`` (a subset) the table is printed only; docs/benchmarks.md keeps the full run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAGES = ("overview", "train", "experiment", "compare", "alignment", "gradcam", "shift", "report")
DEMO_EXPERIMENT = "synthfas-demo"
COLD_TARGET_S, WARM_TARGET_S, CLICK_TARGET_S = 3.0, 1.0, 0.5
#: page -> (query parameters, key of the radio clicked); pages without a radio have no click.
CLICKS = {
    "experiment": ({}, "exp-metric"),
    "compare": ({"view": "Distributions"}, "cmp_by"),
    "alignment": ({}, "view"),
    "gradcam": ({}, "gc_scale"),
    "shift": ({}, "sh_rank_model"),
}


def _clicks(at, key: str, warm_runs: int) -> tuple[float, float]:
    """(first click, best warm click) in s: options[1] first, then options[0] and [1] again."""
    radio = at.radio(key=key)
    options = radio.options
    if len(options) < 2:
        return float("nan"), float("nan")
    t0 = time.perf_counter()
    radio.set_value(options[1]).run()
    first = time.perf_counter() - t0
    warm = []
    for i in range(2 * warm_runs):
        t0 = time.perf_counter()
        at.radio(key=key).set_value(options[i % 2]).run()
        warm.append(time.perf_counter() - t0)
    return first, min(warm)


def _child(page: str, warm_runs: int) -> None:
    """Runs in the fresh process: print {"cold", "warm", "uncached" (s), "errors"} as JSON."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=120)
    params, radio = CLICKS.get(page, ({}, None))
    if page in ("compare", "alignment", "gradcam"):
        params = {**params, "run": _a_student()}  # a student has a teacher: every view to click
    for key, value in params.items():
        at.query_params[key] = value
    t0 = time.perf_counter()
    at.run()
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(warm_runs):
        t0 = time.perf_counter()
        at.run()
        warm.append(time.perf_counter() - t0)
    uncached = []
    for _ in range(warm_runs):
        st.cache_data.clear()
        t0 = time.perf_counter()
        at.run()
        uncached.append(time.perf_counter() - t0)
    first = click = float("nan")
    if radio is not None:
        first, click = _clicks(at, radio, warm_runs)
    problems = [str(e.value) for e in at.exception] + [str(e.value) for e in at.error]
    times = {"cold": cold, "warm": min(warm), "uncached": min(uncached)}
    print(json.dumps({**times, "first_click": first, "click": click, "errors": problems}))


def _a_student() -> str:
    """A finished run with a teacher, ``distill`` first (the method the project is about)."""
    from fascore.store.runs import RunStore

    done = [r for r in RunStore() if r.state() == "done" and r.config().get("teacher")]
    done.sort(key=lambda r: (r.config().get("method") != "distill", r.id))
    return done[0].id if done else ""


def _store(given: str | None) -> tuple[Path, str]:
    """The store to time against and a sentence saying what it holds."""
    from fascore.store.runs import RunStore

    store = RunStore(given)
    demo = [r for r in store if r.config().get("experiment") == DEMO_EXPERIMENT]
    if demo:
        return store.root, f"the demo experiment ({len(demo)} runs) in `{store.root}`"
    if given:
        return store.root, f"the {len(store.runs())} runs in `{store.root}`"
    from tests.fakes import make_fake_store

    root = Path(tempfile.mkdtemp(prefix="fascore-bench-pages-")) / "runs"
    runs = make_fake_store(root, n_students=6, n_videos=104, weights=True)
    n = len(runs[1].read_table("scores"))
    return root, (
        f"a fake store of the demo's size ({len(runs)} runs, {n} scored images each; "
        "tests/fakes.py): the demo experiment was not in the run store"
    )


def _time_page(page: str, store: Path, warm_runs: int) -> dict:
    env = {**os.environ, "FASCORE_RUNS_DIR": str(store), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, __file__, "--child", page, "--warm-runs", str(warm_runs)]
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode or not lines:
        nan = float("nan")
        times = dict.fromkeys(("cold", "warm", "uncached", "first_click", "click"), nan)
        return {**times, "errors": [out.stderr[-300:]]}
    return json.loads(lines[-1])


def _seconds(value: float, digits: int = 3) -> str:
    return "—" if value != value else f"{value:.{digits}f}"  # NaN: no click on this page


def _table(results: dict[str, dict]) -> str:
    rows = [
        "| page | cold (s) | warm (s) | uncached (s) | radio clicked | first click (s) | "
        "warm click (s) | within target | page errors |"
    ]
    rows.append("|---|---|---|---|---|---|---|---|---|")
    for page, r in results.items():
        click = r.get("click", float("nan"))
        ok = r["cold"] < COLD_TARGET_S and r["warm"] < WARM_TARGET_S
        ok = ok and not click >= CLICK_TARGET_S  # a page without a click passes on its renders
        errors = "; ".join(e.replace("|", "/")[:80] for e in r["errors"]) or "none"
        radio = f"`{CLICKS[page][1]}`" if page in CLICKS else "—"
        rows.append(
            f"| {page} | {r['cold']:.2f} | {r['warm']:.3f} | {r['uncached']:.3f} | {radio} | "
            f"{_seconds(r.get('first_click', float('nan')))} | {_seconds(click)} | "
            f"{'yes' if ok else 'NO'} | {errors} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", help="run store to time against (default: the demo, or a fake)")
    parser.add_argument("--warm-runs", type=int, default=3)
    parser.add_argument("--pages", nargs="+", choices=PAGES, help="time only these (not written)")
    parser.add_argument("--child", choices=PAGES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.warm_runs)
        return
    store, what = _store(args.store)
    load = os.getloadavg()[0]
    results = {page: _time_page(page, store, args.warm_runs) for page in args.pages or PAGES}
    body = (
        f"Store: {what}. Load average when timing started: {load:.1f} on {os.cpu_count()} "
        "cores (other work shares the machine; idle machines are faster). "
        f"Cold = first run of the page in a fresh process; warm = best of "
        f"{args.warm_runs} further runs; uncached = best of {args.warm_runs} runs after clearing "
        "st.cache_data (imports done, every computation redone); first click = the radio set to "
        f"an option not seen yet; warm click = best of {2 * args.warm_runs} clicks between options "
        f"already seen. Targets: cold < {COLD_TARGET_S:.0f} s, warm < {WARM_TARGET_S:.0f} s, "
        f"warm click < {CLICK_TARGET_S} s. Script time through `streamlit.testing` (no browser "
        "paint).\n\n" + _table(results)
    )
    print(body)
    if args.pages:
        return
    from bench._report import write_section

    command = " ".join(["python bench/bench_pages.py", *sys.argv[1:]])
    write_section("pages", "Dashboard pages: render time", command, body)


if __name__ == "__main__":
    main()
