"""Training objectives: which times to train at, what to regress, and with which weight.

Every objective here is a weighted score-matching loss in disguise (Vincent 2011; Song et al. 2021,
eq. 7): with ``x_t = alpha_t x_0 + sigma_t eps`` it equals, up to a constant in ``theta``,

.. math::
    \\mathbb E_t\\, \\lambda(t)\\, \\mathbb E_{x_0, \\epsilon}
    \\big\\| s_\\theta(x_t, t) - \\nabla_{x_t} \\log p(x_t \\mid x_0) \\big\\|^2,
    \\qquad \\nabla_{x_t} \\log p(x_t \\mid x_0) = -\\epsilon / \\sigma_t,

and each class states its ``lambda(t)``. A step is split in two: ``draw(x0, generator)`` takes ALL
its randomness (times ``"t"``, importance weights ``"w"``, noise ``"eps"``, probes ``"v"``), each with
leading dimension N, so a trainer can draw for a global batch and hand every rank a slice;
``loss(field, x0, y, draws)`` is then deterministic and returns the per-sample loss (N,), already
weighted, summed over dimensions (so ``vlb`` is in nats). Losses are computed in ``x0``'s dtype;
times and weights are float64 on the CPU, like every process coefficient.

The parts: ``times`` (the time distribution ``pi(t)``: uniform with a cut-off ``t_min``, importance
sampling, EDM's log-normal, or the integers ``1..T`` of ``DDPMSchedule``), ``base`` (``Objective``:
the draw/loss split and the one check of a combination), ``regression`` (eps, dsm, x0, v, edm, cfm),
``implicit`` (ssm, ism, ism-hutchinson) and ``vlb`` (the DDPM bound).

Adding an objective is one ``Objective`` subclass in one file plus one line in ``OBJECTIVES`` below.
"""

from __future__ import annotations

from ...core.processes import Process
from .base import Objective
from .implicit import HutchinsonISMObjective, ISMObjective, SSMObjective
from .regression import CFMObjective, DSMObjective, EDMObjective, EpsObjective, VObjective, X0Objective
from .times import (
    EDM_SIGMA_DATA,
    TIME_SAMPLERS,
    DiscreteTime,
    ImportanceTime,
    LogNormalTime,
    TimeSampler,
    UniformTime,
    time_sampler,
)
from .vlb import VLBObjective

__all__ = [
    "TimeSampler",
    "UniformTime",
    "ImportanceTime",
    "LogNormalTime",
    "DiscreteTime",
    "TIME_SAMPLERS",
    "EDM_SIGMA_DATA",
    "time_sampler",
    "Objective",
    "EpsObjective",
    "DSMObjective",
    "X0Objective",
    "VObjective",
    "EDMObjective",
    "CFMObjective",
    "SSMObjective",
    "ISMObjective",
    "HutchinsonISMObjective",
    "VLBObjective",
    "OBJECTIVES",
    "OBJECTIVE_NAMES",
    "check",
    "make_objective",
]

OBJECTIVES: dict[str, type[Objective]] = {
    "eps": EpsObjective,
    "dsm": DSMObjective,
    "x0": X0Objective,
    "v": VObjective,
    "edm": EDMObjective,
    "cfm": CFMObjective,
    "ssm": SSMObjective,
    "ism": ISMObjective,
    "ism-hutchinson": HutchinsonISMObjective,
    "vlb": VLBObjective,
}
OBJECTIVE_NAMES: tuple[str, ...] = tuple(OBJECTIVES)


def _objective_class(name: str) -> type[Objective]:
    if name not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVE_NAMES)}, got {name!r}")
    return OBJECTIVES[name]


def check(
    name: str, process: Process, parameterization: str | None = None, *, time: str = "default", probes: int = 1
) -> None:
    """Raise ``ValueError`` (one line naming the problem) if the combination cannot train: an unknown
    ``name``, or a rule of ``Objective.check``. ``make_objective`` runs the same check."""
    _objective_class(name).check(process, parameterization, time=time, probes=probes)


def make_objective(
    name: str,
    process: Process,
    *,
    parameterization: str | None = None,
    time: str = "default",
    t_min: float = 1e-3,
    p_mean: float = -1.2,
    p_std: float = 1.2,
    probes: int = 1,
    sigma_data: float = 0.5,
) -> Objective:
    """The objective ``name`` (one of ``OBJECTIVE_NAMES``) on ``process``; ``ValueError`` for a
    combination that cannot train (see ``check``).

    Args:
        name: the objective.
        process: the forward process.
        parameterization: the parameterization of the field it will train, checked against the
            process; ``None`` for the objective's ``default_parameterization``.
        time: ``"default"`` (the objective's own: uniform, or log-normal for ``edm``; the integers
            ``1..T`` on ``DDPMSchedule``), ``"uniform"`` on ``[t_min, t_max]``, ``"importance"``
            (``q(t) ∝ lambda(t) / sigma(t)^2``), or ``"lognormal"`` (EDM).
        t_min: the time cut-off of ``uniform`` and ``importance``.
        p_mean, p_std: EDM's ``P_mean``, ``P_std`` of ``ln sigma_hat``, for data of scale 0.5 (the
            paper's images): the sampler draws ``ln sigma_hat ~ N(P_mean + ln(sigma_data / 0.5), P_std^2)``,
            the same noise levels relative to the data at any scale.
        probes: random probes per sample (``ssm``, ``ism-hutchinson``).
        sigma_data: EDM's ``sigma_data`` (``edm``).
    """
    return _objective_class(name)(
        process,
        parameterization=parameterization,
        time=time,
        t_min=t_min,
        p_mean=p_mean,
        p_std=p_std,
        probes=probes,
        sigma_data=sigma_data,
    )
