"""The training loop on several processes: what `genmodels.training.train` does when torchrun starts it.

`torchrun --nproc-per-node N script.py` starts N copies of the same script and tells each its place through the
environment: WORLD_SIZE (N over all machines), RANK (0 … N-1) and LOCAL_RANK (its GPU on this machine). `train`
reads them; with WORLD_SIZE = 1 nothing here runs. With N > 1, data-parallel training (the README's section on GPUs
says how to launch it):

1. Start. One process group: gloo on CPUs, NCCL on GPUs (rank r computes on cuda:LOCAL_RANK). Rank 0's parameters
   go to every rank; the buffers (the energy model's replay buffer, the RBM's persistent chains) start as rank 0's
   and from then on are each rank's own (a resumed rank gets its own back). Every rank re-seeds its random
   generators from (seed, rank), so that each draws its own noise, chains and binarisations, while the generator
   that shuffles the data stays the same on all.
2. Each epoch. The same permutation on every rank; each global batch of `batch_size` examples is cut into N
   consecutive shards whose sizes differ by at most one, and rank r takes shard r. Every rank takes the same number
   of steps (a last batch with fewer examples than ranks is left out), so no rank waits for another.
3. Each step, the gradient of the global batch's mean loss. DistributedDataParallel averages the ranks' gradients
   during backward; with each rank's loss scaled by N·n_r/n (n_r examples in its shard, n in the batch),
       (1/N) Σ_r (N·n_r/n) ∇L_r = Σ_r (n_r/n) ∇L_r = ∇(mean loss over the batch),
   what one process computes on the whole batch. The loss goes through DDP's forward (which readies that
   all-reduce), never through the bare module; samplers (Langevin, Gibbs) call the bare module. A step that updates
   the model itself (the RBM's contrastive divergence) averages its statistics with `average`, weighted likewise.
4. Each epoch's end. The metrics' sums and counts are added over the ranks and the evaluation averaged, so every
   rank holds the same history; a non-finite value on any rank, or parameters that differ between ranks, stop every
   rank with the same message. Rank 0 alone prints and writes the checkpoint: the shared state once, every rank's
   own state (buffers, generators) gathered to it, and the world size, which a resumed run must match.

A rank that raises exits; torchrun sees it and stops the others, and a rank that meets the broken connection first
says so in one line (connection_broke, other_rank_failed). The failing rank's message is in its output and in
torchrun's summary.
"""

from __future__ import annotations

import atexit
import contextlib
import inspect
import os
import sys
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = ["World", "from_environment", "start", "shard", "rank_seed", "average", "add_over_ranks",
           "mean_over_ranks", "agree", "gather_to_leader", "broadcast_parameters", "data_parallel_loss",
           "connection_broke", "other_rank_failed"]


@dataclass(frozen=True)
class World:
    """This process's place among the processes of one training run: rank 0 … size-1."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        """Whether several processes train together."""
        return self.size > 1

    @property
    def leader(self) -> bool:
        """Rank 0: the one that prints and writes checkpoints."""
        return self.rank == 0


def from_environment() -> World:
    """The process's place: from the process group if one is running, else from the variables torchrun sets
    (WORLD_SIZE, RANK, LOCAL_RANK); a single process when they are unset."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))
    values = {}
    for name, default in (("WORLD_SIZE", 1), ("RANK", 0), ("LOCAL_RANK", 0)):
        text = os.environ.get(name, "").strip() or str(default)
        if not text.isdigit():
            raise ValueError(f"the environment variable {name}={text!r} must be a whole number >= 0 (torchrun sets "
                             f"it); unset it to train in one process")
        values[name] = int(text)
    world = World(values["RANK"], max(values["WORLD_SIZE"], 1), values["LOCAL_RANK"])
    if world.rank >= world.size:
        raise ValueError(f"RANK={world.rank} but WORLD_SIZE={world.size}: a rank runs from 0 to WORLD_SIZE - 1; "
                         "start the processes with torchrun, which sets both")
    return world


def start(device: torch.device) -> World:
    """The world of this run, with its process group started if several processes train (gloo for the CPU, NCCL
    for CUDA, from the environment torchrun sets)."""
    world = from_environment()
    if world.active and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        # Ended before the interpreter's own teardown, which would kill gloo's threads mid-flight (an abort).
        atexit.register(_end_process_group)
        sys.excepthook = _noting_failure(sys.excepthook)
    return world


_failed = False  # this rank ends with an uncaught exception: it must not wait for the others at exit


def _noting_failure(hook):
    def note(*exc_info):
        global _failed
        _failed = True
        hook(*exc_info)
    return note


def _end_process_group() -> None:
    """At exit, the ranks meet, then each ends its process group. Without the meeting, a rank that is done first
    closes its connections while another's gloo threads still read from them: that rank aborts ("terminate called
    without an active exception"), after its work, and torchrun reports the run as failed (seen under load). A
    rank that failed does not wait; a rank that finds another gone (its connection closed) ends at once."""
    if not dist.is_initialized():
        return
    if not _failed:
        with contextlib.suppress(RuntimeError):  # another rank failed or left
            if dist.get_backend() == "gloo":
                dist.monitored_barrier(timeout=timedelta(seconds=60))
            else:
                dist.barrier()
    dist.destroy_process_group()


