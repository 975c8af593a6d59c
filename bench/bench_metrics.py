"""Time the PAD evaluation's bootstrap and Compare's paired bootstrap (were unit-test asserts).

python bench/bench_metrics.py   # writes its section of docs/benchmarks.md
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fascore import metrics  # noqa: E402

TARGET_EVALUATE_S = 0.5  # 1000 bootstraps over 500 one-frame videos


def _videos(rng: np.random.Generator, n: int, frames: int) -> metrics.ScoreSet:
    y = np.repeat(rng.integers(0, 2, n), frames)
    attack = np.where(y == 1, np.repeat(rng.choice(["print", "replay"], n), frames), "none")
    score = np.clip(0.3 * y + 0.7 * rng.random(len(y)), 0, 1)
    return metrics.ScoreSet(y, score, attack, np.repeat(np.arange(n), frames).astype(str))


def _best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    rng = np.random.default_rng(9)
    dev, test = _videos(rng, 500, 1), _videos(rng, 500, 1)
    evaluate_s = _best(lambda: metrics.evaluate(dev, test, n_boot=1000))
    a, b = _videos(rng, 104, 8), _videos(rng, 104, 8)
    b = metrics.ScoreSet(a.y, b.score, a.attack, a.video)
    paired_s = _best(lambda: metrics.paired_replicates([a, b], [0.5, 0.5], n_boot=300))
    body = "\n".join([
        "| what | best of 3 (s) | target |",
        "|---|---|---|",
        f"| `metrics.evaluate`, 1000 bootstraps, 500 one-frame videos | {evaluate_s:.3f} | "
        f"< {TARGET_EVALUATE_S} |",
        f"| `metrics.paired_replicates`, 2 models, 300 bootstraps, 104 videos × 8 frames "
        f"(Compare's paired deltas) | {paired_s:.3f} | |",
    ])  # fmt: skip
    print(body)
    from bench._report import write_section

    write_section("metrics", "PAD metrics: bootstrap time", "python bench/bench_metrics.py", body)


if __name__ == "__main__":
    main()
