"""Analysis benchmark: Grad-CAM, the MMD permutation test, UMAP, and a whole ``analyse_run``.

(a) Grad-CAM ms/image for torchvision's AlexNet at 224 px, batch 1 and batch 16 (best of
``--repeat``); (b) the MMD² permutation test, 1,024 samples a side, 200 permutations, for a
256-d (alexnet_mini) and a 4,096-d (AlexNet fc7) embedding; (c) PCA + UMAP of 10,000 points of
50 dimensions once numba has compiled; (d) ``analyse_run`` for 1,500 samples of 64 px with two
alexnet_mini models, UMAP on, in a fresh process, so numba's one-off compile is included, then
again in the same process (warm). The load average is recorded: the numbers are CPU times on a
machine other jobs may share.

    python -m bench.bench_analysis [--repeat 5] [--no-write]
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

import numpy as np
import pandas as pd
import torch

from bench._report import write_section

ROOT = Path(__file__).resolve().parent.parent


def best_of(fn, repeat: int) -> float:
    """Best wall time in seconds over ``repeat`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_gradcam(repeat: int) -> dict[str, float]:
    from fascore.eval.analysis.gradcam import gradcam
    from fascore.train.models import create_model

    torch.manual_seed(0)
    model = create_model("alexnet", input_size=224)
    out = {}
    for batch in (1, 16):
        x = torch.randn(batch, 3, 224, 224)
        out[f"batch {batch}"] = 1000 * best_of(lambda x=x: gradcam(model, x), repeat) / batch
    return out


def bench_permutation(repeat: int) -> dict[str, float]:
    from fascore.eval.analysis.alignment import permutation_test

    rng = np.random.default_rng(0)
    out = {}
    for dim in (256, 4096):
        x = rng.random((1024, dim), dtype=np.float32)
        y = rng.random((1024, dim), dtype=np.float32) + 0.01
        run = lambda x=x, y=y: permutation_test(x, y, n_perm=200)  # noqa: E731
        out[f"{dim}-d"] = best_of(run, repeat)
    return out


def bench_umap(repeat: int) -> float:
    from fascore.eval.analysis.projection import project

    z = np.random.default_rng(0).normal(size=(10_000, 50)).astype(np.float32)
    return best_of(lambda: project(z, method="umap", seed=0), max(1, repeat // 2))


def fake_run_inputs(n: int = 1500):
    """1,500 analysis samples (half source, half target; half live, half spoof) and images."""
    rng = np.random.default_rng(0)
    role = np.where(np.arange(n) < n // 2, "source", "target")
    label = np.where(rng.random(n) < 0.5, "live", "spoof")
    samples = pd.DataFrame(
        {
            "sample": np.arange(n),
            "path": [f"/img/{i}.png" for i in range(n)],
            "domain": np.where(role == "source", "studio", "phone"),
            "role": role,
            "split": "test",
            "label": label,
            "y": (label == "spoof").astype(int),
            "attack": np.where(label == "spoof", "print", "none"),
            "video": [f"v{i // 10}" for i in range(n)],
        }
    )
    images = torch.from_numpy(rng.integers(0, 256, (n, 3, 64, 64), dtype=np.uint8))
    images[n // 2 :] //= 2
    return samples, images


def analyse_once() -> dict:
    """One ``analyse_run`` cold, then warm, in this process; prints a JSON line."""
    from fascore.eval.analysis import analyse_run
    from fascore.store.runs import RunStore
    from fascore.train.models import create_model

    samples, images = fake_run_inputs()
    torch.manual_seed(0)
    models = {"teacher": create_model("alexnet_mini"), "student": create_model("alexnet_mini")}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        run = RunStore(tmp).run("bench")
        run.write_config({"seed": 0})
        for label in ("cold", "warm"):
            t0 = time.perf_counter()
            doc = analyse_run(run, models, samples, images, umap=True, seed=0)
            out[label] = {"total": time.perf_counter() - t0, **doc["timing_s"]}
    return out


def bench_analyse_run() -> dict:
    """``analyse_once`` in a fresh interpreter, so import and JIT-compile costs count."""
    cmd = [
        sys.executable,
        "-c",
        "import json, bench.bench_analysis as b; print(json.dumps(b.analyse_once()))",
    ]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["process"] = time.perf_counter() - t0
    return out


def report(g: dict, p: dict, umap_s: float, a: dict, load: tuple) -> str:
    cold, warm = a["cold"], a["warm"]
    rows = [
        "| what | result | target |",
        "|---|---|---|",
        f"| Grad-CAM, AlexNet 224 px, batch 1 | {g['batch 1']:.1f} ms/image | ≤ 40 ms |",
        f"| Grad-CAM, AlexNet 224 px, batch 16 | {g['batch 16']:.1f} ms/image | less than batch 1 |",
        f"| MMD² permutation test, 1,024 a side, 200 perms, 256-d | {p['256-d']:.2f} s | ≤ 3 s |",
        f"| same, 4,096-d (AlexNet fc7) | {p['4096-d']:.2f} s | ≤ 3 s |",
        f"| PCA + UMAP of 10,000 × 50, warm | {umap_s:.2f} s | ≤ 10 s |",
        f"| `analyse_run`, 1,500 samples, 64 px, alexnet_mini ×2, UMAP, fresh process "
        f"(embed {cold['embed']:.1f} s, statistics {cold['statistics']:.1f} s, maps "
        f"{cold['projection']:.1f} s) | {cold['total']:.1f} s | < 15 s |",
        f"| the same again in that process (warm) | {warm['total']:.1f} s | |",
        f"| that whole process, with imports | {a['process']:.1f} s | |",
    ]
    return "\n".join(rows) + (
        f"\n\nLoad average before/after: {load[0]:.1f} / {load[1]:.1f} (1 min). The cold "
        "`analyse_run` includes numba's one-off compile of UMAP (several seconds, once per "
        "process); statistics are three views × (pooled + live + spoof) MMD² tests with 200 "
        "permutations each plus a 5-fold proxy A-distance per view.\n"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-write", action="store_true", help="print only, leave docs/ alone")
    args = ap.parse_args(argv)
    load0 = os.getloadavg()[0]
    a = bench_analyse_run()  # first: its fresh process must not wait on this one's threads
    g, p, u = bench_gradcam(args.repeat), bench_permutation(args.repeat), bench_umap(args.repeat)
    body = report(g, p, u, a, (load0, os.getloadavg()[0]))
    print(body)
    if not args.no_write:
        write_section(
            "analysis",
            "Analysis: Grad-CAM, MMD test, UMAP, analyse_run",
            "python -m bench.bench_analysis",
            body,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
