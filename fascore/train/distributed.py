"""One run on several processes (``torchrun``, or ``srun`` inside a Slurm allocation), with DDP.

The trainer asks ``context()`` who it is. Without torchrun's (or Slurm's) environment it is rank 0
of a world of 1 and every hook here is a no-op, so single-process training is unchanged.

With a world of N processes:

- every rank builds the same seeded streams and takes its own contiguous 1/N of each global batch
  (``FaceBatches(shard=(rank, N))``): ``batch_size`` stays the *global* batch, so a run's result
  and its run id do not depend on how many processes trained it;
- the trained model is wrapped in ``DistributedDataParallel``: gradients are averaged over ranks
  during ``backward`` (each rank's loss is a mean over its shard, so the average equals the
  global batch's gradient for a per-sample loss such as cross-entropy);
- the frozen teacher is loaded by every rank from the run store (replicated, never synchronised);
- rank 0 alone writes the run folder (status, log, metrics, checkpoints, scores, analysis): the
  other ranks get a ``QuietRun`` whose writes do nothing, and skip evaluation;
- a cancel request seen by rank 0, or a non-finite loss on any rank, stops every rank at the
  same step.

Backends: NCCL on CUDA (one GPU per rank, ``cuda:LOCAL_RANK``), gloo on the CPU.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from fascore.errors import FascoreError
from fascore.store.runs import Run

#: How long a rank waits for the others (rank 0's evaluation and analysis run in between).
TIMEOUT = timedelta(minutes=30)


@dataclass(frozen=True)
class Context:
    """Who this process is in a run: ``rank`` of ``world`` (``local_rank`` on its node)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def shard(self) -> tuple[int, int]:
        return (self.rank, self.world)

    def describe(self, device: torch.device) -> str:
        """Where the run trains, for its status line: ``cpu``, ``cuda x2`` ..."""
        return f"{device.type} x{self.world}" if self.active else device.type

    def seed_epoch(self, seed: int, epoch: int) -> None:
        """Each rank its own dropout masks, fixed by (seed, rank, epoch) so a resume repeats
        them; one process keeps the run's single seed (set once at the start)."""
        if self.active:
            torch.manual_seed(seed * 1_000_003 + self.rank * 1_009 + epoch)

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block first (e.g. decodes the image cache), then the others."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()

    def any_of(self, *flags: bool) -> tuple[bool, ...]:
        """Each flag, true on every rank when it is true on any (one tiny all-reduce per call
        when distributed), so all ranks take the same branch."""
        if not self.active:
            return tuple(bool(f) for f in flags)
        t = torch.tensor([int(bool(f)) for f in flags], dtype=torch.int32, device=_comm_device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return tuple(bool(v) for v in t.tolist())

    def mean(self, values: Mapping[str, float]) -> dict[str, float]:
        """The mean over ranks of each value (same keys, same order on every rank)."""
        if not self.active or not values:
            return dict(values)
        t = torch.tensor(list(values.values()), dtype=torch.float64, device=_comm_device())
        dist.all_reduce(t)
        return {k: float(v) / self.world for k, v in zip(values, t.tolist(), strict=True)}


def _comm_device() -> torch.device:
    """Where collective tensors live: NCCL needs them on this rank's GPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def from_env(env: Mapping[str, str] | None = None) -> Context:
    """The rank from torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK), else from those ``srun``
    sets in a job step (SLURM_PROCID, SLURM_STEP_NUM_TASKS, SLURM_LOCALID: one task per GPU);
    else rank 0 of 1. A batch script's own SLURM_NTASKS is not read: only a step's tasks exist."""
    env = os.environ if env is None else env
    keys = (
        ("RANK", "WORLD_SIZE", "LOCAL_RANK")
        if "WORLD_SIZE" in env
        else ("SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_LOCALID")
    )
    try:
        rank, world, local = (int(env.get(k, "0" if k != keys[1] else "1")) for k in keys)
    except ValueError:
        raise FascoreError(f"cannot read the process rank from {', '.join(keys)}") from None
    if world < 1 or not 0 <= rank < world:
        raise FascoreError(f"rank {rank} of a world of {world} ({', '.join(keys)}) makes no sense")
    return Context(rank, world, local)


def _slurm_rendezvous(env: dict[str, str]) -> None:
    """srun without torchrun sets no MASTER_ADDR/PORT: use the launching node and the job id."""
    if "WORLD_SIZE" in env:
        return
    env.setdefault("MASTER_ADDR", env.get("SLURM_LAUNCH_NODE_IPADDR", "127.0.0.1"))
    env.setdefault("MASTER_PORT", str(20000 + int(env.get("SLURM_JOB_ID", "0")) % 20000))


def context(device_type: str) -> Context:
    """This process's context; joins the process group the first time (gloo, or NCCL on CUDA)."""
    ctx = from_env()
    if not ctx.active or dist.is_initialized():
        return ctx
    if not dist.is_available():
        raise FascoreError("this PyTorch build has no torch.distributed; train on one process")
    _slurm_rendezvous(os.environ)  # type: ignore[arg-type]
    backend = "nccl" if device_type == "cuda" else "gloo"
    if backend == "nccl":
        if torch.cuda.device_count() <= ctx.local_rank:
            raise FascoreError(
                f"rank {ctx.rank} wants cuda:{ctx.local_rank}, but this node has "
                f"{torch.cuda.device_count()} GPU(s): start at most that many processes per node"
            )
        torch.cuda.set_device(ctx.local_rank)
    dist.init_process_group(backend, rank=ctx.rank, world_size=ctx.world, timeout=TIMEOUT)
    return ctx