def shard(batch: torch.Tensor, world: World) -> torch.Tensor:
    """Rank r's part of a global batch (of indices): the r-th of `world.size` consecutive pieces whose sizes differ
    by at most one."""
    return batch.tensor_split(world.size)[world.rank]


def rank_seed(seed: int, rank: int) -> int:
    """A seed for rank `rank`'s generators, derived from `seed` so that no two ranks draw the same stream."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1, np.uint64)[0] % 2**63)


@torch.no_grad()
def average(tensors, weight: float) -> list[torch.Tensor]:
    """Σ_r w_r·t_r / Σ_r w_r over the ranks, for each tensor t (w_r: this rank's `weight`, its number of examples,
    say): one all-reduce of all of them. The RBM's CD step averages its statistics with it."""
    tensors = list(tensors)
    flat = torch.cat([t.reshape(-1).float() * weight for t in tensors]
                     + [torch.tensor([float(weight)], device=tensors[0].device)])
    dist.all_reduce(flat)
    values = (flat[:-1] / flat[-1]).split([t.numel() for t in tensors])
    return [v.reshape(t.shape).to(t.dtype) for v, t in zip(values, tensors, strict=True)]


def add_over_ranks(sums: dict[str, float], counts: dict[str, int]) -> tuple[dict[str, float], dict[str, int]]:
    """Each metric's sum and count over the examples of all ranks (a metric some ranks did not report counts 0)."""
    everyone = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, (sums, counts))
    total_sums: dict[str, float] = {}
    total_counts: dict[str, int] = {}
    for rank_sums, rank_counts in everyone:
        for name in rank_sums:
            total_sums[name] = total_sums.get(name, 0.0) + rank_sums[name]
            total_counts[name] = total_counts.get(name, 0) + rank_counts[name]
    return total_sums, total_counts


def mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """The mean over the ranks of each value (of an evaluation every rank made)."""
    everyone = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, values)
    return {name: sum(rank_values[name] for rank_values in everyone) / len(everyone) for name in values}


@torch.no_grad()
def agree(found: str | None, model: nn.Module, world: World) -> str | None:
    """At an epoch's end: the first rank's report of a non-finite value (`found`, None where all is finite), or a
    report that the ranks' parameters differ; None when every rank is fine. Every rank gets the same answer."""
    fingerprint = [float(p.double().sum()) for p in model.parameters()]
    everyone = [None] * world.size
    dist.all_gather_object(everyone, (found, fingerprint))
    for rank, (report, _) in enumerate(everyone):
        if report is not None:
            return f"{report} (on rank {rank})"
    if any(theirs != everyone[0][1] for _, theirs in everyone):
        return ("the ranks' parameters differ: a step_fn must average its update over the ranks "
                "(genmodels.distributed.average, as rbm.cd_step_fn does)")
    return None


def gather_to_leader(state) -> list | None:
    """Every rank's `state` (tensors and plain containers), as a list on rank 0; None on the others."""
    everyone = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(state, everyone, dst=0)
    return everyone


@torch.no_grad()
def broadcast_parameters(model: nn.Module) -> None:
    """Rank 0's parameters to every rank (the buffers stay each rank's own)."""
    for p in model.parameters():
        dist.broadcast(p.data, src=0)


class _Loss(nn.Module):
    """The training loss as a module, so that DistributedDataParallel's forward runs it: loss_fn(batch)."""

    def __init__(self, model: nn.Module, loss_fn):
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, batch):
        return self.loss_fn(batch)


def data_parallel_loss(model: nn.Module, loss_fn, device: torch.device) -> DistributedDataParallel:
    """loss_fn(batch) -> (loss, metrics) run through DistributedDataParallel, so that backward averages the
    gradients over the ranks. The buffers (a replay buffer, persistent chains) stay each rank's own at every forward,
    where DDP's default would copy rank 0's over them at every step; `train` wraps before it resumes, so that the
    copy DDP makes when it starts does not overwrite a rank's restored buffers."""
    # PyTorch 2.13 renamed broadcast_buffers (now deprecated, with a warning) to forward_sync_buffers.
    keep_buffers = ({"forward_sync_buffers": False} if "forward_sync_buffers" in _ddp_parameters
                    else {"broadcast_buffers": False})
    return DistributedDataParallel(_Loss(model, loss_fn), device_ids=[device] if device.type == "cuda" else None,
                                   **keep_buffers)


_ddp_parameters = inspect.signature(DistributedDataParallel.__init__).parameters


_BROKEN_CONNECTION = ("Connection closed by peer", "Connection reset by peer", "NCCL communicator was aborted")


def connection_broke(error: Exception) -> bool:
    """Whether `error` is a collective that broke because another process went away: one of torch.distributed's
    own errors, or the plain RuntimeError gloo raises from inside backward's all-reduce."""
    return isinstance(error, dist.DistError) or any(text in str(error) for text in _BROKEN_CONNECTION)


def other_rank_failed(error: Exception, world: World) -> RuntimeError:
    """The one-line error of a rank whose collective broke because another rank stopped."""
    first_line = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
    return RuntimeError(f"rank {world.rank} stops: another process of this run failed or ended ({first_line}); "
                        "its own message is in the output above and in torchrun's summary")
