"""CUDA checks (skipped without a GPU; `bash bench/gpu.sh` runs them on a CUDA machine)."""

import pytest
import torch

from fascore.config import RunConfig
from fascore.data.images import FaceBatches, ImageArray
from fascore.train import loop as training
from fascore.train.build import make_method
from fascore.train.methods import METHODS, Batch
from fascore.train.models import create_model

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("name", ["source_only", "distill", "kd"])
def test_amp_step_on_cuda(name):
    """The trainer's own AMP set-up (``build.make_method``), then one step in mixed precision."""
    dev = torch.device("cuda")
    cfg = RunConfig(method=name, data=("x",))
    teacher = create_model("alexnet", input_size=112) if METHODS.get(name).needs_teacher else None
    method = make_method(cfg, create_model("alexnet", input_size=112), teacher, dev)
    assert method.amp and method.scaler.is_enabled()
    w = method.model.net.features[0].weight
    assert w.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(16, 3, 112, 112, device=dev).contiguous(memory_format=torch.channels_last)
    y = torch.tensor([0, 1] * 8, device=dev)
    logs = method.update(Batch(x, y, x.flip(0), y.flip(0)))
    assert all(torch.isfinite(torch.tensor(v)) for v in logs.values())


def test_uint8_cache_on_the_gpu_gives_the_cpu_batches():
    n, size = 64, 48
    images = ImageArray(
        torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8),
        torch.ones(n, dtype=torch.bool),
        size,
    )
    on_gpu = images.on_device("cuda")
    assert on_gpu.images.is_cuda and not images.images.is_cuda
    labels = torch.arange(n) % 2
    cpu = FaceBatches(images, labels, batch_size=16, augment=True, seed=1)
    gpu = FaceBatches(
        on_gpu, labels, batch_size=16, augment=True, seed=1, device="cuda", channels_last=True
    )
    for (xc, yc, ic), (xg, yg, ig) in zip(cpu, gpu, strict=True):
        assert xg.is_cuda and xg.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(ic, ig) and torch.equal(yc, yg.cpu())
        torch.testing.assert_close(xg.cpu(), xc, atol=1e-4, rtol=1e-4)


def test_training_run_on_cuda(tmp_path):
    from fascore.store.runs import RunStore
    from tests.helpers import stripe_manifest

    manifest = stripe_manifest(tmp_path / "data")
    cfg = RunConfig(
        method="source_only",
        data=(str(manifest),),
        shots=0,
        select="source_dev",
        epochs=1,
        batch_size=16,
        analysis=False,
        device="cuda",
        n_boot=20,
    )
    run = training.train(cfg, RunStore(tmp_path / "runs"), progress=False)
    assert run.state() == "done"
