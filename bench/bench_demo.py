"""Wall time of the demo experiment end to end: ``python -m fascore demo`` in a fresh run store,
with a fresh SynthFAS cache (cold: the data is generated too) and with the data already cached.

    python -m bench.bench_demo               # both
    python -m bench.bench_demo --cached-only # only the second, on the per-user cache
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

from bench._report import write_section
from fascore.data.synth import PRESETS
from fascore.jobs.plan import BUDGETS


def _timed(env: dict) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, the demo and its workers) of one demo."""
    r0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run([sys.executable, "-m", "fascore", "demo", "--preset", "demo"], env=env,
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return time.perf_counter() - t0, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cached-only", action="store_true", help="skip the cold (generating) run")
    args = ap.parse_args()
    load0 = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if not args.cached_only:
            base = {**os.environ, "FASCORE_DATA_DIR": str(Path(tmp) / "data")}
            rows.append(("cold: SynthFAS generated first",
                         _timed({**base, "FASCORE_RUNS_DIR": str(Path(tmp) / "runs-cold")})))  # fmt: skip
            warm_env = base
        else:
            from fascore.data.synth import ensure_synth

            ensure_synth("demo")
            warm_env = dict(os.environ)
        rows.append(("data already cached",
                     _timed({**warm_env, "FASCORE_RUNS_DIR": str(Path(tmp) / "runs-warm")})))  # fmt: skip
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    body = (
        "One seed: a teacher and six students (target_only, finetune, kd, mmd, pair, distill) "
        f"on SynthFAS demo ({PRESETS['demo'].n_images():,} images), {BUDGETS['demo']['epochs']} "
        "epochs each, each trained, scored and analysed (embeddings, MMD tests, UMAP). Target: "
        "at most 3 minutes on 2 CPU cores. Load average (1 min) "
        f"{load0:.1f} before and {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores "
        f"(other work shares the machine; OMP_NUM_THREADS={threads}).\n\n"
        "CPU time is the demo's own user + system time: on a machine shared with other work "
        "it is the load-independent part of the wall time.\n\n"
        "| | wall time | CPU time |\n|---|---|---|\n"
        + "\n".join(f"| {k} | {w:.0f} s | {c:.0f} s |" for k, (w, c) in rows)
    )
    print(body)
    cmd = "python -m bench.bench_demo" + (" --cached-only" if args.cached_only else "")
    write_section("demo", "The demo experiment, end to end", cmd, body)


if __name__ == "__main__":
    main()
