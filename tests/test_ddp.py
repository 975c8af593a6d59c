"""One run on two gloo processes (torchrun, CPU) against one process; sharding; rank handling.

Tolerance of the comparison: each epoch's mean training loss and every saved score agree within
2e-4 absolute (float32 rounding of a gradient summed over two half batches instead of one batch,
carried through a few Adam steps). Dropout is switched off in both (tests/ddp_worker.py): its
masks are drawn per process, so with it no two runs could agree.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fascore.config import RunConfig
from fascore.data.images import FaceBatches, ImageArray
from fascore.errors import FascoreError
from fascore.store.runs import RunStore
from fascore.train import build, distributed
from fascore.train import loop as training
from tests import ddp_worker
from tests.helpers import stripe_manifest

ROOT = Path(__file__).resolve().parent.parent
TOL = 2e-4
FLAGS = dict(
    method="source_only", shots=0, select="source_dev", epochs=3, steps_per_epoch=3,
    batch_size=16, image_size=32, analysis=False, n_boot=20, device="cpu", seed=3,
)  # fmt: skip


def test_rank_comes_from_torchrun_then_srun_variables():
    assert distributed.from_env({}) == distributed.Context(0, 1, 0)
    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "SLURM_PROCID": "0"}
    assert distributed.from_env(env) == distributed.Context(3, 4, 1)
    srun = {"SLURM_PROCID": "1", "SLURM_STEP_NUM_TASKS": "2", "SLURM_LOCALID": "1"}
    assert distributed.from_env(srun) == distributed.Context(1, 2, 1)
    # a batch script's SLURM_NTASKS alone is no world: only srun's job step has tasks
    assert distributed.from_env({"SLURM_PROCID": "0", "SLURM_NTASKS": "4"}).world == 1
    with pytest.raises(FascoreError, match="rank 2 of a world of 2"):
        distributed.from_env({"RANK": "2", "WORLD_SIZE": "2"})


def test_shards_together_are_the_global_batch_with_its_augmentation():
    n, size = 40, 16
    images = ImageArray(
        torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8),
        torch.ones(n, dtype=torch.bool),
        size,
    )
    labels = np.arange(n) % 2

    def batches(shard):
        fb = FaceBatches(images, labels, batch_size=8, augment=True, infinite=True, seed=5,
                         shard=shard)  # fmt: skip
        it = iter(fb)
        return [next(it) for _ in range(7)]  # crosses a reshuffle (40 / 8 = 5 per pass)

    whole, parts = batches((0, 1)), [batches((r, 2)) for r in range(2)]
    for b, (x, y, idx) in enumerate(whole):
        torch.testing.assert_close(torch.cat([parts[0][b][0], parts[1][b][0]]), x)
        assert torch.equal(torch.cat([parts[0][b][2], parts[1][b][2]]), idx)
        assert torch.equal(torch.cat([parts[0][b][1], parts[1][b][1]]), y)
    with pytest.raises(FascoreError, match="does not split over 3"):
        FaceBatches(images, labels, batch_size=8, infinite=True, shard=(0, 3))


def test_quiet_run_reads_but_never_writes(tmp_path):
    run = RunStore(tmp_path).run("r")
    run.write_config({"a": 1})
    quiet = distributed.QuietRun(run)
    before = sorted(p.name for p in run.path.iterdir())
    quiet.update_status(state="running")
    quiet.log("hello")
    quiet.append_metrics({"epoch": 1})
    quiet.write_json("final", {})
    quiet.reset()
    quiet.mark_done()
    assert sorted(p.name for p in run.path.iterdir()) == before
    assert quiet.config() == {"a": 1} and quiet.path == run.path


def _cli(store: Path, manifest: str, *extra: str, env_extra=None) -> subprocess.CompletedProcess:
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in FLAGS.items() if not isinstance(v, bool)]
    flags += ["--no-analysis"]
    argv = [sys.executable, "-m", "tests.ddp_worker", "train", "--devices", "2", "--quiet"]
    argv += ["--data", manifest, "--source-domains", "studio", "--target-domain", "phone"]
    env = {**os.environ, "FASCORE_RUNS_DIR": str(store), **(env_extra or {})}
    env.pop("WORLD_SIZE", None)
    return subprocess.run(
        argv + flags + list(extra), cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )


@pytest.mark.ddp
def test_two_gloo_processes_follow_the_one_process_loss_curve_and_resume(tmp_path, monkeypatch):
    manifest = str(stripe_manifest(tmp_path / "data"))
    cfg = RunConfig(data=(manifest,), **FLAGS)
    # one process, in this process, dropout off as in the worker
    monkeypatch.setattr(build, "create_model", ddp_worker.no_dropout)
    ref = training.train(cfg, RunStore(tmp_path / "one"), progress=False)
    assert ref.state() == "done"

    # two processes through the CLI (--devices 2 -> torchrun); rank 0 crashes after epoch 2
    store = RunStore(tmp_path / "two")
    crashed = _cli(store.root, manifest, env_extra={"DDP_TEST_CRASH_AFTER": "2"})
    assert crashed.returncode != 0, crashed.stdout + crashed.stderr
    run = store.get(cfg.run_id())  # the same run id: the process count is not in the config
    assert run.state() == "failed"
    assert torch.load(run.file("checkpoint"), weights_only=True)["epoch"] == 1
    resumed = _cli(store.root, manifest, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert run.state() == "done"

    # rank 0 alone wrote: one metrics line per epoch, each log line once
    got = run.metrics()
    assert [m["epoch"] for m in got] == [1, 2, 3]  # resume truncates to the checkpoint (issue 13)
    log = run.log_tail(200)
    assert log.count("epoch 3:") == 1 and log.count("resumed after epoch 1") == 1
    assert log.count("DDP: 2 processes, each 8 of every batch") == 2  # both launches really

    want = {m["epoch"]: m["train"]["total"] for m in ref.metrics()}
    for m in got:
        assert abs(m["train"]["total"] - want[m["epoch"]]) < TOL, (m["epoch"], got, want)
    a, b = ref.read_table("scores"), run.read_table("scores")
    np.testing.assert_allclose(b["score"], a["score"], rtol=0, atol=TOL)


@pytest.fixture()
def one_rank_group(tmp_path):
    """A real gloo process group of one rank (DDP's reducer runs; nothing to wait for)."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


@pytest.mark.ddp
@pytest.mark.parametrize("name", ["source_only", "target_only", "kd", "distill"])
def test_ddp_wrapped_methods_step_like_plain_ones(one_rank_group, name):
    """Every method's step goes through DDP once (``model(x)`` or ``features`` then ``head``):
    the reducer sees every parameter's gradient, and the steps equal the unwrapped model's."""
    from fascore.train.methods import METHODS, Batch
    from fascore.train.models import create_model

    cfg = RunConfig(method=name, data=("x",), image_size=32, lr=1e-3)
    cls = METHODS.get(name)
    torch.manual_seed(0)
    x = torch.randn(8, 3, 32, 32)
    y = torch.tensor([0, 1] * 4)
    out = []
    for wrapped in (False, True):
        torch.manual_seed(1)
        teacher = create_model("alexnet_mini", input_size=32) if cls.needs_teacher else None
        model = create_model("alexnet_mini", input_size=32)
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
        method = cls(cfg, model, teacher)
        if wrapped:
            distributed.wrap(model, distributed.Context(0, 2, 0), torch.device("cpu"))
            assert "forward" in model.__dict__
        logs = [method.update(Batch(x, y, x.flip(0), y.flip(0))) for _ in range(3)]
        distributed.unwrap(model)
        assert "forward" not in model.__dict__ and "_fascore_ddp" not in model.__dict__
        out.append((logs, model.state_dict()))
    (plain, s0), (ddp, s1) = out
    assert [list(d) for d in plain] == [list(d) for d in ddp]
    for a, b in zip(plain, ddp, strict=True):
        assert a == pytest.approx(b, abs=1e-5)
    assert list(s0) == list(s1)  # the same keys: checkpoints do not see DDP
    for k in s0:
        torch.testing.assert_close(s1[k], s0[k], atol=1e-5, rtol=1e-4)
