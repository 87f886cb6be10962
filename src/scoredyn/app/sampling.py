"""``sample``: run a named sampler in one call (what the CLI and the demo use).

It resolves the recipe of ``registry.SAMPLERS``, builds the process, the grid and the start, seeds
one ``torch.Generator`` that feeds every random draw (start, noise, churn), and runs the sampler
on the exact field of a target, or on the field of a trained model. A trained field is read on
the recipe's process through ``OnProcess`` (same signal-to-noise ratio), so a model trained under
any process runs every sampler; its default start is the Gaussian with the training data's
moments pushed through the process (there is no exact ``p_T`` to start from).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from ..core.fields import AnalyticField, Field, on_process
from ..core.registry import resolve_process
from ..core.targets import GaussianMixture
from ..samplers import SampleResult, StepInfo, start_distribution
from .registry import LADDER_SIGMA_MAX, LADDER_SIGMA_MIN, make_grid, resolve_sampler

if TYPE_CHECKING:
    from ..learning import TrainedModel

__all__ = ["sample"]


def sample(
    target: GaussianMixture | TrainedModel,
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
    label: int | None = None,
    guidance: float = 1.0,
    compile: bool | str = False,
    **knobs,
) -> tuple[SampleResult, dict]:
    """Draw ``n`` samples from ``target`` with the named sampler and its field.

    Args:
        target: an exact mixture (its exact field), or a trained model (``train.load_trained``).
        sampler: a name from ``registry.SAMPLERS``.
        steps: the sampler's step count (per noise level for annealed particle samplers).
        n: number of particles.
        seed: seeds the one generator of the run.
        levels: noise levels of the annealing ladder (annealed particle samplers).
        process, grid, start: override the recipe's defaults (names from the registry).
        label: draw this class: classifier-free guidance for a class-conditional trained model,
            classifier guidance with the exact noisy classifier for a mixture (classes = components).
        guidance: the guidance weight ``w`` (``1``: the conditional law; above 1 sharpens).
        compile: call a trained model's network through ``torch.compile`` (``True`` or a mode;
            see ``NetworkField``); ignored for an exact target.
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
        t_end = proc.sigma_hat_to_t(torch.tensor([LADDER_SIGMA_MIN], dtype=torch.float64))
        times = t_end.repeat(steps)
        kwargs.setdefault("eta", 0.5 * LADDER_SIGMA_MIN**2)
    else:
        grid_kwargs = recipe.grid_kwargs if grid is None else {}
        times = make_grid(grid_name, proc, steps, levels, **grid_kwargs)
    if recipe.per_level:
        kwargs["steps_per_level"] = steps
    kwargs.update(knobs)

    trained = not isinstance(target, GaussianMixture)
    start_kind = start or recipe.start
    if trained and start is None and start_kind == "exact":
        start_kind = "moments"  # the recipe's exact p_T does not exist for a learned field
    dim = target.field_dim if trained else target.dim
    if start_kind == "ladder":
        eye = torch.eye(dim, dtype=torch.float64)
        zeros = torch.zeros(1, dim, dtype=torch.float64)
        start_law = GaussianMixture([1.0], zeros, (LADDER_SIGMA_MAX**2 * eye)[None], name="ladder")
    elif trained:
        if start_kind == "exact":
            raise ValueError("start 'exact' needs an exact target; a trained model starts from 'moments'")
        start_law = start_distribution(start_kind, proc, times[0], target=target.moments_law(), dim=dim)
    else:
        start_law = start_distribution(start_kind, proc, times[0], target=target)

    gen = torch.Generator(device="cpu").manual_seed(seed)
    x = start_law.sample(n, generator=gen).to(dtype)
    if device != "cpu":
        x = x.to(device)
        gen = torch.Generator(device=device).manual_seed(seed)
    field = on_process(_compiled(target.field, compile), proc) if trained else AnalyticField(target, proc)
    if label is not None:
        field = _guided(target, field, proc, label, guidance, trained)
    fused = _fused_langevin(recipe, target, trained, label, x, callback)
    with torch.no_grad():  # sampling never differentiates (a trained net would record a graph)
        if fused:  # the same dynamics, one Triton kernel per level (noise from the kernel's Philox stream)
            result = fused(target, proc, x, times, seed=seed, return_path=return_path, **kwargs)
        else:
            result = recipe.fn(field, x, times, generator=gen, callback=callback, return_path=return_path, **kwargs)
    settings = {
        "target": target.name if not trained else f"checkpoint:{target.directory}",
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
        "label": label,
        "guidance": guidance if label is not None else None,
        "compile": compile if trained else False,
        "kernel": "triton" if fused else None,
        "knobs": {k: v for k, v in kwargs.items() if isinstance(v, int | float | str | bool)},
    }
    return result, settings


def _fused_langevin(recipe, target, trained: bool, label, x: torch.Tensor, callback):
    """``fused_annealed_langevin`` where it applies: annealed Langevin on an exact mixture, no class,
    no per-level callback, particles on CUDA with Triton installed; else ``None`` (the reference path)."""
    from ..kernels._triton import triton_available
    from ..samplers import annealed_langevin

    if recipe.fn is not annealed_langevin or trained or label is not None or callback is not None:
        return None
    if not (x.is_cuda and triton_available()):
        return None
    from ..kernels.mixture_langevin import fused_annealed_langevin

    return fused_annealed_langevin


def _compiled(field: Field, compile: bool | str) -> Field:
    """A trained model's field calling its network through ``torch.compile`` when asked."""
    from ..core.fields import NetworkField

    if not compile or not isinstance(field, NetworkField):
        return field
    return NetworkField(field.net, field.process, field.parameterization, sigma_data=field.sigma_data,
                        labels=field.labels, compile=compile)  # fmt: skip


def _guided(target, field: Field, process, label: int, weight: float, trained: bool) -> Field:
    """The field guided towards class ``label`` (``guidance.py``)."""
    from ..core.fields import ClassifierFreeGuidance, ClassifierGuidance, NetworkField, mixture_classifier

    if not trained:
        if not 0 <= label < target.n_components:
            raise ValueError(f"class must be a component index in 0..{target.n_components - 1}, got {label}")
        return ClassifierGuidance(field, mixture_classifier(target, process), label, weight)
    classes = int(target.info["num_classes"])
    if classes == 0:
        raise ValueError("class guidance needs a class-conditional model (trained with model.conditional=true)")
    if not 0 <= label < classes:
        raise ValueError(f"class must be in 0..{classes - 1}, got {label}")
    own = target.field
    cond = NetworkField(own.net, own.process, own.parameterization, sigma_data=own.sigma_data,
                        labels=torch.tensor(label))  # fmt: skip
    guided = ClassifierFreeGuidance(cond, own, weight)
    return on_process(guided, process)
