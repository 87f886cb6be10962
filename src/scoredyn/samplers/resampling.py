"""Weights and resampling for particle populations: the effective sample size, systematic and
multinomial resampling, and the Hilbert-curve order that makes systematic resampling nearly noiseless
for the mass of any region.

Resampling replaces weighted particles by equally weighted copies, and adds noise: the number of copies
in a region ``A`` (one mode of a mixture) varies around ``N W_A``. Multinomial resampling's variance is
``N W_A (1 - W_A)``, as much as a fresh sample's. Systematic resampling gives each particle
``floor(N W_i)`` or ``ceil(N W_i)`` copies, and particles that are adjacent in the order it reads them have
copies that compensate: a region that is one contiguous run of the order gets ``N W_A`` copies to
within one. In random order that run is broken into many pieces; sorting the particles along a Hilbert
curve first keeps nearby particles together (Gerber & Chopin 2015, sec. 4, for quasi-Monte Carlo SMC), so a
separated mode is a few runs and its mass passes through resampling almost unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._steps import generator_device

__all__ = [
    "RESAMPLING",
    "ORDERS",
    "effective_sample_size",
    "conditional_ess",
    "systematic_resample",
    "multinomial_resample",
    "hilbert_index",
    "resample_groups",
]

RESAMPLING = ("systematic", "multinomial")
ORDERS = ("hilbert", "none")

#: Bits per coordinate of the Hilbert index: ``min(16, 63 // D)``, at least 1 (a signed 64-bit integer).
HILBERT_MAX_BITS = 16


def effective_sample_size(log_w: Tensor) -> Tensor:
    """``ESS = (sum w)^2 / sum w^2`` of unnormalized log-weights ``log_w`` (..., n), over the last axis
    (Kong, Liu & Wong 1994): ``n`` for equal weights, 1 for one weight that dominates."""
    return torch.exp(2 * torch.logsumexp(log_w, -1) - torch.logsumexp(2 * log_w, -1))


def conditional_ess(log_w: Tensor, increment: Tensor) -> float:
    """The conditional ESS fraction of an incremental weight (Zhou, Johansen & Aston 2016, eq. 3.16),
    ``(sum_i W_i u_i)^2 / sum_i W_i u_i^2`` with ``W`` the normalized current weights and
    ``u = e^increment``: 1 when the increment is constant, and it does not count the current weights' own
    unevenness as the step's."""
    log_W = log_w - torch.logsumexp(log_w, 0)
    return float(torch.exp(2 * torch.logsumexp(log_W + increment, 0) - torch.logsumexp(log_W + 2 * increment, 0)))


def systematic_resample(log_w: Tensor, generator: torch.Generator | None) -> Tensor:
    """Indices of systematic resampling (Carpenter, Clifford & Fearnhead 1999) within each row of
    ``log_w`` (G, n): one uniform ``U`` per row and the points ``(U + j) / n``, ``j < n``, located in the
    row's cumulative normalized weights. Particle ``i`` gets ``floor(n W_i)`` or ``ceil(n W_i)`` copies,
    ``n W_i`` on average."""
    g, n = log_w.shape
    cum = torch.cumsum(torch.softmax(log_w.double(), -1), -1)
    u = torch.rand(g, 1, generator=generator, dtype=torch.float64, device=generator_device(generator)).to(log_w.device)
    points = (u + torch.arange(n, dtype=torch.float64, device=log_w.device)) / n
    return torch.searchsorted(cum, points).clamp_(max=n - 1)


def multinomial_resample(log_w: Tensor, generator: torch.Generator | None) -> Tensor:
    """Indices of multinomial resampling within each row of ``log_w`` (G, n): ``n`` independent draws
    from the row's normalized weights (Gordon, Salmond & Smith 1993)."""
    probs = torch.softmax(log_w.double(), -1).to(generator_device(generator))
    return torch.multinomial(probs, log_w.shape[1], replacement=True, generator=generator).to(log_w.device)


def hilbert_index(x: Tensor, bits: int | None = None) -> Tensor:
    """The position of each point of ``x`` (N, D) along a Hilbert curve through the points' bounding box
    (Hilbert 1891), as an int64 (N,): nearby positions are nearby points.

    Each coordinate is quantized to ``bits`` bits (default ``min(16, 63 // D)``), the quantized
    coordinates are turned into the curve's "transpose" by Skilling's algorithm (2004, "Programming the
    Hilbert curve": undo the excess work, then Gray-code), and its bits are interleaved, most significant
    first."""
    n, d = x.shape
    b = bits if bits is not None else max(1, min(HILBERT_MAX_BITS, 63 // d))
    if not 1 <= b * d <= 63:
        raise ValueError(f"bits x dimension must be in [1, 63], got {b} x {d}")
    lo, hi = x.min(0).values, x.max(0).values
    scale = (2**b - 1) / (hi - lo).clamp_min(torch.finfo(x.dtype).tiny)
    X = [c for c in ((x - lo) * scale).round().long().clamp_(0, 2**b - 1).T]
    top = 1 << (b - 1)
    q = top
    while q > 1:  # undo the excess work, from the top bit down
        p = q - 1
        for i in range(d):
            hit = (X[i] & q) != 0
            swap = (X[0] ^ X[i]) & p
            if i == 0:
                X[0] = torch.where(hit, X[0] ^ p, X[0])
            else:
                X[0], X[i] = torch.where(hit, X[0] ^ p, X[0] ^ swap), torch.where(hit, X[i], X[i] ^ swap)
        q >>= 1
    for i in range(1, d):  # Gray encode
        X[i] = X[i] ^ X[i - 1]
    flip = torch.zeros_like(X[0])
    q = top
    while q > 1:
        flip = torch.where((X[d - 1] & q) != 0, flip ^ (q - 1), flip)
        q >>= 1
    X = [c ^ flip for c in X]
    index = torch.zeros_like(X[0])
    for bit in reversed(range(b)):  # interleave the transpose's bits
        for c in X:
            index = (index << 1) | ((c >> bit) & 1)
    return index


def resample_groups(
    log_w: Tensor, generator: torch.Generator | None, *, scheme: str = "systematic", key: Tensor | None = None
) -> Tensor:
    """Resampling indices (G, n) into each row of ``log_w`` (G, n): the row's particles read in the order
    of ``key`` (G, n) when given (``hilbert_index``), then ``scheme`` (``RESAMPLING``)."""
    resample = systematic_resample if scheme == "systematic" else multinomial_resample
    if scheme not in RESAMPLING:
        raise ValueError(f"resampling must be one of {', '.join(RESAMPLING)}, got {scheme!r}")
    if key is None:
        return resample(log_w, generator)
    order = key.argsort(dim=1, stable=True)
    return order.gather(1, resample(log_w.gather(1, order), generator))
