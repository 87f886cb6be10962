"""What the objectives share: their randomness, drawn on the generator's device (so one generator gives
the same draws wherever the data are) with times kept in float64 on the CPU, the step count of a
discrete process, and the squared norm of a residual per sample."""

from __future__ import annotations

import torch
from torch import Tensor

from ...core.processes import Process
from ...core.tensors import generator_device

__all__ = ["generator_device", "uniform64", "normal64", "randint_from", "num_steps", "sq_norm"]


def uniform64(n: int, generator: torch.Generator | None) -> Tensor:
    """``n`` draws of ``U[0, 1)`` in float64, made on the generator's device, returned on the CPU."""
    return torch.rand(n, generator=generator, dtype=torch.float64, device=generator_device(generator)).cpu()


def normal64(n: int, generator: torch.Generator | None) -> Tensor:
    """``n`` draws of ``N(0, 1)`` in float64, made on the generator's device, returned on the CPU."""
    return torch.randn(n, generator=generator, dtype=torch.float64, device=generator_device(generator)).cpu()


def randint_from(generator: torch.Generator | None, low: int, high: int, shape: tuple[int, ...]) -> Tensor:
    """Integers uniform on ``low..high - 1`` (int64, ``shape``), on the generator's device."""
    return torch.randint(low, high, shape, generator=generator, device=generator_device(generator))


def num_steps(process: Process) -> int | None:
    """``T`` of a discrete schedule (``DDPMSchedule``), ``None`` for a continuous process."""
    return getattr(process, "num_steps", None)


def sq_norm(r: Tensor) -> Tensor:
    """``||r||^2`` per sample: ``r`` (N, D) -> (N,), a sum over dimensions."""
    return (r**2).sum(1)
