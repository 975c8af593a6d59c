"""Training progress: a tqdm bar on an interactive terminal, and the same numbers (fraction,
rate, time left, last losses) for the status file that the dashboard reads."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm


def terminal_bar(
    desc: str, total: int | None = None, *, unit: str = "it", enabled: bool | None = None
) -> tqdm:
    """A tqdm bar on stderr when it is a terminal (or ``enabled``); silent elsewhere."""
    show = sys.stderr.isatty() if enabled is None else enabled
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=not show)


class Progress:
    """Counts steps, estimates the rate and the time left, and draws a bar on a TTY."""

    def __init__(self, total: int, *, enabled: bool = True, label: str = "", batch: int = 0):
        self.total, self.done, self.label = max(total, 1), 0, label
        self.base = 0  # steps done before this process started (a resumed run)
        self.batch = batch  # images per step, for the images/s figure
        self.t0 = time.time()
        self.last: dict[str, float] = {}
        self.draw = enabled and sys.stderr.isatty()
        self._bar: tqdm | None = None  # opened on the first step, after any skip()

    def update(self, logs: dict[str, float], n: int = 1) -> None:
        self.done += n
        self.last = logs
        if self.draw:
            if self._bar is None:
                self._bar = tqdm(total=self.total, initial=self.done - n, desc=self.label,
                                 unit="step", file=sys.stderr, dynamic_ncols=True)  # fmt: skip
            self._bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items()}, refresh=False)
            self._bar.update(n)

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
        if self._bar is not None:
            self._bar.close()