def rank_device(device: torch.device, ctx: Context) -> torch.device:
    """One GPU per rank: ``cuda:LOCAL_RANK``; the CPU stays the CPU."""
    if ctx.active and device.type == "cuda":
        return torch.device("cuda", ctx.local_rank)
    return device


def close() -> None:
    """Leave the process group (at the end of a distributed run)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def check_batch(batch_size: int, ctx: Context) -> None:
    if batch_size % ctx.world:
        raise FascoreError(
            f"batch size {batch_size} is the global batch and must split evenly over "
            f"{ctx.world} processes; use a multiple of {ctx.world}"
        )


class _Student(nn.Module):
    """What DDP wraps: one call runs the model's ``forward`` or ``features`` (by class, so the
    instance-level redirects that ``wrap`` installs are not re-entered)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, part: str) -> torch.Tensor:
        cls = type(self.model)
        z = cls.features(self.model, x)
        return z if part == "features" else cls.head(self.model, z)


def wrap(model: nn.Module, ctx: Context, device: torch.device) -> None:
    """Route the model's ``forward`` and ``features`` through DDP (in place; a no-op on one
    process). The model object, its state-dict keys and ``head`` stay as they are: a method calls
    the model once per step (``model(x)`` or ``features`` then ``head``), DDP prepares its
    gradient reduction in that call, and every parameter's gradient, the head's included, is
    averaged when ``backward`` reaches it. Buffers are synchronised once, at the start, not in
    every forward (no collective in forward), so evaluation on rank 0 alone cannot hang."""
    if not ctx.active:
        return
    ids = [device.index] if device.type == "cuda" else None
    ddp = nn.parallel.DistributedDataParallel(
        _Student(model), device_ids=ids, forward_sync_buffers=False
    )
    # Instance attributes shadow the class's methods; plain functions, not Modules.
    object.__setattr__(model, "_fascore_ddp", ddp)
    object.__setattr__(model, "forward", lambda x: ddp(x, part="forward"))
    object.__setattr__(model, "features", lambda x: ddp(x, part="features"))


@contextlib.contextmanager
def data_parallel(
    model: nn.Module,
    ctx: Context,
    device: torch.device,
    batch_size: int,
    log: Callable[[str], None],
) -> Iterator[None]:
    """The trainer's one call: DDP around ``model`` for the block (``wrap``), the plain model
    after it, also on an error (``unwrap``); on one process, nothing at all."""
    if ctx.active:
        log(f"DDP: {ctx.world} processes, each {batch_size // ctx.world} of every batch")
    wrap(model, ctx, device)
    try:
        yield
    finally:
        unwrap(model)


def unwrap(model: nn.Module) -> None:
    """Undo ``wrap``: the plain model again (for rank 0's evaluation, scoring and analysis)."""
    for name in ("forward", "features", "_fascore_ddp"):
        model.__dict__.pop(name, None)


@contextlib.contextmanager
def unwrapped(model: nn.Module) -> Iterator[None]:
    """The plain model inside the block, DDP again after it."""
    saved = {k: model.__dict__[k] for k in ("forward", "features") if k in model.__dict__}
    for k in saved:
        del model.__dict__[k]
    try:
        yield
    finally:
        model.__dict__.update(saved)


class QuietRun:
    """A run folder as seen by ranks other than 0: reads pass through, writes do nothing."""

    _WRITES = (
        "write_config", "write_json", "append_metrics", "log", "write_table", "write_arrays",
        "reset", "mark_done", "clear_cancel", "request_cancel",
    )  # fmt: skip

    def __init__(self, run: Run) -> None:
        self._run = run

    def update_status(self, **fields) -> dict:
        return self._run.status()

    def __getattr__(self, name: str):
        if name in self._WRITES:
            return lambda *a, **k: None
        return getattr(self._run, name)


def torchrun_argv(devices: int, run_id: str, *, resume: bool, quiet: bool) -> list[str]:
    """The command that trains the stored run ``run_id`` on ``devices`` local processes:
    ``python -m torch.distributed.run --standalone --nproc-per-node N -m ENTRY train --run ID``.

    ENTRY is ``fascore``, or the module this process was started as when that module says
    ``FASCORE_ENTRY = True`` (a wrapper around ``fascore.cli.main``, e.g. in the tests)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    entry = spec.name if spec is not None and getattr(main, "FASCORE_ENTRY", False) else "fascore"
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    # "--run-id", not "--run": torchrun would read that as an abbreviation of its --run-path
    argv += ["--nproc-per-node", str(devices), "-m", entry, "train", "--run-id", run_id]
    return argv + (["--resume"] if resume else []) + (["--quiet"] if quiet else [])


def check_devices(devices: int, device_type: str) -> None:
    """Refuse a process count the machine cannot give (one GPU per process on CUDA)."""
    if devices < 1:
        raise FascoreError(f"--devices must be 1 or more, not {devices}")
    if device_type == "cuda" and devices > torch.cuda.device_count():
        raise FascoreError(
            f"--devices {devices} asked for, but {torch.cuda.device_count()} GPU(s) are visible; "
            f"use --devices {max(1, torch.cuda.device_count())} or fewer"
        )
