"""Time the Shift debugger with 20,000 points on each map: a selection -> the grid, and the
inspector, warm, through Streamlit's AppTest (the whole page script, no browser paint).

The store is a fake student run (tests/fakes.py, real file formats and random weights) whose
analysis files are scaled to ``--points`` samples: embeddings (256-D), both maps, scores and the
image paths (tiled over the fake images, so the thumbnail cache holds ``--points`` decoded
images). Warm = caches filled (the run's table, thumbnails, models, rankings): each timed run
changes the selection (a new box on the student map) or the inspected sample, which no cache
holds. Targets (issue 18): selection -> grid < 1 s, inspector < 2 s.

    python bench/bench_shift.py [--points 20000] [--repeats 5] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GRID_TARGET_S, INSPECT_TARGET_S = 1.0, 2.0
DIM = 256


def scale_run(run, n: int, seed: int = 0) -> None:
    """Rewrite a run's analysis files for ``n`` samples: rows tiled from the stored ones, new
    ids, random embeddings with a domain offset and random map coordinates in a few clusters."""
    rng = np.random.default_rng(seed)
    index = run.read_table("embedding_index")
    tiled = index.iloc[np.arange(n) % len(index)].reset_index(drop=True)
    tiled["sample"] = np.arange(n)
    target = (tiled["role"] == "target").to_numpy()
    emb = {}
    for model in ("teacher", "student"):
        z = rng.normal(0, 1, (n, DIM)).astype(np.float32)
        z[:, 0] += 2.0 * target
        emb[model] = z.astype(np.float16)
    run.write_arrays("embeddings", emb)
    run.write_table("embedding_index", tiled)
    parts = []
    for view, model in (("shift", "teacher"), ("student", "student")):
        centre = rng.normal(0, 6, (12, 2))[rng.integers(0, 12, n)]
        xy = centre + rng.normal(0, 1, (n, 2)) + 8 * target[:, None]
        parts.append(tiled.assign(view=view, model=model, x=xy[:, 0], y=xy[:, 1]))
    run.write_table("projection", pd.concat(parts, ignore_index=True))


def build(points: int) -> tuple[Path, str]:
    from tests.fakes import make_fake_store

    root = Path(tempfile.mkdtemp(prefix="fascore-bench-shift-")) / "runs"
    runs = make_fake_store(root, n_students=1, weights=True)
    scale_run(runs[1], points)
    return root, runs[1].id


def _caption_count(at) -> int:
    for c in at.caption:
        if "samples selected" in c.value:
            return int(c.value.split(" ")[0].replace(",", ""))
    return 0


def _timed(at, **params) -> float:
    for k, v in params.items():
        at.query_params[k] = v
    t0 = time.perf_counter()
    at.run()
    took = time.perf_counter() - t0
    problems = [e.value for e in at.exception] + [e.value for e in at.error]
    if problems:
        raise SystemExit(f"the page failed: {problems[0]}")
    return took


def measure(run_id: str, repeats: int) -> dict:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "pages" / "shift.py"), default_timeout=600)
    cold = _timed(at, run=run_id)
    boxes = [f"box:s:{-4 + i},{6 + i},{-3 + i},{7 + i}" for i in range(repeats + 1)]
    _timed(at, sel=boxes[0])  # fills the thumbnail cache and the rankings
    grid, counts = [], []
    for box in boxes[1:]:
        grid.append(_timed(at, sel=box))
        counts.append(_caption_count(at))
    ids = [
        int(b.key.removeprefix("inspect_"))
        for b in at.button
        if (b.key or "").startswith("inspect_")
    ]
    first = _timed(at, inspect=str(ids[0]))  # loads the models
    inspect = [_timed(at, inspect=str(i)) for i in ids[1 : repeats + 1]]
    return {"cold": cold, "grid": grid, "counts": counts, "inspect_first": first,
            "inspect": inspect}  # fmt: skip


def report(points: int, r: dict) -> str:
    med = statistics.median
    ok_grid, ok_insp = med(r["grid"]) < GRID_TARGET_S, med(r["inspect"]) < INSPECT_TARGET_S
    return (
        f"{points:,} points on each map (a fake student run scaled up: 256-D embeddings, both "
        f"maps, scores, {points:,} thumbnails tiled over the fake images). Load average when "
        f"timing started: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores. Whole page script "
        "through `streamlit.testing` (maps, grid, inspector, rankings; no browser paint).\n\n"
        "| step | median (s) | min (s) | max (s) | target | within |\n|---|---|---|---|---|---|\n"
        f"| first visit (cold: imports, reading, decoding {points:,} thumbnails once) | "
        f"{r['cold']:.2f} | | | | |\n"
        f"| selection -> grid (new box, warm; {min(r['counts']):,}-{max(r['counts']):,} samples "
        f"selected, 48 shown) | {med(r['grid']):.3f} | {min(r['grid']):.3f} | "
        f"{max(r['grid']):.3f} | < {GRID_TARGET_S:.0f} s | {'yes' if ok_grid else 'NO'} |\n"
        f"| inspector, first (loads the models) | {r['inspect_first']:.2f} | | | | |\n"
        f"| inspector (new sample, warm: frame, 2 Grad-CAMs, 2 x 5 neighbours among "
        f"the source training samples) | {med(r['inspect']):.3f} | {min(r['inspect']):.3f} | "
        f"{max(r['inspect']):.3f} | < {INSPECT_TARGET_S:.0f} s | {'yes' if ok_insp else 'NO'} |\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    root, run_id = build(args.points)
    os.environ["FASCORE_RUNS_DIR"] = str(root)
    body = report(args.points, measure(run_id, args.repeats))
    print(body)
    if not args.no_write:
        from bench._report import write_section

        command = " ".join(["python bench/bench_shift.py", *sys.argv[1:]])
        write_section("shift", "Shift debugger: 20,000 points", command, body)


if __name__ == "__main__":
    main()
