"""The objective: a weighted score-matching loss on one process, split into ``draw`` (all the
randomness of a step) and ``loss`` (deterministic, per sample), with the one check of the options
an objective is made with."""

from __future__ import annotations

import torch
from torch import Tensor

from ...core.fields import PARAMETERIZATIONS, Field, Prediction, coefficients
from ...core.processes import Process
from ...core.tensors import randn_from
from ._shared import num_steps
from .times import TIME_SAMPLERS, TimeSampler, time_sampler

__all__ = ["Objective"]


class Objective:
    """One training objective on one process (see ``make_objective`` for the options).

    .. math::
        \\mathbb E_t\\, \\lambda(t)\\, \\mathbb E_{x_0, \\epsilon}
        \\big\\| s_\\theta(x_t, t) - \\nabla_{x_t} \\log p(x_t \\mid x_0) \\big\\|^2,
        \\qquad x_t = \\alpha_t x_0 + \\sigma_t \\epsilon .

    A subclass sets ``name``, ``paper``, ``default_parameterization`` and ``default_time``, gives
    ``lam_over_sigma2`` (its score-matching weight ``lambda(t)`` over ``sigma(t)^2``, the density that
    ``time="importance"`` draws from), and either ``error`` (a regression on the prediction at
    ``x_t``) or its own ``loss``. ``needs`` says which processes it trains on: ``"any"``,
    ``"discrete"`` (the integer times of ``DDPMSchedule``; such an objective sums its terms over ``t``)
    or ``"continuous"``.

    Args:
        process: the forward process.
        parameterization: the field's parameterization, checked against the process (``None``: the
            objective's default, which always fits).
        time: a name of ``TIME_SAMPLERS`` or a ``TimeSampler``.
        t_min, p_mean, p_std, probes, sigma_data: see ``make_objective``.
    """

    name: str = ""
    paper: str = ""
    default_parameterization: str = "eps"
    default_time: str = "uniform"
    needs: str = "any"

    def __init__(
        self,
        process: Process,
        *,
        parameterization: str | None = None,
        time: str | TimeSampler = "default",
        t_min: float = 1e-3,
        p_mean: float = -1.2,
        p_std: float = 1.2,
        probes: int = 1,
        sigma_data: float = 0.5,
    ) -> None:
        self.check(process, parameterization, time=time if isinstance(time, str) else "default", probes=probes)
        if not sigma_data > 0:
            raise ValueError(f"sigma_data must be positive, got {sigma_data}")
        self.process, self.probes, self.sigma_data = process, int(probes), float(sigma_data)
        if isinstance(time, TimeSampler):
            self.time = time
        else:
            name = self.default_time if time == "default" else time
            self.time = time_sampler(name, process, self.lam_over_sigma2, t_min=t_min, p_mean=p_mean, p_std=p_std,
                                     sigma_data=self.sigma_data)  # fmt: skip

    @classmethod
    def check(
        cls, process: Process, parameterization: str | None = None, *, time: str = "default", probes: int = 1
    ) -> None:
        """Raise ``ValueError`` (one line naming the problem) if this objective cannot train on
        ``process`` with these options; every rule of a combination is here."""
        steps = num_steps(process)
        if cls.needs == "discrete" and steps is None:
            raise ValueError(f"objective {cls.name!r} needs the discrete DDPMSchedule process, got {process!r}")
        if time not in TIME_SAMPLERS:
            raise ValueError(f"time must be one of {', '.join(TIME_SAMPLERS)}, got {time!r}")
        if cls.needs == "discrete" and time == "importance":
            raise ValueError(
                f"time 'importance' is not available for objective {cls.name!r} (it sums its terms over t)"
            )
        if steps is not None and time != "default":
            raise ValueError(
                f"time {time!r} draws continuous times, but {process.name} is discrete: "
                f"use time='default' (t uniform on the integers 1..{steps})"
            )
        if cls.needs == "continuous" and steps is not None:
            raise ValueError(
                f"objective {cls.name!r} needs a continuous process; {process.name}'s velocity jumps at every step"
            )
        if not (isinstance(probes, int) and probes >= 1):
            raise ValueError(f"probes must be an integer >= 1, got {probes!r}")
        if parameterization is not None:
            if parameterization not in PARAMETERIZATIONS:
                choices = ", ".join(PARAMETERIZATIONS)
                raise ValueError(f"parameterization must be one of {choices}, got {parameterization!r}")
            if parameterization == "flow" and steps is not None:
                raise ValueError(f"parameterization 'flow' needs a continuous process, got {process.name}")

    def lam_over_sigma2(self, t: Tensor) -> Tensor:
        """``lambda(t) / sigma(t)^2`` (float64): the weight over the conditional score's magnitude."""
        raise NotImplementedError

    def lam(self, t: Tensor) -> Tensor:
        """The score-matching weight ``lambda(t)`` of this objective (float64)."""
        return self.process.sigma(t) ** 2 * self.lam_over_sigma2(t)

    def draw(self, x0: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """All the randomness of one step for the batch ``x0`` (N, D): ``t`` (N,), ``w`` (N,), ``eps`` (N, D)."""
        t, w = self.time.sample(x0.shape[0], generator)
        return {"t": t, "w": w, "eps": randn_from(generator, tuple(x0.shape), x0)}

    def loss(self, field: Field, x0: Tensor, y: Tensor | None, draws: dict[str, Tensor]) -> Tensor:
        """Per-sample loss (N,): ``w * error(field.predict(x_t, t, y))`` with ``x_t = alpha x0 + sigma eps``."""
        t, eps = draws["t"], draws["eps"]
        alpha, sigma, _, _ = coefficients(self.process, t, x0)
        pred = field.predict(alpha * x0 + sigma * eps, t, y)
        return draws["w"].to(x0) * self.error(pred, x0, eps)

    def error(self, pred: Prediction, x0: Tensor, eps: Tensor) -> Tensor:
        """The regression error (N,) of the prediction ``pred`` at ``x_t`` against the draws ``x0``, ``eps`` (N, D)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(process={self.process!r}, time={type(self.time).__name__})"
