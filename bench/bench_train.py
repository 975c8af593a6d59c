"""Training-step throughput: fascore's loop against a bare PyTorch loop, measured in one run.

Both loops train the same model with the same batch size and optimizer on data held in memory:
the bare loop indexes a pre-normalised float tensor; fascore's loop is ``training._epoch`` (the
method's ``update``, the LR scheduler, progress and the status-file heartbeat) fed by
``FaceBatches`` over the uint8 image array. Rounds alternate so drift hits both alike.

    python -m bench.bench_train                       # CPU, alexnet_mini at 64 px
    python -m bench.bench_train --device cuda --amp --model alexnet --size 224 --steps 200
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from bench._report import write_section
from fascore.config import RunConfig
from fascore.data.images import FaceBatches, ImageArray, normalize
from fascore.progress import Progress
from fascore.store.runs import RunStore
from fascore.train.loop import _epoch
from fascore.train.methods import METHODS
from fascore.train.models import create_model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bare_loop(model, x, y, batch: int, steps: int, device, amp: bool, lr: float = 1e-3) -> float:
    """Images/s of the textbook loop: index, forward, CE, backward, Adam step (AMP when ``amp``)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=5e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    model.train()
    _sync(device)
    t0 = time.perf_counter()
    for i in range(steps):
        j = (i * batch) % (len(x) - batch + 1)
        xb, yb = x[j : j + batch], y[j : j + batch]
        with torch.autocast(device.type, enabled=amp):
            loss = torch.nn.functional.cross_entropy(model(xb).float(), yb)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        float(loss.detach())  # fascore logs every term, so the bare loop reads its loss too
    _sync(device)
    return steps * batch / (time.perf_counter() - t0)


def fascore_loop(model, images: ImageArray, y, batch: int, steps: int, device, amp: bool) -> float:
    """Images/s of ``training._epoch`` with the source-only method."""
    cfg = RunConfig(method="source_only", batch_size=batch, data=("x",), augment=False)
    method = METHODS.get("source_only")(cfg, model)
    method.amp = amp
    method.scaler = torch.amp.GradScaler("cuda", enabled=amp)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(method.optimizer, T_max=steps)
    stream = iter(FaceBatches(images, y, batch_size=batch, infinite=True, device=device))
    with tempfile.TemporaryDirectory() as tmp:
        run = RunStore(Path(tmp)).run("bench")
        run.write_config(cfg.to_dict())
        bar = Progress(steps, enabled=False)
        _sync(device)
        t0 = time.perf_counter()
        _epoch(run, method, sched, stream, None, steps, 1, bar)
        _sync(device)
    return steps * batch / (time.perf_counter() - t0)


def measure(args, size: int, device: torch.device, amp: bool) -> str:
    """One table row: best-of-rounds images/s of both loops at ``size`` px."""
    torch.manual_seed(0)
    n = args.batch * 8
    raw = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8)
    y = torch.randint(0, 2, (n,))
    images = ImageArray(raw, torch.ones(n, dtype=torch.bool), size)
    x = normalize(raw.float().div(255)).to(device)
    model = create_model(args.model, input_size=size).to(device)
    bare_loop(model, x, y.to(device), args.batch, 3, device, amp)  # warm-up
    fascore_loop(model, images, y, args.batch, 3, device, amp)
    bare, ours = [], []
    for _ in range(args.rounds):
        bare.append(bare_loop(model, x, y.to(device), args.batch, args.steps, device, amp))
        ours.append(fascore_loop(model, images, y, args.batch, args.steps, device, amp))
    b, f = max(bare), max(ours)
    return (
        f"| {args.model} | {size} px | {args.batch} | {device.type}{' + AMP' if amp else ''} "
        f"| {b:,.0f} | {f:,.0f} | {f / b:.3f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", default="alexnet_mini")
    ap.add_argument("--size", type=int, nargs="+", default=[64])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--amp", action="store_true")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args()
    device = torch.device(args.device)
    amp = bool(args.amp and device.type == "cuda")
    load = os.getloadavg()[0]
    lines = [measure(args, size, device, amp) for size in args.size]
    print("\n".join(lines))
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**30
        print(f"peak GPU memory {peak:.2f} GiB")
    if not args.no_write:
        body = (
            f"Best of {args.rounds} alternating rounds of {args.steps} steps; images/s; torch "
            f"threads {torch.get_num_threads()}; load average (1 min) {load:.1f} at the start "
            f"on {os.cpu_count()} cores. The bare loop slices a contiguous view of pre-normalised "
            "floats; the fascore loop gathers shuffled rows of the uint8 array with `index_select` "
            "(advanced indexing `images[idx]` cost ~7x more per batch and was most of the gap "
            "at 112 px) and normalises them.\n\n"
            "| model | input | batch | device | bare PyTorch loop | fascore loop | ratio |\n"
            "|---|---|---|---|---|---|---|\n" + "\n".join(lines)
        )
        key = f"train-{device.type}"
        write_section(
            key,
            f"Training-step throughput ({device.type})",
            "python -m bench.bench_train " + " ".join(_argv()),
            body,
        )


def _argv() -> list[str]:
    import sys

    return sys.argv[1:]


if __name__ == "__main__":
    main()
