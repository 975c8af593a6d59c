"""Write docs/shift-debugger.md's generated parts from the Shift debugger on a run store: its
screenshots (a real ``streamlit run`` server, Debian's chromium) and the tables of what it
shows about each student at k shots (the attacks it misses, the live share of its wrongly
accepted spoofs' source neighbours, the attribute that carries the shift).

    python bench/shift_docs.py --store /tmp/demo-copy [--run kd] [--port 8631]

The store is read only (copy /work/demo-store or your own demo first). The screenshots are
palette PNGs at 1440 x 900 (< 300 KB); the section between the ``generated`` markers of the doc
is rewritten, the hand-written walkthrough around it is kept.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DOC = ROOT / "docs" / "shift-debugger.md"
BEGIN, END = "<!-- begin generated -->", "<!-- end generated -->"
CHROMIUM = "/usr/bin/chromium"
IDLE = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    return app && app.dataset.testScriptState === "notRunning"
        && !document.querySelector('[data-testid="stSkeleton"]')
        && [...document.images].every((img) => img.complete);
}"""


def _pct(v: float) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{100 * v:.0f} %"


def markdown(table: pd.DataFrame) -> str:
    """A GitHub markdown table (pipes in cells escaped)."""
    cells = [[str(v).replace("|", "/") for v in row] for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def run_rows(store) -> pd.DataFrame:
    """One row per student run: its misses per attack, neighbours and top shift attribute."""
    from fascore.eval.shift.data import load_shift
    from fascore.eval.shift.neighbours import alignment_summary
    from fascore.eval.shift.reference import build_reference
    from fascore.eval.shift.slices import error_slices, shift_ranking
    from fascore.train.checkpoint import load_models

    rows = []
    for run in store:
        cfg = run.config()
        if not cfg.get("teacher") or not run.has("done"):
            continue
        data = load_shift(run)
        s = data.samples
        target = s[(s["role"] == "target") & (s["split"] == "test")]
        wrong = ~target["student_right"].astype(bool).to_numpy()
        sl = error_slices(target, wrong, ["attack"]).set_index("value")
        ref = build_reference(run, {"student": load_models(run)["student"]})
        near = alignment_summary(s, {"student": data.embeddings["student"]}, ref.samples,
                                 ref.embeddings)  # fmt: skip
        col = [c for c in near.columns if c.startswith("live share")][0]
        pick = near.set_index(["target label", "decision"])[col]
        row = {"method": cfg["method"], "shots": cfg.get("shots"), "run": run.id,
               "target error": _pct(wrong.mean())}  # fmt: skip
        for attack in ("print", "replay", "mask", "none"):
            if attack in sl.index:
                r = sl.loc[attack]
                row[f"{attack} wrong"] = (
                    f"{_pct(r['error rate'])} [{_pct(r['ci low'])}, {_pct(r['ci high'])}]"
                )
        row["missed spoofs: live neighbours"] = _pct(pick.get(("spoof", "wrong"), np.nan))
        row["caught spoofs: live neighbours"] = _pct(pick.get(("spoof", "right"), np.nan))
        for model in data.models:
            top = shift_ranking(s, data.embeddings[model], data.attributes).iloc[0]
            row[f"top shift attribute ({model})"] = (
                f"{top['attribute']}={top['top value']} ({top['status']}; MMD² "
                f"{top['MMD² in it']:.2f} vs pooled {top['pooled MMD²']:.2f})"
            )
        rows.append(row)
    return pd.DataFrame(rows).sort_values("method").reset_index(drop=True)


def confounded(store) -> str:
    from fascore.eval.shift.data import load_shift
    from fascore.eval.shift.slices import shift_ranking

    run = next(r for r in store if r.config().get("teacher") and r.has("done"))
    data = load_shift(run)
    table = shift_ranking(data.samples, data.embeddings["teacher"], data.attributes)
    names = table.loc[table["status"] == "confounded with the domain", "attribute"].tolist()
    return ", ".join(names) or "none"


def _serve(store: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "FASCORE_RUNS_DIR": str(store), "FASCORE_SHARE": ""}
    cmd = [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.port",
           str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
           "--browser.gatherUsageStats", "false"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    for _ in range(100):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return proc
        except OSError:
            time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGTERM)
    raise SystemExit("streamlit did not start")


def _save(page, name: str, anchor=None) -> str:
    """A viewport screenshot with ``anchor`` (text or a locator) at the top, as a small palette
    PNG."""
    from PIL import Image

    if anchor is not None:
        where = page.get_by_text(anchor, exact=True) if isinstance(anchor, str) else anchor
        where.first.evaluate("e => e.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(800)
    png = page.screenshot()
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=128)
    path = DOC.parent / f"shift-debugger-{name}.png"
    image.save(path, optimize=True)
    return path.name


def screenshots(store: Path, run_id: str, port: int) -> list[str]:
    from playwright.sync_api import sync_playwright

    proc = _serve(store, port)
    url = (f"http://127.0.0.1:{port}/shift?run={run_id}&color=domain_label&domain=phone&label=spoof&err=student_wrong"
           "&sel=slice:attack=print")  # fmt: skip
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(url)
            page.wait_for_timeout(1500)
            page.wait_for_function(IDLE, timeout=120_000)
            names = [_save(page, "maps", "Regime")]
            names.append(_save(page, "grid", "Clear selection"))
            page.locator("[class*='st-key-inspect_']").first.get_by_role("button").click()
            page.wait_for_timeout(1500)
            page.wait_for_function(IDLE, timeout=120_000)
            heading = page.get_by_role("heading", name=re.compile(r"^Sample \d+"))
            names.append(_save(page, "inspector", heading))
            names.append(
                _save(
                    page,
                    "neighbours",
                    "Nearest source training samples under the teacher's embedding",
                )
            )
            names.append(_save(page, "training", "Over training"))
            names.append(_save(page, "where", "Where the shift lives"))
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    return names


def write(section: str) -> None:
    text = DOC.read_text() if DOC.exists() else f"# Shift debugger\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    DOC.write_text(head + BEGIN + "\n" + section.strip() + "\n" + END + rest.split(END, 1)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", required=True, help="a copy of a demo run store")
    parser.add_argument("--run", default="kd", help="the method whose run the screenshots show")
    parser.add_argument("--port", type=int, default=8631)
    args = parser.parse_args()
    from fascore.store.runs import RunStore

    store = RunStore(args.store)
    table = run_rows(store)
    run_id = table.loc[table["method"] == args.run, "run"].iloc[0]
    shots = screenshots(store.root, run_id, args.port)
    command = " ".join(["python bench/shift_docs.py", *sys.argv[1:]])
    section = (
        f"Written by `{command}` on {time.strftime('%Y-%m-%d')} from the store's "
        f"{len(table)} student runs. Target test split, few-shot regime (threshold from the source "
        "dev split, the label budget as on the page); rates per image with 95 % CIs resampling "
        "subjects; neighbours: the 5 most similar source training samples under the student's "
        "embedding.\n\n" + markdown(table.drop(columns="run")) + "\n\n"
        f"Attributes confounded with the domain (every value on one side only): "
        f"{confounded(store)}.\n\nScreenshots ({args.run}): " + ", ".join(f"`{n}`" for n in shots)
    )
    write(section)
    print(section)


if __name__ == "__main__":
    main()
