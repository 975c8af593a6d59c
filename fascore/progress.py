"""Training progress: a one-line bar on an interactive terminal, and the same numbers for the
status file that the dashboard reads."""

from __future__ import annotations

import sys
import time


class Progress:
    """Counts steps, estimates the rate and the time left, and draws a bar on a TTY."""

    def __init__(self, total: int, *, enabled: bool = True, label: str = "", batch: int = 0):
        self.total, self.done, self.label = max(total, 1), 0, label
        self.base = 0  # steps done before this process started (a resumed run)
        self.batch = batch  # images per step, for the images/s figure
        self.t0 = time.time()
        self.last: dict[str, float] = {}
        self.draw = enabled and sys.stderr.isatty()
        self._drawn = 0.0

    def update(self, logs: dict[str, float], n: int = 1) -> None:
        self.done += n
        self.last = logs
        if self.draw and (time.time() - self._drawn > 0.2 or self.done == self.total):
            self._drawn = time.time()
            width = 24
            fill = int(width * self.done / self.total)
            terms = " ".join(f"{k}={v:.3f}" for k, v in logs.items())
            sys.stderr.write(
                f"\r{self.label} [{'#' * fill}{'.' * (width - fill)}] "
                f"{self.done}/{self.total} eta {self.eta():.0f}s {terms}\033[K"
            )
            sys.stderr.flush()

    def skip(self, n: int) -> None:
        """Count ``n`` steps done by an earlier process (resume) without timing them."""
        self.done += n
        self.base += n

    def rate(self) -> float:
        return (self.done - self.base) / max(time.time() - self.t0, 1e-9)

    def eta(self) -> float:
        rate = self.rate()
        return (self.total - self.done) / rate if rate > 0 else float("nan")

    def status(self, **where: int) -> dict:
        """The progress block of ``status.json``."""
        return {
            **where,
            "fraction": self.done / self.total,
            "eta_s": round(self.eta(), 1),
            "steps_per_s": round(self.rate(), 3),
            "images_per_s": round(self.rate() * self.batch, 1),
            "loss": {k: round(v, 5) for k, v in self.last.items()},
        }

    def close(self) -> None:
        if self.draw:
            sys.stderr.write("\n")
