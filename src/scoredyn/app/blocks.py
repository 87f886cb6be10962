"""Sampling in particle blocks, split across processes: the same samples for any number of processes.

The ``N`` particles are cut into blocks of ``block_size``; block ``b`` is drawn by ``sampling.sample``
with its own seed, ``block_seed(seed, b)``, so its start and every noise draw depend on the block alone,
never on which process runs it. Under ``torchrun`` (``WORLD_SIZE > 1``) rank ``r`` runs blocks
``r, r + K, r + 2K, ...`` and rank 0 gathers them in block order: the particles are those of one process
running every block, for every ``K`` (gloo on the CPU, NCCL on GPUs, through ``learning.distributed``).

Samplers whose particles interact (SVGD's kernel sums, SMC's resampling) are refused: a block would be
its own population, and the law would depend on the block size.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..core.tensors import positive_int
from ..learning.distributed import Ranks, all_reduce
from ..util.seeds import block_seed
from .sampling import WORKING_COPIES, check_memory, gib, sample
from .sources import as_source

__all__ = ["BLOCK_SIZE", "INTERACTING", "OUTPUT_COPIES", "block_ranges", "blocks_within_budget", "sample_blocks",
           "gather_blocks"]  # fmt: skip

BLOCK_SIZE = 8192  # particles per block: large enough for vectorized steps, small enough to share out
INTERACTING = frozenset({"svgd", "svgd-median", "smc"})
#: ``N x D`` float64 arrays of the finished samples held at once (the gathered blocks and the array written)
OUTPUT_COPIES = 2


def blocks_within_budget(n: int, dim: int, steps: int, levels: int, sampler: str, budget_gib: float) -> int | None:
    """``None`` when one pass over ``n`` particles fits ``budget_gib`` (``sampling.check_memory``); else the
    block size that bounds the run's memory: the largest power of two ``B`` with

        8 bytes x (OUTPUT_COPIES x N x D + WORKING_COPIES x B x D + grid points) <= budget,

    so the samples are those of ``sample_blocks(..., block_size=B)``, fixed by the budget. A sampler whose
    particles interact, or samples that alone do not fit, raise ``ValueError`` with the number."""
    try:
        check_memory(n, dim, steps, levels, budget_gib=budget_gib)
        return None
    except ValueError:
        if sampler in INTERACTING:
            raise
    points = steps * levels + 1
    free = budget_gib * 2**30 / 8 - OUTPUT_COPIES * n * dim - points  # float64 elements left for one block
    if free < WORKING_COPIES * dim:
        need = 8 * (OUTPUT_COPIES * n * dim + WORKING_COPIES * dim + points)
        raise ValueError(
            f"{n:,} samples in {dim} dimensions alone need about {gib(need)} GiB, above the "
            f"{budget_gib:g} GiB budget: use fewer particles, or raise the budget (--memory-gib)"
        )
    return min(1 << int(math.log2(free // (WORKING_COPIES * dim))), n)


def block_ranges(n: int, block_size: int = BLOCK_SIZE) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of the blocks of ``n`` particles."""
    positive_int(n, "n")
    positive_int(block_size, "block_size")
    return [(b * block_size, min(n, (b + 1) * block_size)) for b in range(math.ceil(n / block_size))]


def sample_blocks(
    target, sampler: str, *, n: int, seed: int = 0, block_size: int = BLOCK_SIZE, ranks: Ranks | None = None, **options
) -> tuple[Tensor | None, dict]:
    """Draw ``n`` particles of ``sampler`` in blocks (module docstring), this process's share of them when
    ``ranks`` has several processes; returns ``(x, settings)`` on rank 0 and ``(None, settings)`` elsewhere.

    Args:
        target, sampler, options: as ``sampling.sample`` takes them (``steps`` among the options).
        n: particles in all.
        seed: the run's seed; block ``b`` is drawn with ``block_seed(seed, b)``.
        block_size: particles per block.
        ranks: this process among the others (``learning.distributed.init_distributed``); one process
            when ``None``.
    """
    if sampler in INTERACTING:
        raise ValueError(
            f"{sampler}'s particles interact: it cannot be drawn in blocks or across processes; run it in one process"
        )
    ranks = ranks or Ranks()
    blocks = block_ranges(n, block_size)
    mine: dict[int, Tensor] = {}
    settings: dict = {}
    for b in range(ranks.rank, len(blocks), ranks.world):
        start, stop = blocks[b]
        result, settings = sample(target, sampler, n=stop - start, seed=block_seed(seed, b), **options)
        mine[b] = result.x.detach().cpu()
        settings["nfe"] = result.nfe
    x = gather_blocks(mine, blocks, ranks, as_source(target).dim, options.get("dtype", torch.float64))
    settings.update({"n": n, "seed": seed, "blocks": len(blocks), "block_size": block_size, "processes": ranks.world})
    settings.pop("diagnostics", None)  # per block; not one run's
    return x, settings


def gather_blocks(
    mine: dict[int, Tensor], blocks: list[tuple[int, int]], ranks: Ranks, dim: int, dtype: torch.dtype
) -> Tensor | None:
    """The blocks of every process, in block order, on rank 0 (``None`` elsewhere). Each process writes
    its blocks into a zero ``(N, D)`` tensor and the tensors are summed (``learning.distributed.all_reduce``,
    as ``estimate_likelihood`` gathers its rows): every entry is one block's value plus zeros, so the sum
    is exact (and nothing is pickled between the processes)."""
    if ranks.world == 1:
        return torch.cat([mine[b] for b in range(len(blocks))])
    full = torch.zeros(blocks[-1][1], dim, dtype=dtype)  # a process may hold no block (more processes than blocks)
    for b, x in mine.items():
        full[blocks[b][0] : blocks[b][1]] = x
    full = all_reduce(full, ranks)
    return full if ranks.main else None
