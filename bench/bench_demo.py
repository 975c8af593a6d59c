"""Wall time of the demo experiment end to end: ``python -m fascore demo`` in a fresh run store,
with a fresh SynthFAS cache (cold: the data is generated too) and with the data already cached.

    python -m bench.bench_demo
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._report import write_section


def _timed(env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "fascore", "demo", "--preset", "demo"], env=env,
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - t0


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = {**os.environ, "FASCORE_DATA_DIR": str(Path(tmp) / "data")}
        cold = _timed({**base, "FASCORE_RUNS_DIR": str(Path(tmp) / "runs-cold")})
        warm = _timed({**base, "FASCORE_RUNS_DIR": str(Path(tmp) / "runs-warm")})
    body = (
        "One seed: a teacher and six students (target_only, finetune, kd, mmd, pair, distill) "
        "on SynthFAS demo, each trained, scored and analysed (embeddings, MMD tests, UMAP). "
        "Target: at most 3 minutes on 2 CPU cores.\n\n"
        "| | wall time |\n|---|---|\n"
        f"| cold: SynthFAS generated first | {cold:.0f} s |\n"
        f"| data already cached | {warm:.0f} s |"
    )
    print(body)
    write_section("demo", "The demo experiment, end to end", "python -m bench.bench_demo", body)


if __name__ == "__main__":
    main()
