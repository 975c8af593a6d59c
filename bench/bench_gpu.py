"""The paper-sized GPU path on the card this machine has: training images/s of fascore's loop
against a bare PyTorch loop, peak memory, and Grad-CAM ms/image. Needs CUDA.

Both loops train torchvision's AlexNet at 224 px (ImageNet init when torchvision's file is in
torch's cache; this script never downloads) with the same batch, Adam, fp16 autocast with a
gradient scaler and ``channels_last`` weights. The bare loop indexes a pre-normalised float
tensor already on the GPU (``channels_last``): no data work at all. fascore's loop is the
trainer's own ``_epoch`` with the method prepared by ``prepare_for_device`` (the trainer's AMP
path) and fed by ``FaceBatches`` over the uint8 image array moved to the GPU by
``ImageArray.on_device``: gather, uint8 -> float, normalisation (and, in the last row,
augmentation) on the GPU, every step. Rounds alternate so clock drift hits both alike; the best
round of each is reported. Target: fascore / bare >= 0.90 (augmentation off, the same work).

    python -m bench.bench_gpu                      # writes the gpu section of docs/benchmarks.md
    python -m bench.bench_gpu --steps 20 --no-write
    python -m bench.bench_gpu --device cpu --model alexnet_mini --size 64 --steps 2 --no-write
                                                   # a CPU smoke run of the script (no numbers)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench._report import write_section
from bench.bench_train import _sync
from bench.bench_train import bare_loop as _bare_loop
from fascore.config import RunConfig
from fascore.data.images import FaceBatches, ImageArray, normalize
from fascore.errors import FascoreError
from fascore.progress import Progress
from fascore.store.runs import RunStore
from fascore.train.build import prepare_for_device
from fascore.train.loop import _epoch
from fascore.train.methods import METHODS
from fascore.train.models import create_model, imagenet_file


def bare_loop(model, x, y, batch: int, steps: int) -> float:
    """Images/s of the textbook AMP loop on GPU-resident float data (bench_train's loop)."""
    return _bare_loop(model, x, y, batch, steps, x.device, x.device.type == "cuda", lr=1e-4)


TARGET = 0.90


def make_model(name: str, size: int, dev: torch.device) -> tuple[torch.nn.Module, str]:
    """The model, from torchvision's ImageNet file when it is cached, else random (said so)."""
    probe = create_model(name, input_size=size)
    init = "imagenet" if probe.imagenet and imagenet_file(probe).is_file() else None
    try:
        model = create_model(name, input_size=size, pretrained=init)
    except FascoreError as err:  # a torn cache file: say so and measure with random weights
        print(f"ImageNet weights unusable ({err}); random init", file=sys.stderr)
        model, init = probe, None
    return model.to(dev), ("ImageNet" if init else "random (no cached ImageNet file)")


def fascore_loop(model, images: ImageArray, y, batch: int, steps: int, augment: bool, dev) -> float:
    """Images/s of the trainer's ``_epoch`` (source-only method, the trainer's CUDA setup)."""
    cfg = RunConfig(method="source_only", batch_size=batch, data=("x",), lr=1e-4, amp=True)
    method = METHODS.get("source_only")(cfg, model)
    prepare_for_device(method, cfg, dev)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(method.optimizer, T_max=steps)
    stream = FaceBatches(
        images.on_device(dev), y, batch_size=batch, augment=augment, infinite=True,
        device=dev, channels_last=dev.type == "cuda",
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        run = RunStore(Path(tmp)).run("bench")
        run.write_config(cfg.to_dict())
        bar = Progress(steps, enabled=False)
        _sync(dev)
        t0 = time.perf_counter()
        _epoch(run, method, sched, iter(stream), None, steps, 1, bar)
        _sync(dev)
    return steps * batch / (time.perf_counter() - t0)


def gradcam_ms(model, size: int, dev: torch.device, repeat: int = 5) -> dict[int, float]:
    """Grad-CAM ms/image on the GPU (best of ``repeat``), batch 1 and 16."""
    from fascore.eval.analysis.gradcam import gradcam

    out = {}
    for b in (1, 16):
        x = torch.randn(b, 3, size, size, device=dev)
        gradcam(model, x)  # warm-up (cuDNN autotuning)
        times = []
        for _ in range(repeat):
            _sync(dev)
            t0 = time.perf_counter()
            gradcam(model, x)  # returns numpy maps: includes the copy back to the host
            times.append(time.perf_counter() - t0)
        out[b] = 1000 * min(times) / b
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--device", default="cuda", help="cpu: a smoke run of this script only")
    ap.add_argument("--model", default="alexnet")
    ap.add_argument("--size", type=int, default=224)
    args = ap.parse_args(argv)
    dev, size = torch.device(args.device), args.size
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to measure (the gpu section is left as it is)")
        return 1
    cuda = dev.type == "cuda"
    card = torch.cuda.get_device_name(dev) if cuda else "CPU (smoke run, not a GPU number)"
    torch.manual_seed(0)
    n = args.batch * 8
    raw = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8)
    y = torch.randint(0, 2, (n,))
    images = ImageArray(raw, torch.ones(n, dtype=torch.bool), size)
    fmt = torch.channels_last if cuda else torch.contiguous_format
    x = normalize(raw.float().div(255)).to(dev).contiguous(memory_format=fmt)
    model, init = make_model(args.model, size, dev)
    model.to(memory_format=fmt)
    torch.backends.cudnn.benchmark = True
    yd = y.to(dev)
    bare_loop(model, x, yd, args.batch, 2)  # warm-up: cuDNN autotuning, allocator
    fascore_loop(model, images, y, args.batch, 2, False, dev)
    bare, ours, ours_aug = [], [], []
    for _ in range(args.rounds):
        bare.append(bare_loop(model, x, yd, args.batch, args.steps))
        ours.append(fascore_loop(model, images, y, args.batch, args.steps, False, dev))
        ours_aug.append(fascore_loop(model, images, y, args.batch, args.steps, True, dev))
    del x
    peak = float("nan")
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        fascore_loop(model, images, y, args.batch, 10, True, dev)
        peak = torch.cuda.max_memory_allocated() / 2**30
    cam = gradcam_ms(model, size, dev)
    b, f, fa = max(bare), max(ours), max(ours_aug)
    ok = "yes" if f / b >= TARGET else "no"
    body = (
        f"Card: **{card}**. {args.model} at {size} px, init {init}, batch {args.batch}, fp16 "
        f"autocast + gradient scaler, channels_last, Adam. Best of {args.rounds} alternating "
        f"rounds of {args.steps} steps; synthetic uint8 images ({n}), so only the pipeline and "
        "the model are measured.\n\n"
        "| loop | images/s | vs bare |\n|---|---:|---:|\n"
        f"| bare PyTorch loop, float data already on the GPU | {b:,.0f} | 1.000 |\n"
        f"| fascore `_epoch`, uint8 cache on the GPU, no augmentation | {f:,.0f} | {f / b:.3f} |\n"
        f"| fascore `_epoch`, uint8 cache on the GPU, GPU augmentation | {fa:,.0f} | "
        f"{fa / b:.3f} |\n\n"
        f"Target fascore / bare >= {TARGET:.2f} (same work, data included): **{ok}**. "
        f"Peak GPU memory of the fascore loop with augmentation (uint8 cache included): "
        f"{peak:.2f} GiB. Grad-CAM on the GPU (maps back on the host): "
        f"{cam[1]:.2f} ms/image at batch 1, {cam[16]:.2f} ms/image at batch 16."
    )
    print(body)
    if not args.no_write and cuda:
        write_section(
            "train-gpu",
            f"The paper-sized GPU path ({card})",
            "bash bench/gpu.sh (python -m bench.bench_gpu " + " ".join(argv or sys.argv[1:]) + ")",
            body,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
