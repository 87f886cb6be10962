"""Annealed Langevin with a Metropolis–Hastings correction at every step: annealed MALA.

Annealed Langevin (``langevin.annealed_langevin``) leaves two biases: the ``O(eta)`` bias of the
unadjusted kick at each level, and the mode weights it carries from level to level. The Metropolis test
(``_steps.mala_move``) removes the first: at each level the move leaves ``p_t`` exactly invariant,
whatever the step size. It cannot remove the second. A local move carries mass between two separated
modes only as fast as it crosses the barrier between them, so once the modes of ``p_t`` split (the
middle noise levels), the weight each mode had there is the weight it keeps, and the weights of ``p_t``
change as ``t`` decreases. Only reweighting corrects that (``smc.smc``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..core.fields import Field
from ..core.tensors import atleast_2d_points, positive_float, positive_int
from ._steps import (
    ACCEPT_TARGET,
    SampleResult,
    StepInfo,
    Tracker,
    check_level_grid,
    density_evaluator,
    langevin_step_sizes,
    mala_moves,
    require_density,
)

__all__ = ["annealed_mala", "check_accept_target"]


def check_accept_target(accept_target: float) -> float:
    """An acceptance rate to adapt to, strictly between 0 and 1."""
    if not 0.0 < float(accept_target) < 1.0:
        raise ValueError(f"accept_target must be in (0, 1), got {accept_target!r}")
    return float(accept_target)


def annealed_mala(
    field: Field,
    x: Tensor,
    grid: Tensor,
    *,
    steps_per_level: int = 100,
    eta_factor: float = 0.5,
    accept_target: float = ACCEPT_TARGET,
    adapt: bool = True,
    backend: str = "auto",
    generator: torch.Generator | None = None,
    callback: Callable[[StepInfo], None] | None = None,
    return_path: bool = False,
) -> SampleResult:
    """Annealed Langevin over noise levels with a Metropolis–Hastings test at every step (annealed MALA).

    At each level ``t_i`` of ``grid`` (noisiest first), ``steps_per_level`` MALA moves (Roberts &
    Tweedie 1996) targeting ``p_{t_i}``, each the kick of Song & Ermon (2019, Alg. 1) followed by the
    test of ``_steps.mala_move``:

    .. math::
        y = x + h\\, s(x, t_i) + \\sqrt{2h}\\,\\xi, \\qquad
        x \\leftarrow y \\text{ with probability } \\min\\Big(1,
            \\frac{p_{t_i}(y)\\, q(x \\mid y)}{p_{t_i}(x)\\, q(y \\mid x)}\\Big).

    The step size starts at ``eta_factor sigma(t_0)^2`` (annealed Langevin's rule); after every move it
    is adapted to the population's acceptance rate (``adapt_step_size``, towards ``accept_target``), and
    each level starts from the last level's step scaled by ``sigma(t_i)^2 / sigma(t_{i-1})^2`` (the width
    of ``p_t`` where the noise dominates; the adaptation corrects it where the data does). Each move is
    one evaluation of the score and the log-density together; one more per level evaluates them at the
    level's time. The field needs a log-density (``Field.has_density``). The path is recorded after each
    level. NFE is ``levels * (steps_per_level + 1)``. ``backend`` evaluates an exact mixture's score and
    density in one fused pass (``_steps.density_evaluator``; ``eager``: the field's own).

    Returns:
        the result, with ``info``: ``acceptance`` (the mean acceptance rate of each level) and
        ``step_size`` (the step each level ended with).
    """
    require_density(field, "annealed-mala")
    x = atleast_2d_points(x)
    grid = check_level_grid(grid)
    T = positive_int(steps_per_level, "steps_per_level")
    target = check_accept_target(accept_target)
    sigma2 = field.process.sigma(grid) ** 2
    h = langevin_step_sizes(field.process, grid[:1], positive_float(eta_factor, "eta_factor"), "sigma2")[0]
    tracker = Tracker(field, x, callback, return_path)
    acceptance, steps = [], []
    for i, t in enumerate(grid):
        if i > 0 and sigma2[i] > 0 and sigma2[i - 1] > 0:
            h *= float(sigma2[i] / sigma2[i - 1])
        if h <= 0:  # a first level at sigma = 0 has no scale to start from: the data's is unknown
            raise ValueError("annealed-mala needs sigma > 0 at the first level")
        evaluate = density_evaluator(tracker, t, backend, device=x.device)
        s, log_p = evaluate(x)
        x, s, log_p, h, rate = mala_moves(evaluate, x, s, log_p, h, T, generator, adapt=adapt, target=target)
        acceptance.append(rate)
        steps.append(h)
        tracker.step(i, t, x)
    return tracker.result(x, {"acceptance": acceptance, "step_size": steps})
