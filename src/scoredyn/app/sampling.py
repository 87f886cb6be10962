"""``sample``: run a named sampler in one call (what the CLI and the demo use).

It resolves the sampler's recipe (``registry.SAMPLERS``), builds the process, the grid and the start,
seeds one ``torch.Generator`` that feeds every random draw (start, noise, churn), and runs the sampler
on the field of the source (``sources.as_source``): the exact field of a mixture, or a trained model's
field read on the recipe's process at equal signal-to-noise ratio (``OnProcess``), so a model trained
under any process runs every sampler.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..core.registry import resolve_process
from ..core.targets import GaussianMixture
from ..core.tensors import positive_int
from ..learning import TrainedModel
from ..samplers import SampleResult, StepInfo
from .registry import make_grid, resolve_sampler
from .sources import as_source
from .tuning import GridFile

__all__ = ["sample", "MEMORY_BUDGET_GIB", "WORKING_COPIES", "check_memory", "gib"]


#: The memory a run may ask for unless told otherwise (``scoredyn sample --memory-gib``).
MEMORY_BUDGET_GIB = 8.0
#: ``N x D`` float64 arrays a sampler holds at once at most (the particles, a multistep solver's past
#: predictions and corrections, the field's output and temporaries); measured ``<= 6`` for ``unipc``.
WORKING_COPIES = 8


def gib(nbytes: float) -> str:
    """Bytes as GiB for a message: three significant figures, thousands separated (``0.0238``, ``298,023``)."""
    value = nbytes / 2**30
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def check_memory(n: int, dim: int, steps: int, levels: int = 1, *, path: bool = False,
                 budget_gib: float = MEMORY_BUDGET_GIB) -> int:  # fmt: skip
    """The bytes a run of ``n`` particles in ``dim`` dimensions needs (``WORKING_COPIES`` arrays of
    ``n x dim`` float64, its grid, and every grid point's particles when ``path``), or a ``ValueError``
    with the number when that is above ``budget_gib``: checked before anything is allocated."""
    points = steps * levels + 1
    need = 8 * (WORKING_COPIES * n * dim + points + (points * n * dim if path else 0))
    if need > budget_gib * 2**30:
        raise ValueError(
            f"this run needs about {gib(need)} GiB ({n:,} particles x {dim} dimensions, "
            f"{points:,} grid points), above the {budget_gib:g} GiB budget: use fewer particles or steps, "
            "or raise the budget (--memory-gib)"
        )
    return need


def sample(
    target: GaussianMixture | TrainedModel,
    sampler: str,
    *,
    steps: int,
    n: int,
    seed: int = 0,
    levels: int = 10,
    process: str | None = None,
    grid: str | GridFile | None = None,
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
        target: an exact mixture (its exact field), or a trained model (``learning.load_trained``).
        sampler: a name from ``registry.SAMPLERS``.
        steps: the sampler's step count (per noise level for annealed particle samplers).
        n: number of particles.
        seed: seeds the one generator of the run.
        levels: noise levels of the annealing ladder (annealed particle samplers).
        process, grid, start: override the recipe's defaults (names from the registry); ``grid`` may also
            be a tuned grid (``tuning.GridFile``), checked against the sampler, the process and ``steps``:
            the particles are drawn at its start time and start moving at its first time.
        label: draw this class: classifier-free guidance for a class-conditional trained model,
            classifier guidance with the exact noisy classifier for a mixture (classes = components).
        guidance: the guidance weight ``w`` (``1``: the conditional law; above 1 sharpens).
        compile: call a trained model's network through ``torch.compile`` (``True`` or a mode;
            see ``NetworkField``); ignored for an exact target.
        knobs: keyword arguments passed to the sampler (e.g. ``eta=1.0`` for DDIM).

    Returns:
        the sampler's result, and the settings it ran with (JSON-able).
    """
    for name, value in (("steps", steps), ("n", n), ("levels", levels)):
        positive_int(value, name)
    source = as_source(target)
    recipe = resolve_sampler(sampler)
    proc_name = process or (grid.process if isinstance(grid, GridFile) else recipe.process)  # a grid's own
    proc = resolve_process(proc_name)
    start_time = None
    if isinstance(grid, GridFile):
        grid.check_for(sampler, proc_name)
        if steps != grid.steps:
            raise ValueError(f"the grid holds {grid.steps} steps of {sampler}, not {steps}")
        grid_name, times, start_time = f"tuned ({grid.method}, nfe {grid.nfe})", grid.grid, grid.start_time
    else:
        grid_name = grid or recipe.grid
        times = make_grid(grid_name, proc, steps, levels, **(recipe.grid_kwargs if grid is None else {}))
    kwargs = dict(recipe.kwargs)
    if isinstance(grid, GridFile) and grid.coefficients is not None:
        kwargs["coefficients"] = grid.coefficients  # a fitted multistep solver
    if recipe.per_level:
        kwargs["steps_per_level"] = steps
    kwargs.update(knobs)

    start_kind = start or source.default_start(recipe.start)
    drawn_at = times[0] if start_time is None else torch.tensor(start_time, dtype=torch.float64)
    start_law = source.start(start_kind, proc, drawn_at)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    x = start_law.sample(n, generator=gen).to(dtype)
    if device != "cpu":
        x = x.to(device)
        gen = torch.Generator(device=device).manual_seed(seed)
    if recipe.needs_start:
        kwargs["start"] = start_law
    field = source.field(proc, compile)
    if label is not None:
        field = source.guided(field, proc, label, guidance)
    with torch.no_grad():  # sampling never differentiates (a trained net would record a graph)
        result = recipe.fn(field, x, times, generator=gen, callback=callback, return_path=return_path, **kwargs)
    # a model trained on a data file works in standardized coordinates: its samples go back to the file's
    result.x = source.to_data(result.x)
    if result.path is not None:
        result.path = source.to_data(result.path)
    settings = {
        "target": source.label,
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
        "compile": compile if source.trained else False,
        "kernel": result.kernel,
        "knobs": {k: v for k, v in kwargs.items() if isinstance(v, int | float | str | bool)},
        "diagnostics": result.info,
    }
    return result, settings
