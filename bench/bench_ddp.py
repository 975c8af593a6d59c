"""One run trained by 1 process against 2 DDP processes (gloo, CPU), both started by the CLI.

The same config (global batch, steps, seed) is trained by ``python -m fascore train`` and by
``python -m fascore train --devices 2`` (torchrun, 2 gloo processes, each its half of every
batch). Throughput is read from the run's own log: each epoch's training time, epochs after the
first (warm-up), so start-up, data decoding and evaluation are left out; start-to-end wall time
is reported beside it. Three layouts: one process with as many torch threads as cores, one
process with one thread, and two DDP processes with one thread each (torchrun's default), so the
effect of threads and of processes can be told apart. Rounds alternate; the best is reported.

    python -m bench.bench_ddp              # writes the ddp-cpu section of docs/benchmarks.md
    python -m bench.bench_ddp --rounds 1 --no-write
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from bench._report import write_section
from fascore.data.manifest import write_manifest
from fascore.store.runs import RunStore

ROOT = Path(__file__).resolve().parent.parent
FLAGS = {
    "method": "source_only", "model": "alexnet_mini", "image-size": "64", "batch-size": "64",
    "epochs": "4", "steps-per-epoch": "12", "shots": "0", "select": "source_dev",
    "device": "cpu", "n-boot": "20", "source-domains": "studio", "target-domain": "phone",
}  # fmt: skip


def make_manifest(out: Path, per_domain: int = 256, size: int = 64) -> Path:
    """Random images with a planted stripe cue on spoofs; two domains; subject-disjoint splits."""
    rng = np.random.default_rng(0)
    (out / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    for d, dom in enumerate(("studio", "phone")):
        for i in range(per_domain):
            spoof = i % 2 == 1
            img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            if spoof:
                img[:: 2 + d] = 40 + 80 * d
            rel = f"img/{dom}_{i}.png"
            Image.fromarray(img).save(out / rel)
            subject = i // 8
            split = ("train", "train", "dev", "test")[subject % 4]
            rows.append({
                "path": rel, "label": "spoof" if spoof else "live",
                "attack": "print" if spoof else "none", "domain": dom,
                "subject": f"{dom}-{subject}", "video": f"{dom}-{subject}-{int(spoof)}",
                "split": split,
            })  # fmt: skip
    return write_manifest(pd.DataFrame(rows), out)


LAYOUTS = (  # (processes, torch threads per process)
    (1, os.cpu_count() or 1),
    (1, 1),
    (2, 1),
)


def train_once(manifest: Path, store: Path, devices: int, threads: int) -> dict:
    """Train the config into a fresh store; images/s from the log's epoch times."""
    argv = [sys.executable, "-m", "fascore", "train", "--quiet", "--no-analysis"]
    argv += ["--data", str(manifest), "--devices", str(devices)]
    argv += [x for k, v in FLAGS.items() for x in (f"--{k}", v)]
    env = {**os.environ, "FASCORE_RUNS_DIR": str(store), "OMP_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"training with --devices {devices} failed:\n{done.stderr[-3000:]}")
    run = next(iter(RunStore(store)))
    epochs = [float(s) for s in re.findall(r"epoch \d+: .*\(([\d.]+)s\)", run.log_tail(400))]
    per_epoch = int(FLAGS["steps-per-epoch"]) * int(FLAGS["batch-size"])
    rate = per_epoch / statistics.median(epochs[1:])
    final = [m["train"]["total"] for m in run.metrics()][-1]
    return {"rate": rate, "wall": wall, "loss": final}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    load0 = os.getloadavg()[0]
    results: dict[tuple[int, int], list[dict]] = {lay: [] for lay in LAYOUTS}
    with tempfile.TemporaryDirectory() as tmp:
        manifest = make_manifest(Path(tmp) / "data")
        for r in range(args.rounds):
            for procs, threads in LAYOUTS:
                store = Path(tmp) / f"runs-{procs}-{threads}-{r}"
                results[procs, threads].append(train_once(manifest, store, procs, threads))
    load1 = os.getloadavg()[0]
    best = {lay: max(rs, key=lambda x: x["rate"]) for lay, rs in results.items()}
    base = best[LAYOUTS[0]]["rate"]
    names = {1: "1 process", 2: "2 DDP processes (gloo, torchrun)"}
    rows = [
        f"| {names[p]}, {t} torch thread{'s' if t > 1 else ''}{' each' if p > 1 else ''} | "
        f"{b['rate']:,.0f} | "
        f"{b['rate'] / base:.2f} | {b['wall']:.1f} | {b['loss']:.4f} |"
        for (p, t), b in best.items()
    ]
    body = (
        f"alexnet_mini at 64 px, source_only, global batch {FLAGS['batch-size']}, "
        f"{FLAGS['epochs']} epochs of {FLAGS['steps-per-epoch']} steps, 512 images, seed 0; "
        f"best of {args.rounds} alternating rounds. Training images/s from the run log's epoch "
        "times (epochs 2 onwards); wall time from start to exit, with start-up, decoding, "
        "evaluation and scoring. Final loss: the last epoch's mean training loss (dropout "
        "masks are per process, so the two differ a little; with dropout off they agree within "
        "2e-4, tests/test_ddp.py).\n\n"
        "| training | images/s | vs first row | wall (s) | final loss |\n"
        "|---|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n\n"
        f"Load average (1 min) before/after: {load0:.1f} / {load1:.1f} on {os.cpu_count()} "
        "cores: other work shares this machine, and a busy machine penalises threads that "
        "wait for each other (one process, several threads) far more than single-threaded "
        "processes, so compare rows within this table only. DDP on CPUs is here to show that "
        "one run spans processes correctly; the speed-up it is for comes from one GPU per "
        "process."
    )
    print(body)
    if not args.no_write:
        write_section(
            "ddp-cpu",
            "One run on 2 DDP processes against 1 (CPU, gloo)",
            "python -m bench.bench_ddp " + " ".join(argv or sys.argv[1:]),
            body,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
