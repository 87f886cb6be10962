"""What the explorer shows, computed in torch: noised densities and score arrows at a ladder of noise
levels, the forward noising of data, and precomputed sampler runs with their metrics.

Every picture is drawn in one set of *display coordinates*: the variable

    y = c * x,    c = s / sqrt(s^2 alpha^2 + sigma^2),

for a particle ``x`` at time ``t`` of any process (``alpha``, ``sigma`` at ``t``; ``s`` is the data's
standard deviation). Since ``x / alpha = x_0 + sigma_hat eps`` with ``sigma_hat = sigma / alpha`` under
every process, ``y = alpha_s x_0 + sigma_s eps`` with ``alpha_s = s / sqrt(s^2 + sigma_hat^2)`` and
``sigma_s = alpha_s sigma_hat``: the variance-preserving process scaled to the data (its variance
stays about ``s^2``), so runs of different processes (EDM, DDPM, the Langevin ladder) share one plot
box and one density at each ``sigma_hat``. ``c`` is stored per frame, so the page can also show the
sampler's own coordinates ``x = y / c``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ...core.fields import AnalyticField, Field, OnProcess
from ...core.processes import EDM
from ...core.registry import resolve_process
from ...core.targets import GaussianMixture
from ...metrics import evaluate
from ..registry import make_grid, resolve_sampler
from ..sampling import sample
from ..tuning import nfe_for_steps, quick_grid

__all__ = ["DEFAULT_SAMPLERS", "SAMPLER_LABELS", "ExplorerData", "Run", "compute", "display_scale"]

# sampler name -> the step counts precomputed by default (per noise level for the annealed samplers)
DEFAULT_SAMPLERS: dict[str, tuple[int, ...]] = {
    "annealed-langevin": (1, 4),
    "annealed-mala": (4,),
    "smc": (8,),
    "svgd": (1,),
    "svgd-median": (4,),
    "sde": (10, 100),
    "ode-heun": (10, 50),
    "ddim": (10, 100),
    "edm-heun": (10, 50),
    "unipc": (5, 10),
    "unipc-tuned": (5, 10),
}

#: A sampler name with this suffix runs the sampler on a grid tuned for it (``tuning.quick_grid``).
TUNED = "-tuned"

SAMPLER_LABELS: dict[str, str] = {
    "annealed-langevin": "annealed Langevin",
    "annealed-mala": "annealed MALA (Metropolis-corrected)",
    "smc": "SMC (reweighted, adaptive levels)",
    "svgd": "SVGD (annealed)",
    "svgd-median": "SVGD (median bandwidth, kernel-mass step)",
    "score-drift": "score drift (no noise)",
    "langevin": "Langevin",
    "sde": "reverse SDE",
    "ode-euler": "PF-ODE (Euler)",
    "ode-heun": "PF-ODE (Heun)",
    "ode-adaptive": "PF-ODE (dopri5)",
    "ddpm": "DDPM",
    "ddim": "DDIM",
    "edm-heun": "EDM Heun",
    "pc": "predictor-corrector",
    "dpm-solver-2m": "DPM-Solver++(2M)",
    "unipc": "UniPC",
    "unipc-tuned": "UniPC, tuned grid",
    "dpm-solver-2m-tuned": "DPM-Solver++(2M), tuned grid",
    "ddim-tuned": "DDIM, tuned grid",
    "edm-heun-tuned": "EDM Heun, tuned grid",
}

METRICS_SHOWN = ("mode_tv", "energy", "sliced_w1", "mmd", "ksd")
SIGMA_HAT_MIN, SIGMA_HAT_MAX = 0.05, 80.0  # the density slider's range (the samplers' range)


@dataclass
class Run:
    """One precomputed particle run, in display coordinates.

    Attributes:
        key: unique id, ``"forward"`` or ``"<sampler>/<steps>"``.
        sampler: registry name (``"forward"`` for the noising of data).
        steps: the sampler's ``--steps`` (per level for annealed samplers), ``None`` for forward.
        y: ``(F, 2, N)`` float64 particles per frame (axis 1: x, y coordinate).
        sigma_hat: ``(F,)`` noise-to-signal ratio ``sigma / alpha`` of each frame.
        scale: ``(F,)`` the factor ``c``: display = ``c`` * the sampler's own coordinates.
        nfe: field evaluations per particle path.
        settings: what ``sampling.sample`` ran with.
        metrics: particle count -> ``metrics.evaluate`` of the last frame's first ``count`` particles.
        alpha, sigma, x0, eps: the forward run only: ``y[f] = alpha[f] x0 + sigma[f] eps`` with
            ``(F,)`` coefficients and ``(2, N)`` data and noise (the page computes its frames from them).
    """

    key: str
    sampler: str
    steps: int | None
    y: np.ndarray
    sigma_hat: np.ndarray
    scale: np.ndarray
    nfe: int = 0
    settings: dict = field(default_factory=dict)
    metrics: dict[int, dict] = field(default_factory=dict)
    alpha: np.ndarray | None = None
    sigma: np.ndarray | None = None
    x0: np.ndarray | None = None
    eps: np.ndarray | None = None


@dataclass
class ExplorerData:
    """Everything the page draws (float64 numpy arrays, before quantization).

    Attributes:
        title: what is explored (target name or checkpoint).
        source: one line on where the field and the density come from.
        s_data: the data standard deviation ``s`` of the display coordinates.
        box: ``(x0, x1, y0, y1)`` the plot box.
        levels: ``(K,)`` ``sigma_hat`` of the density slider.
        grid_x, grid_y: ``(G,)`` heatmap coordinates.
        log_density: ``(K, G, G)`` ``log p`` of ``y`` at each level minus its maximum on the grid,
            clipped below at ``-LOG_DENSITY_FLOOR`` (rows: ``grid_y``).
        arrow_x, arrow_y: ``(A,)`` arrow tails (flattened grid).
        arrows: ``(K, 2, A)`` score arrows, drawn length (see ``_arrows``).
        runs: forward run first, then the sampler runs.
        counts: particle counts offered (the first ``count`` particles of each run).
    """

    title: str
    source: str
    s_data: float
    box: tuple[float, float, float, float]
    levels: np.ndarray
    grid_x: np.ndarray
    grid_y: np.ndarray
    log_density: np.ndarray
    arrow_x: np.ndarray
    arrow_y: np.ndarray
    arrows: np.ndarray
    runs: list[Run]
    counts: tuple[int, ...]


LOG_DENSITY_FLOOR = 12.0


def display_scale(alpha: torch.Tensor, sigma: torch.Tensor, s_data: float) -> torch.Tensor:
    """``c = s / sqrt(s^2 alpha^2 + sigma^2)``: display coordinates ``y = c x`` (module docstring)."""
    return s_data / torch.sqrt(s_data**2 * alpha**2 + sigma**2)


def compute(
    target_or_model,
    *,
    n: int = 2000,
    frames: int = 100,
    samplers: Mapping[str, Sequence[int]] | None = None,
    counts: Sequence[int] | None = None,
    seed: int = 0,
    levels: int = 16,
    grid: int = 96,
    arrows: int = 21,
    log: Callable[[str], None] | None = None,
) -> ExplorerData:
    """Compute the explorer's data for an exact 2-D mixture or a trained 2-D model.

    A trained model (``train.TrainedModel``) supplies the score arrows and drives the samplers; the
    density, the forward run and the metrics use the exact mixture of its training data
    (``registry.resolve_target`` of its ``data.name``: for a point cloud, its KDE mixture).

    Args:
        target_or_model: a 2-D ``GaussianMixture`` or a trained model on 2-D data.
        n: particles per run.
        frames: most frames kept per run (the path is subsampled evenly, first and last kept); the
            annealed samplers run on ``frames - 1`` levels, so each frame is one level.
        samplers: sampler name -> step counts to precompute (default ``DEFAULT_SAMPLERS``).
        counts: particle counts offered by the page (default ``n/4, n/2, n``).
        seed: seeds every run, the forward noise and the metrics' references.
        levels: number of density levels ``K`` (geometric ``sigma_hat`` from 0.05 to 80).
        grid: heatmap resolution ``G``.
        arrows: arrow grid size (``arrows x arrows``).
        log: called with a line before each run (progress).
    """
    for name, value, low in (("n", n, 2), ("frames", frames, 2), ("levels", levels, 2), ("grid", grid, 4),
                             ("arrows", arrows, 2)):  # fmt: skip
        if not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    samplers = dict(DEFAULT_SAMPLERS if samplers is None else samplers)
    for name, steps in samplers.items():
        resolve_sampler(name.removesuffix(TUNED))
        if name.endswith(TUNED):
            nfe_for_steps(name.removesuffix(TUNED), 1)  # a sampler a grid can be tuned for
        if not steps or any(not isinstance(s, int) or s < 1 for s in steps):
            raise ValueError(f"samplers[{name!r}] must be a non-empty list of positive step counts, got {steps!r}")
    counts = tuple(sorted({max(1, n // 4), max(1, n // 2), n})) if counts is None else tuple(sorted(set(counts)))
    if not counts or counts[0] < 2 or counts[-1] > n:
        raise ValueError(f"counts must lie in 2..n={n}, got {counts}")

    reference, field_fn, title, source = _resolve(target_or_model)
    s_data = math.sqrt(float(torch.diagonal(reference.covariance()).mean()))
    box = _box(reference, s_data, seed)
    sigma_hats = torch.logspace(math.log10(SIGMA_HAT_MIN), math.log10(SIGMA_HAT_MAX), levels, dtype=torch.float64)
    gx, gy = (np.linspace(box[0], box[1], grid), np.linspace(box[2], box[3], grid))
    log_density = _log_densities(reference, sigma_hats, s_data, gx, gy)
    ax, ay = np.linspace(box[0], box[1], arrows + 2)[1:-1], np.linspace(box[2], box[3], arrows + 2)[1:-1]
    tail_x, tail_y = (a.ravel() for a in np.meshgrid(ax, ay))
    vectors = _arrows(field_fn, sigma_hats, s_data, tail_x, tail_y, cell=min(ax[1] - ax[0], ay[1] - ay[0]))

    runs = [_forward(reference, s_data, n, frames, seed)]
    for name, step_list in samplers.items():
        for steps in step_list:
            if log is not None:
                log(f"running {name} with {steps} steps on {n} particles")
            runs.append(_sampler_run(target_or_model, name, steps, n, frames, s_data, seed))
    if log is not None:
        log(f"metrics of {len(runs) - 1} runs at {len(counts)} particle counts")
    for run in runs[1:]:
        final = torch.from_numpy(run.y[-1].T.copy())
        run.metrics = {c: evaluate(final[:c], reference, seed=seed, metrics=METRICS_SHOWN) for c in counts}
    return ExplorerData(title, source, s_data, box, sigma_hats.numpy(), gx, gy, log_density,
                        tail_x, tail_y, vectors, runs, counts)  # fmt: skip


def _resolve(target_or_model):
    """``(reference mixture, field on sigma_hat, title, source line)``; the field maps ``(x, sigma_hat)``
    in VE coordinates ``x = x_0 + sigma_hat eps`` (the EDM process) to the score."""
    edm = EDM(sigma_max=2 * SIGMA_HAT_MAX)
    if isinstance(target_or_model, GaussianMixture):
        target = target_or_model
        _check_2d(target.dim, f"target {target.name!r}")
        return target, AnalyticField(target, edm), target.name, f"exact target {target.name}: exact density and score"
    from ...core.registry import resolve_target

    model = target_or_model
    _check_2d(model.field_dim, f"checkpoint {model.directory}")
    data_name = model.config.data.name
    reference = resolve_target(data_name)
    field_: Field = OnProcess(model.field, edm)
    source = (f"checkpoint {model.directory} (step {model.step}): learned score; density and metrics from the "
              f"exact mixture of its data {data_name!r}")  # fmt: skip
    return reference, field_, f"checkpoint {model.directory}", source


def _check_2d(dim: int, what: str) -> None:
    if dim != 2:
        raise ValueError(f"the explorer draws 2-D data: {what} has dimension {dim}")


def _box(reference: GaussianMixture, s_data: float, seed: int) -> tuple[float, float, float, float]:
    """A square box holding 99.8% of the data on each axis and the ``N(mean, s^2)`` blob at high noise."""
    x = reference.sample(20000, torch.Generator().manual_seed(seed)).numpy()
    lo = np.minimum(np.quantile(x, 0.001, axis=0), reference.mean().numpy() - 3 * s_data)
    hi = np.maximum(np.quantile(x, 0.999, axis=0), reference.mean().numpy() + 3 * s_data)
    centre, half = (lo + hi) / 2, 1.05 * float((hi - lo).max()) / 2
    return (centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half)


def _log_densities(reference, sigma_hats, s_data, gx, gy) -> np.ndarray:
    """``log p(y)`` on the grid for each level: ``y = c (x_0 + sigma_hat eps)`` is the mixture with
    means ``c mu_k`` and covariances ``c^2 (Sigma_k + sigma_hat^2 I)``."""
    pts = torch.from_numpy(np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2))
    out = []
    for sh in sigma_hats:
        c = float(display_scale(torch.tensor(1.0), sh, s_data))
        covs = c**2 * (reference.covs + sh**2 * torch.eye(2, dtype=torch.float64))
        logp = GaussianMixture(reference.weights, c * reference.means, covs).log_prob(pts)
        out.append((logp - logp.max()).clamp(min=-LOG_DENSITY_FLOOR).reshape(len(gy), len(gx)).numpy())
    return np.stack(out)


def _arrows(field_fn, sigma_hats, s_data, tail_x, tail_y, cell: float) -> np.ndarray:
    """Score arrows in display coordinates, ``(K, 2, A)``: direction of ``grad_y log p(y)`` with drawn
    length ``0.9 cell tanh(|s| / median |s|)`` (long where the pull is strong, never overlapping)."""
    tails = torch.from_numpy(np.stack([tail_x, tail_y], 1))
    out = []
    with torch.no_grad():
        for sh in sigma_hats:
            c = display_scale(torch.tensor(1.0, dtype=torch.float64), sh, s_data)
            s = field_fn.score((tails / c).to(torch.float64), sh).to(torch.float64) / c  # score of y = c x
            norm = s.norm(dim=1, keepdim=True).clamp(min=1e-300)
            length = 0.9 * cell * torch.tanh(norm / norm.median())
            out.append((s / norm * length).T.numpy())
    return np.stack(out)


def _forward(reference: GaussianMixture, s_data: float, n: int, frames: int, seed: int) -> Run:
    """Forward noising ``y_t = alpha_s x_0 + sigma_s eps`` (one ``eps`` per particle) along
    ``sigma_hat = 0`` then geometric from 0.05 to 80."""
    g = torch.Generator().manual_seed(seed)
    x0 = reference.sample(n, g)
    eps = torch.randn(n, 2, generator=g, dtype=torch.float64)
    sh = torch.cat([torch.zeros(1, dtype=torch.float64),
                    torch.logspace(math.log10(SIGMA_HAT_MIN), math.log10(SIGMA_HAT_MAX), frames - 1,
                                   dtype=torch.float64)])  # fmt: skip
    alpha = display_scale(torch.ones_like(sh), sh, s_data)  # alpha_s; sigma_s = alpha_s sigma_hat
    sigma = alpha * sh
    y = alpha[:, None, None] * x0[None] + sigma[:, None, None] * eps[None]  # (F, N, 2)
    settings = {"process": "display VP (alpha = s / sqrt(s^2 + sigma_hat^2))", "n": n, "seed": seed}
    return Run("forward", "forward", None, y.transpose(1, 2).numpy(), sh.numpy(), np.ones(frames), 0, settings,
               alpha=alpha.numpy(), sigma=sigma.numpy(), x0=x0.T.numpy(), eps=eps.T.numpy())  # fmt: skip


def _sampler_run(target_or_model, name: str, steps: int, n: int, frames: int, s_data: float, seed: int) -> Run:
    """Run ``name`` with its registry recipe, recording the particles and the time of each path entry."""
    base = name.removesuffix(TUNED)
    recipe = resolve_sampler(base)
    levels = max(frames - 1, 1) if recipe.per_level else 10
    grid = None
    if name.endswith(TUNED):
        grid = quick_grid(target_or_model, base, nfe_for_steps(base, steps), seed)
    times: list[float] = []
    result, settings = sample(target_or_model, base, steps=steps, n=n, seed=seed, levels=levels, grid=grid,
                              return_path=True, callback=lambda info: times.append(info.t))  # fmt: skip
    process = resolve_process(settings["process"])
    # the time the particles start moving at
    t0 = grid.times[0] if grid is not None else float(make_grid(settings["grid"], process, steps, levels)[0])
    t = torch.tensor([t0, *times], dtype=torch.float64)
    path = result.path.to(torch.float64)
    assert path.shape[0] == t.numel(), "one recorded time per path entry"
    keep = np.unique(np.round(np.linspace(0, path.shape[0] - 1, min(frames, path.shape[0]))).astype(int))
    t, path = t[keep], path[keep]
    alpha, sigma = process.alpha(t), process.sigma(t)
    c = display_scale(alpha, sigma, s_data)
    sigma_hat = torch.where(alpha > 0, sigma / alpha.clamp(min=1e-300), torch.inf)
    y = (c[:, None, None] * path).transpose(1, 2).numpy()
    return Run(f"{name}/{steps}", name, steps, y, sigma_hat.numpy(), c.numpy(), result.nfe, settings)
