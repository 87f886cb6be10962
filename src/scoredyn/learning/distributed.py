"""Data-parallel training across processes: the rank of this process, joining the process group that
``torchrun`` set up (gloo on the CPU, NCCL on CUDA), all-reduce, barrier, and the DDP wrapper.

A single process (no ``WORLD_SIZE`` or ``WORLD_SIZE=1``) never touches ``torch.distributed``."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = ["Ranks", "init_distributed", "local_device", "all_reduce", "barrier", "finish", "data_parallel"]


@dataclass(frozen=True)
class Ranks:
    """This process's ``rank`` among ``world`` processes; rank 0 is the ``main`` one (it writes files)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> tuple[Ranks, torch.device]:
    """Join the process group ``torchrun`` set up, if any: this process's ranks and its device
    (``cuda:LOCAL_RANK`` on CUDA, else ``device``)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks(), torch.device(device)
    import torch.distributed as dist

    cuda = device.startswith("cuda")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    if cuda:
        local = local_device(device)
        torch.cuda.set_device(local)
        return Ranks(dist.get_rank(), world), local
    return Ranks(dist.get_rank(), world), torch.device("cpu")


def local_device(device: str) -> torch.device:
    """This process's device: on CUDA the GPU of its local rank (``cuda:LOCAL_RANK``, ``cuda:0`` outside
    ``torchrun``), else ``device``."""
    if device.startswith("cuda"):
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device(device)


def all_reduce(x: Tensor, ranks: Ranks, op: str = "sum") -> Tensor:
    """``x`` summed (``op="sum"``) or minimised (``"min"``) over the processes; a copy, ``x`` is kept."""
    if ranks.world == 1:
        return x
    import torch.distributed as dist

    x = x.clone()
    dist.all_reduce(x, op=dist.ReduceOp.MIN if op == "min" else dist.ReduceOp.SUM)
    return x


def barrier(ranks: Ranks) -> None:
    """Wait until every process gets here (nothing to wait for in a single process)."""
    if ranks.world > 1:
        import torch.distributed as dist

        dist.barrier()


def finish(ranks: Ranks) -> None:
    """Leave the process group once every process is done (its background threads stop before the
    interpreter exits; a process that just returns may abort in them)."""
    if ranks.world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()


def data_parallel(net: nn.Module, ranks: Ranks, device: torch.device) -> nn.Module:
    """``net`` wrapped in ``DistributedDataParallel`` (gradients averaged over the processes), or ``net``
    itself in a single process."""
    if ranks.world == 1:
        return net
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
