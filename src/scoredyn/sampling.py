"""``sample``: run a named sampler on an exact target in one call (what the CLI and the demo use).

It resolves the recipe of ``registry.SAMPLERS``, builds the process, the grid and the start, seeds
one ``torch.Generator`` that feeds every random draw (start, noise, churn), and runs the sampler
on the exact field of the target.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .fields import AnalyticField
from .registry import LADDER_SIGMA_MAX, LADDER_SIGMA_MIN, make_grid, resolve_process, resolve_sampler
from .samplers._steps import SampleResult, StepInfo
from .samplers.grids import sigma_hat_to_t
from .starts import start_distribution
from .targets.mixture import GaussianMixture

__all__ = ["sample"]


def sample(
    target: GaussianMixture,
    sampler: str,
    *,
    steps: int,
    n: int,
    seed: int = 0,
    levels: int = 10,
    process: str | None = None,
    grid: str | None = None,
    start: str | None = None,
    dtype: torch.dtype = torch.float64,
    device: str = "cpu",
    return_path: bool = False,
    callback: Callable[[StepInfo], None] | None = None,
    **knobs,
) -> tuple[SampleResult, dict]:
    """Draw ``n`` samples from ``target`` with the named sampler and its exact field.

    Args:
        target: the exact mixture.
        sampler: a name from ``registry.SAMPLERS``.
        steps: the sampler's step count (per noise level for annealed particle samplers).
        n: number of particles.
        seed: seeds the one generator of the run.
        levels: noise levels of the annealing ladder (annealed particle samplers).
        process, grid, start: override the recipe's defaults (names from the registry).
        knobs: keyword arguments passed to the sampler (e.g. ``eta=1.0`` for DDIM).

    Returns:
        the sampler's result, and the settings it ran with (JSON-able).
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not isinstance(levels, int) or levels < 1:
        raise ValueError(f"levels must be a positive integer, got {levels!r}")
    recipe = resolve_sampler(sampler)
    proc_name = process or recipe.process
    proc = resolve_process(proc_name)
    grid_name = grid or recipe.grid
    kwargs = dict(recipe.kwargs)
    if grid_name == "constant":
        # plain Langevin: `steps` steps at the smallest level of the ladder
        t_end = sigma_hat_to_t(proc, torch.tensor([LADDER_SIGMA_MIN], dtype=torch.float64))
        times = t_end.repeat(steps)
        kwargs.setdefault("eta", 0.5 * LADDER_SIGMA_MIN**2)
    else:
        grid_kwargs = recipe.grid_kwargs if grid is None else {}
        times = make_grid(grid_name, proc, steps, levels, **grid_kwargs)
    if recipe.per_level:
        kwargs["steps_per_level"] = steps
    kwargs.update(knobs)

    start_kind = start or recipe.start
    if start_kind == "ladder":
        eye = torch.eye(target.dim, dtype=torch.float64)
        zeros = torch.zeros(1, target.dim, dtype=torch.float64)
        start_law = GaussianMixture([1.0], zeros, (LADDER_SIGMA_MAX**2 * eye)[None], name="ladder")
    else:
        start_law = start_distribution(start_kind, proc, times[0], target=target)

    gen = torch.Generator(device="cpu").manual_seed(seed)
    x = start_law.sample(n, generator=gen).to(dtype)
    if device != "cpu":
        x = x.to(device)
        gen = torch.Generator(device=device).manual_seed(seed)
    field = AnalyticField(target, proc)
    result = recipe.fn(field, x, times, generator=gen, callback=callback, return_path=return_path, **kwargs)
    settings = {
        "target": target.name,
        "sampler": sampler,
        "steps": steps,
        "levels": levels if recipe.per_level else None,
        "n": n,
        "seed": seed,
        "process": proc_name,
        "grid": grid_name,
        "start": start_kind,
        "dtype": str(dtype).removeprefix("torch."),
        "device": device,
        "knobs": {k: v for k, v in kwargs.items() if isinstance(v, int | float | str | bool)},
    }
    return result, settings
