"""CUDA checks (skipped without a GPU; `bash bench/gpu.sh` runs them on a CUDA machine)."""

import pytest
import torch

from fascore.config import RunConfig
from fascore.train.loop import make_method
from fascore.train.methods import METHODS, Batch
from fascore.train.models import create_model

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("name", ["source_only", "distill", "kd"])
def test_amp_step_on_cuda(name):
    """The trainer's own AMP set-up (``loop.make_method``), then one step in mixed precision."""
    dev = torch.device("cuda")
    cfg = RunConfig(method=name, data=("x",))
    teacher = create_model("alexnet", input_size=112) if METHODS.get(name).needs_teacher else None
    method = make_method(cfg, create_model("alexnet", input_size=112), teacher, dev)
    assert method.amp and method.scaler.is_enabled()
    x = torch.randn(16, 3, 112, 112, device=dev)
    y = torch.tensor([0, 1] * 8, device=dev)
    logs = method.update(Batch(x, y, x.flip(0), y.flip(0)))
    assert all(torch.isfinite(torch.tensor(v)) for v in logs.values())


def test_training_run_on_cuda(tmp_path):
    from fascore.runs import RunStore
    from fascore.train import loop as training
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
