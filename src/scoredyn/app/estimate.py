"""The likelihood of a data set under a source — an exact mixture's field or a trained model — as
``scoredyn likelihood`` reports it: per-sample ``log p``, its mean and standard error, NFE, and bits
per dimension for dequantized discrete data.

The estimators are ``likelihood.log_likelihood`` (the PF-ODE, exact or Hutchinson divergence) and
``likelihood.variational_bound`` (the DDPM bound); this module picks the field, the prior, the
interval and the batches for them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..core.fields import AnalyticField, Field
from ..core.processes import DDPMSchedule, Process
from ..core.registry import resolve_process
from ..core.targets import GaussianMixture
from ..learning.distributed import Ranks, all_reduce
from ..likelihood import bits_per_dim, dequantize, log_likelihood, variational_bound
from ..samplers import start_distribution
from ..util.seeds import block_seed

__all__ = ["ESTIMATORS", "LikelihoodEstimate", "data_end_time", "estimate_likelihood", "source_field"]

ESTIMATORS = ("ode", "vlb")
TRAINED_SIGMA_MIN = 1e-3  # a network's score is not finite at sigma = 0: start the ODE at sigma_hat = 1e-3


@dataclass
class LikelihoodEstimate:
    """Per-sample ``log p`` (nats) with its summary; ``bits_per_dim`` for dequantized data."""

    logp: Tensor
    nfe: int
    estimator: str
    settings: dict = field(default_factory=dict)
    bits_per_dim: Tensor | None = None

    @property
    def mean(self) -> float:
        return float(self.logp.mean())

    @property
    def stderr(self) -> float:
        """The standard error of the mean over samples (it includes the probe and dequantization noise)."""
        n = self.logp.numel()
        return float(self.logp.std() / math.sqrt(n)) if n > 1 else float("nan")

    def to_dict(self) -> dict:
        doc = {
            "logp": self.logp.tolist(),
            "mean": self.mean,
            "stderr": self.stderr,
            "nfe": self.nfe,
            "estimator": self.estimator,
            "settings": self.settings,
        }
        if self.bits_per_dim is not None:
            bpd = self.bits_per_dim
            doc["bits_per_dim"] = {"mean": float(bpd.mean()), "stderr": float(bpd.std() / math.sqrt(bpd.numel()))}
        return doc


def source_field(source, process: str | None = None) -> tuple[Field, GaussianMixture, float]:
    """The field of ``source``, the prior at ``t_max``, and the default ``sigma_hat`` at the data end.

    An exact mixture: its exact field on ``process`` (default ``vp``), the exact ``p_{t_max}``, and
    ``sigma_hat = 0`` (the exact answer). A trained model: its own field and process, the Gaussian with
    the data's moments carried to ``t_max`` (the trained model's usual start), and ``1e-3``.
    """
    if isinstance(source, GaussianMixture):
        proc = resolve_process(process or "vp")
        prior = start_distribution("exact", proc, proc.t_max, target=source)
        return AnalyticField(source, proc), prior, 0.0
    if process is not None:
        raise ValueError("--process applies to an exact target; a trained model runs on its own process")
    own = source.field
    prior = start_distribution("moments", own.process, own.process.t_max, target=source.moments_law())
    return own, prior, TRAINED_SIGMA_MIN


def data_end_time(process: Process, sigma_min: float) -> float | None:
    """The ODE's data-end time: where ``sigma / alpha = sigma_min``, or ``None`` (``t_min``) for 0."""
    if sigma_min < 0:
        raise ValueError(f"sigma_min must be >= 0, got {sigma_min}")
    if sigma_min == 0:
        return None
    return float(process.sigma_hat_to_t(torch.tensor(sigma_min)))


