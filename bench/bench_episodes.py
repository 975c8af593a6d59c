"""Episodes per CPU-hour of the demo protocol, trained in one process (``--launcher inprocess``).

Plans ``source_only`` + the six student methods on the SynthFAS demo protocol (k = 5, 8 epochs,
analysis off: an episode sweep needs metrics only) with ``--episodes`` shot draws for one teacher
seed, trains them with ``fascore.jobs.demo.train_in_process`` (``--workers`` one-thread
processes) in a fresh run store, and measures CPU time (all processes and threads; the machine
may be shared, so wall time is reported but not used). Writes its section of
docs/benchmarks.md: ``python -m bench.bench_episodes [--episodes 2] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

from bench._report import write_section
from fascore.jobs.plan import STUDENT_METHODS
from fascore.jobs.results import base_config
from fascore.store.runs import RunStore

TARGET_EPISODES, TARGET_MINUTES, CORES = 30, 60, 2


def _cpu() -> float:
    """CPU seconds of this process and its finished children (all threads)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def step_cpu(threads: int, steps: int = 8) -> float:
    """CPU seconds per ``distill`` training step (batch 64 + 64, 64 px) with ``threads`` torch
    threads, in this process."""
    import torch

    from fascore.config import RunConfig
    from fascore.train.methods import METHODS, Batch
    from fascore.train.models import create_model

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = RunConfig(method="distill", data=("x",))
    method = METHODS.get("distill")(cfg, create_model("alexnet_mini"), create_model("alexnet_mini"))
    method.train()
    y = torch.tensor([0, 1] * 32)
    batch = Batch(torch.randn(64, 3, 64, 64), y, torch.randn(64, 3, 64, 64), y)
    method.update(batch)
    c0 = _cpu()
    for _ in range(steps):
        method.update(batch)
    torch.set_num_threads(before)
    return (_cpu() - c0) / steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--episodes", type=int, default=2)
    p.add_argument("--workers", type=int, default=2, help="one-thread training processes")
    p.add_argument("--no-write", action="store_true", help="print only")
    args = p.parse_args()
    from fascore.jobs.demo import train_in_process
    from fascore.jobs.sweep import plan_sweep

    one, two = step_cpu(1), step_cpu(2)
    with tempfile.TemporaryDirectory(prefix="bench-episodes-") as tmp:
        os.environ["FASCORE_RUNS_DIR"] = tmp
        base = base_config("demo", None).replace(device="cpu")
        plan = plan_sweep(base, ["source_only", *STUDENT_METHODS], [0], [5], args.episodes)
        store = RunStore(tmp)
        c0, t0 = _cpu(), time.time()
        train_in_process(plan[:1], store)  # the teacher (and the image decoding it starts)
        teacher, c1, t1 = _cpu() - c0, _cpu(), time.time()
        runs = train_in_process(plan, store, workers=args.workers)
        cpu, wall = _cpu() - c1, time.time() - t1
        done = sum(r.state() == "done" for r in runs)
    episode_cpu = cpu / args.episodes
    total = teacher + TARGET_EPISODES * episode_cpu
    body = f"""{args.episodes} episodes of the demo protocol (k = 5, 8 epochs, the 6 student
methods per episode, one teacher for all; analysis off; {done}/{len(plan)} runs done) trained by
`train_in_process` in {args.workers} one-thread worker processes. Why one thread: a `distill`
training step (batch 64 + 64) cost {one:.2f} CPU s with 1 torch thread and {two:.2f} CPU s with 2
on this machine at the time (the default 2 threads spin while they wait for each other, and on a
shared machine they wait a lot). CPU time of all processes, children included; the machine was
shared with other work, so the wall time ({wall:.0f} s for the students, {t1 - t0:.0f} s for the
teacher) is not the measure.

- teacher: {teacher:.0f} CPU s, once per seed (its image decoding included);
- **{3600 / episode_cpu:.1f} episodes per CPU-hour** ({episode_cpu:.0f} CPU s per episode of six
  students, each episode's image decoding included);
- {TARGET_EPISODES} episodes x 7 methods: {total / 60:.0f} CPU minutes, so about
  {total / 60 / CORES:.0f} min of wall time on {CORES} idle cores with {CORES} workers (the target
  is {TARGET_MINUTES} min). An extrapolation from {args.episodes} measured episodes, assuming
  the two workers keep both cores busy; not a timed 30-episode run.
"""
    print(body)
    if not args.no_write:
        cmd = f"python -m bench.bench_episodes --episodes {args.episodes} --workers {args.workers}"
        write_section("episodes", "Episodes per CPU-hour (few-shot sweeps)", cmd, body)


if __name__ == "__main__":
    main()
