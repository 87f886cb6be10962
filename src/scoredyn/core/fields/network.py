"""Networks as score fields: what a network predicts, and the one conversion to ``x0hat`` and ``eps``.

A network ``F(c_in x, c_noise, y)`` may predict one of (with ``x = alpha x0 + sigma eps``):

==========  ==========================================================  =====================================
name        the network's output                                        paper
==========  ==========================================================  =====================================
``eps``     ``eps``                                                     Ho et al. 2020 (DDPM)
``x0``      ``x0``                                                      Ramesh et al. 2022; Karras et al. 2022
``v``       ``v = alpha eps - sigma x0``                                Salimans & Ho 2022, sec. 4
``score``   ``sigma s`` (so ``s = F / sigma``; ``eps = -F``)            Song & Ermon 2020, technique 3
``edm``     ``F`` in ``D = c_skip xhat + c_out F(c_in xhat, c_noise)``  Karras et al. 2022, eq. 7, Table 1
``flow``    ``u = alpha' x0 + sigma' eps`` (conditional velocity)       Lipman et al. 2023; Liu et al. 2023
``energy``  scalar ``E~``; ``E = |u|^2 / 2 + E~``, ``s = -grad_x E``    Salimans & Ho 2021; Du et al. 2023
==========  ==========================================================  =====================================

Every parameterization sees the same inputs: ``x`` scaled to unit variance,
``c_in = 1 / sqrt(alpha^2 sigma_data^2 + sigma^2)``, and the noise level ``c_noise = log(sigma / alpha) / 4``
(EDM's choice, read on ``sigma_hat = sigma / alpha`` so that it means the same under every process).
The output is turned into a ``Prediction`` holding ``x0hat`` and ``eps_hat``; every other quantity
(score, ``v``, the flow velocity) follows from those two and ``x`` alone.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..processes import Process
from ..tensors import as_time
from .base import PredictingField, Prediction
from .coefficients import Coefficients, coefficients, per_sample_time

__all__ = ["PARAMETERIZATIONS", "NetworkField", "output_to_x0_eps"]

PARAMETERIZATIONS: tuple[str, ...] = ("eps", "x0", "v", "score", "edm", "flow", "energy")

_SIGMA_HAT_FLOOR = 1e-6  # c_noise at sigma = 0 (t_min of VP/EDM) would be -inf


class NetworkField(PredictingField):
    """A network as the score field of one process (the parameterizations in the module docstring).

    Args:
        net: ``net(x_in, c_noise, y) -> F`` with ``x_in`` (N, D), ``c_noise`` (N,), ``y`` (N,) or None.
        process: the process the network was trained under.
        parameterization: one of ``PARAMETERIZATIONS``.
        sigma_data: the data's standard deviation (input scaling; EDM's ``sigma_data``).
        labels: class labels used when the field is evaluated without ``y`` (``None``: the null
            class of a conditional network, or no label for an unconditional one).
        compile: call the network through ``torch.compile`` (``True``, or a ``torch.compile`` mode
            such as ``"max-autotune-no-cudagraphs"``; ``"reduce-overhead"`` replays CUDA graphs on
            CUDA, and the output is then copied out of the graph's memory). Compiled on first call.
    """

    #: The parameterizations this class converts; ``"energy"`` (a scalar network) is ``EnergyField``'s.
    accepts: tuple[str, ...] = ("eps", "x0", "v", "score", "edm", "flow")

    def __init__(
        self,
        net: nn.Module,
        process: Process,
        parameterization: str = "eps",
        *,
        sigma_data: float = 1.0,
        labels: Tensor | None = None,
        compile: bool | str = False,
    ) -> None:
        if parameterization not in self.accepts:
            if parameterization in PARAMETERIZATIONS:
                raise ValueError(
                    f"parameterization {parameterization!r} is not a {type(self).__name__}'s: "
                    "use network_field(), which picks the field class of a parameterization"
                )
            choices = ", ".join(PARAMETERIZATIONS)
            raise ValueError(f"parameterization must be one of {choices}, got {parameterization!r}")
        if not sigma_data > 0:
            raise ValueError(f"sigma_data must be positive, got {sigma_data}")
        if not isinstance(compile, bool | str):
            raise ValueError(f"compile must be a bool or a torch.compile mode, got {compile!r}")
        self.net, self.process, self.parameterization = net, process, parameterization
        self.sigma_data, self.labels, self.compile = float(sigma_data), labels, compile
        # shared by the copies of ``at_times``; torch.compile itself compiles on the first call
        mode = compile if isinstance(compile, str) else None
        self._compiled = torch.compile(net, mode=mode) if compile else None

    def with_options(self, **changes) -> NetworkField:
        """The same network on the same process with some constructor options changed (``labels``,
        ``compile``, ``sigma_data``, ``parameterization``)."""
        options = {"parameterization": self.parameterization, "sigma_data": self.sigma_data,
                   "labels": self.labels, "compile": self.compile} | changes  # fmt: skip
        parameterization = options.pop("parameterization")
        return type(self)(self.net, self.process, parameterization, **options)

    def predict(self, x: Tensor, t: float | Tensor, y: Tensor | None = None) -> Prediction:
        """The network's prediction at ``x`` (N, D) and times ``t`` (scalar or (N,)), as ``x0hat`` and ``eps``."""
        a, s, da, ds, c_in, sigma_hat, c_noise, y = self.network_inputs(x, t, y)
        param = next(self.net.parameters(), None)
        net_dtype = param.dtype if param is not None else x.dtype
        out = self.call_network((c_in * x).to(net_dtype), c_noise.to(net_dtype), y)
        x0, eps = output_to_x0_eps(self.parameterization, out.to(x.dtype), x, a, s, da, ds, sigma_hat, self.sigma_data)
        return self.prediction(x, a, s, da, ds, x0, eps)

    def network_inputs(self, x: Tensor, t: float | Tensor, y: Tensor | None) -> tuple:
        """At ``x`` (N, D) and ``t`` (scalar or (N,)): ``alpha, sigma, alpha', sigma', c_in, sigma_hat``
        ((1, 1) for one time, else (N, 1), in ``x``'s dtype), ``c_noise`` (N,), and the labels ``y``."""
        n = x.shape[0]
        t = as_time(t)
        if t.ndim == 0:  # one time for the batch: its terms once, as (1, 1), broadcast below
            a, s, da, ds, c_in, sigma_hat, c_noise = self._terms(self.coefficients_at(t), x)
        else:
            a, s, da, ds = coefficients(self.process, per_sample_time(t, n), x)
            c_in, sigma_hat, c_noise = self._input_terms(a, s)
        if y is None and self.labels is not None:
            y = self.labels.expand(n) if self.labels.ndim == 0 else self.labels
        if y is not None:
            y = y.to(x.device)  # the network's embedding is where the particles are
        return a, s, da, ds, c_in, sigma_hat, c_noise.expand(n).contiguous(), y

    @staticmethod
    def prediction(x: Tensor, a: Tensor, s: Tensor, da: Tensor, ds: Tensor, x0: Tensor, eps: Tensor) -> Prediction:
        """A ``Prediction`` with the coefficients broadcast to (N, 1)."""
        n = x.shape[0]
        a, s, da, ds = (c.expand(n, 1) for c in (a, s, da, ds))
        return Prediction(x, a, s, da, ds, x0, eps)

    def _input_terms(self, a: Tensor, s: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``c_in``, ``sigma_hat`` (floored) and ``c_noise`` from ``alpha`` and ``sigma`` (N, 1)."""
        c_in = 1.0 / torch.sqrt(a**2 * self.sigma_data**2 + s**2)
        sigma_hat = (s / a).clamp(min=_SIGMA_HAT_FLOOR)
        return c_in, sigma_hat, 0.25 * torch.log(sigma_hat)[:, 0]

    def _terms(self, c: Coefficients, x: Tensor) -> tuple[Tensor, ...]:
        """Every coefficient of ``predict`` at one time, as (1, 1) tensors in ``x``'s dtype and device
        (``c_noise`` (1,)); kept on a table row, so a prepared grid computes them once per time."""
        key = ("network-terms", x.dtype, x.device, self.sigma_data)
        terms = c.memo.get(key)
        if terms is None:
            a, s, da, ds = (v.to(dtype=x.dtype, device=x.device).reshape(1, 1) for v in
                            (c.alpha, c.sigma, c.d_alpha, c.d_sigma))  # fmt: skip
            terms = (a, s, da, ds, *self._input_terms(a, s))
            c.memo[key] = terms
        return terms

    def call_network(self, x_in: Tensor, c_noise: Tensor, y: Tensor | None) -> Tensor:
        """The network, through ``torch.compile`` when ``compile`` asks for it."""
        if self._compiled is None:
            return self.net(x_in, c_noise, y)
        out = self._compiled(x_in, c_noise, y)
        # CUDA graphs reuse their output memory on the next replay: copy it out
        return out.clone() if self.compile == "reduce-overhead" and out.is_cuda else out


def output_to_x0_eps(
    parameterization: str,
    out: Tensor,
    x: Tensor,
    a: Tensor,
    s: Tensor,
    da: Tensor,
    ds: Tensor,
    sigma_hat: Tensor,
    sigma_data: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """A model's output in one parameterization (the module docstring's table, ``energy`` excepted) to
    ``(x0hat, eps_hat)``; each form solves ``x = alpha x0 + sigma eps`` with ``a = alpha``, ``s = sigma``,
    ``da = alpha'``, ``ds = sigma'`` and ``sigma_hat = sigma / alpha`` broadcast against ``x``."""
    p = parameterization
    if p == "eps":
        return (x - s * out) / a, out
    if p == "score":  # out = sigma s = -eps
        return (x + s * out) / a, -out
    if p == "x0":
        return out, (x - a * out) / s
    if p == "v":  # [alpha sigma; -sigma alpha] [x0; eps] = [x; v]
        norm = a**2 + s**2
        return (a * x - s * out) / norm, (s * x + a * out) / norm
    if p == "edm":  # Karras et al. 2022, eq. 7 in xhat = x / alpha, sigma_hat = sigma / alpha
        sd2, sh2 = sigma_data**2, sigma_hat**2
        c_skip = sd2 / (sh2 + sd2)
        c_out = sigma_hat * sigma_data / torch.sqrt(sh2 + sd2)
        x0 = c_skip * (x / a) + c_out * out
        return x0, (x - a * x0) / s
    if p == "flow":  # [alpha sigma; alpha' sigma'] [x0; eps] = [x; u], determinant alpha^2 d(sigma/alpha)/dt > 0
        det = a * ds - da * s
        return (ds * x - s * out) / det, (a * out - da * x) / det
    raise ValueError(f"no conversion for parameterization {parameterization!r}")