def estimate_likelihood(
    source,
    x: Tensor,
    *,
    estimator: str = "ode",
    hutchinson: int = 0,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    sigma_min: float | None = None,
    dequantize_levels: int | None = None,
    process: str | None = None,
    batch: int = 1000,
    seed: int = 0,
    on_batch: Callable[[int], None] | None = None,
    ranks: Ranks | None = None,
    device: str | torch.device = "cpu",
) -> LikelihoodEstimate:
    """``log p(x)`` of every row of ``x`` under ``source`` (see ``source_field``), in batches.

    Batch ``b`` draws its noise (dequantization, probes, the bound's) from its own generator seeded
    ``util.seeds.block_seed(seed, b)``, so the estimate of a row does not depend on which process
    computes its batch: with ``ranks`` (``torchrun``), rank ``r`` solves batches ``r, r + K, ...`` and
    every process ends with all the rows, the same as one process computes.

    Args:
        source: an exact ``GaussianMixture`` or a ``TrainedModel``.
        x: data ``(N, D)``.
        estimator: ``ode`` (``log_likelihood``: exact ``log p_{t0}``) or ``vlb`` (the DDPM bound).
        hutchinson: ``K > 0`` Rademacher probes per sample for the divergence; ``0``: exact divergence.
        rtol, atol: the adaptive solver's tolerances.
        sigma_min: ``sigma_hat`` at the data end of the ODE (default: 0 exact, 1e-3 trained).
        dequantize_levels: data on a lattice of this many levels in ``[-1, 1]``: add uniform noise
            within each cell first and report bits/dim too (digits: 17).
        process: the process of an exact target's field (default ``vp``).
        batch: rows per solve.
        seed: seeds the dequantization noise, the probes and the bound's noise.
        on_batch: called with the number of rows done after each batch (a progress bar).
        ranks: this process among ``torchrun``'s (``learning.distributed.init_distributed``).
        device: where the batches are solved (a trained model's device); the noise is drawn on the CPU
            and the results gathered there, so the estimate is the same on any device up to rounding.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
    if not (isinstance(hutchinson, int) and hutchinson >= 0):
        raise ValueError(f"hutchinson must be an integer >= 0, got {hutchinson!r}")
    if not (isinstance(batch, int) and batch >= 1):
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    fld, prior, default_sigma = source_field(source, process)
    if x.ndim != 2 or x.shape[1] != prior.dim:
        raise ValueError(f"data must be (N, {prior.dim}) for this source, got {tuple(x.shape)}")
    ranks = ranks or Ranks()
    x = x.to(torch.float64)
    sigma_min = default_sigma if sigma_min is None else sigma_min
    t0 = data_end_time(fld.process, sigma_min)
    schedule = DDPMSchedule()
    starts = range(0, x.shape[0], batch)
    logp, nfe = torch.zeros(x.shape[0], dtype=torch.float64), torch.zeros((), dtype=torch.float64)
    for b in range(ranks.rank, len(starts), ranks.world):
        start = starts[b]
        rows = x[start : start + batch].to(device)
        generator = torch.Generator().manual_seed(block_seed(seed, b))
        if dequantize_levels is not None:
            rows = dequantize(rows, dequantize_levels, generator)
        if estimator == "vlb":
            logp[start : start + batch] = variational_bound(fld, rows, schedule=schedule, generator=generator).cpu()
            nfe += schedule.num_steps  # one field evaluation per step of the bound
        else:
            res = log_likelihood(
                fld,
                rows,
                prior=prior,
                t0=t0,
                divergence="hutchinson" if hutchinson else "exact",
                probes=max(hutchinson, 1),
                rtol=rtol,
                atol=atol,
                generator=generator,
            )
            logp[start : start + batch] = res.logp.detach().cpu()
            nfe += res.nfe
        if on_batch is not None:
            on_batch(rows.shape[0])
    # every row is one batch's value plus zeros from the other processes: the sums are exact
    logp, nfe = all_reduce(logp, ranks), int(all_reduce(nfe, ranks))
    name = "ddpm-vlb" if estimator == "vlb" else ("ode-hutchinson" if hutchinson else "ode-exact")
    settings = {
        "estimator": name,
        "hutchinson": hutchinson,
        "rtol": rtol,
        "atol": atol,
        "sigma_min": sigma_min,
        "t0": t0,
        "process": type(fld.process).__name__,
        "prior": "exact" if isinstance(source, GaussianMixture) else "moments",
        "batch": batch,
        "seed": seed,
        "dequantize_levels": dequantize_levels,
        "n": int(x.shape[0]),
    }
    bpd = bits_per_dim(logp, x.shape[1], levels=dequantize_levels) if dequantize_levels is not None else None
    return LikelihoodEstimate(logp, nfe, name, settings, bpd)
