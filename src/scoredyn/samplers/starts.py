"""Where particles start: a distribution at ``t_max`` (or any start time) to sample from.

The usual start ``N(0, sigma(t_max)^2 I)`` ignores where the data is. Under a VE/EDM process
``p_{t_max}`` is centred on the data mean, not 0; a deterministic sampler carries that offset
to the end and more steps never remove it. So scoredyn offers:

- ``exact``: the exact marginal ``p_{t_max}`` of a mixture target (``target.noised``);
- ``moments``: a Gaussian with the data's mean ``m`` and covariance ``C`` pushed through the
  process, ``N(alpha m, alpha^2 C + sigma^2 I)`` (for learned fields, from training data);
- ``standard``: ``N(0, sigma(t)^2 I)``, the textbook start;
- ``ladder``: ``N(0, LADDER_SIGMA_MAX^2 I)``, the top of the annealed particle samplers' ladder of
  noise levels, whatever the process and time (annealed Langevin starts its chains broad).

Each returns a ``GaussianMixture`` (one component for the last two), so a start is sampled with
the same exact code as every other distribution.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..core.processes import Process
from ..core.targets import GaussianMixture
from ..core.tensors import as_time
from .grids import LADDER_SIGMA_MAX

__all__ = ["START_KINDS", "start_distribution"]

START_KINDS = ("exact", "moments", "standard", "ladder")


def start_distribution(
    kind: str,
    process: Process,
    t: float | Tensor,
    *,
    target: GaussianMixture | None = None,
    data: Tensor | None = None,
    dim: int | None = None,
) -> GaussianMixture:
    """The start distribution of ``kind`` at time ``t``.

    Args:
        kind: ``exact`` (needs ``target``), ``moments`` (needs ``target`` or ``data``, an
            ``(N, D)`` sample), ``standard`` or ``ladder`` (need ``dim``, ``target`` or ``data``).
        process: the forward process.
        t: the start time (usually ``grid[0]``).
    """
    t = as_time(t)
    if kind == "exact":
        if target is None:
            raise ValueError("start 'exact' needs an exact target (a GaussianMixture)")
        return target.noised(process, t)
    if kind == "moments":
        if target is not None:
            mean, cov = target.mean(), target.covariance()
        elif data is not None:
            d = data.to(torch.float64)
            mean, cov = d.mean(0), torch.atleast_2d(torch.cov(d.T))
        else:
            raise ValueError("start 'moments' needs a target or data")
        return GaussianMixture([1.0], mean[None], cov[None], name="moments").noised(process, t)
    if kind in ("standard", "ladder"):
        d = dim or (target.dim if target is not None else (data.shape[1] if data is not None else None))
        if d is None:
            raise ValueError(f"start {kind!r} needs the dimension")
        s = float(process.sigma(t)) if kind == "standard" else LADDER_SIGMA_MAX
        eye = torch.eye(d, dtype=torch.float64)
        return GaussianMixture([1.0], torch.zeros(1, d, dtype=torch.float64), (s**2 * eye)[None], name=kind)
    raise ValueError(f"start must be one of {', '.join(START_KINDS)}, got {kind!r}")
