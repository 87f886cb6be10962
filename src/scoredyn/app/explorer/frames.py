"""What the explorer shows, computed in torch: precomputed sampler runs and the forward noising of data,
each frame's energy distance to the exact noised law, and (for a trained model) its score arrows at a
ladder of noise levels. The noised density and the exact score are not stored: the page evaluates
them from the mixture (``display_mixture``) at each frame's own noise level.

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

from ...core.fields import Field, OnProcess
from ...core.processes import EDM
from ...core.registry import resolve_process
from ...core.targets import GaussianMixture
from ...metrics import energy_distance, evaluate, expected_null_floor
from ..registry import make_grid, resolve_sampler
from ..sampling import sample
from ..study import PF_ODE_VP
from ..tuning import GridFile, nfe_for_steps, quick_grid

__all__ = ["DEFAULT_SAMPLERS", "OVERRIDES", "SAMPLER_LABELS", "ExplorerData", "Run", "compute", "display_mixture",
           "display_scale", "frame_energy", "score_arrows"]  # fmt: skip

# sampler name -> the step counts precomputed by default (per noise level for the annealed samplers);
# every name of the registry is here (a test checks it), the texts' particle samplers first
DEFAULT_SAMPLERS: dict[str, tuple[int, ...]] = {
    "annealed-langevin": (1, 4),
    "annealed-mala": (4,),
    "smc": (8,),
    "score-drift": (1,),
    "svgd": (1,),
    "svgd-median": (4,),
    "langevin": (1000,),
    "ddpm": (100, 1000),
    "ddim": (10, 100),
    "sde": (10, 100),
    "pc": (10, 50),
    "ode-euler": (10, 100),
    "ode-heun": (10, 50),
    "ode-adaptive": (10,),
    "edm-heun": (10, 50),
    "dpm-solver-2m": (5, 10),
    "unipc": (5, 10),
    "unipc-tuned": (5, 10),
    "multistep-tuned": (5, 10),
}

#: A sampler name with this suffix runs the sampler on a grid tuned for it (``tuning.quick_grid``).
TUNED = "-tuned"

#: Process and grid the explorer runs a sampler on in place of its recipe's. The probability-flow ODE runs
#: on Song et al. 2021's VP-SDE (uniform in t): on EDM's process and Karras grid, PF-ODE Heun *is* EDM Heun
#: (Karras et al. 2022, Alg. 2 without churn), and the menu would hold the same run twice.
OVERRIDES: dict[str, dict[str, str]] = {"ode-euler": PF_ODE_VP, "ode-heun": PF_ODE_VP, "ode-adaptive": PF_ODE_VP}

SAMPLER_LABELS: dict[str, str] = {
    "annealed-langevin": "annealed Langevin",
    "annealed-mala": "annealed MALA (Metropolis-corrected)",
    "smc": "SMC (particles follow the flow, reweighted)",
    "svgd": "SVGD (annealed, the texts'; particles far from the data barely move)",
    "svgd-median": "SVGD (median bandwidth, kernel-mass step)",
    "score-drift": "score drift (no noise)",
    "langevin": "Langevin (no annealing)",
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
    "multistep-tuned": "multistep, fitted grid and coefficients",
    "dpm-solver-2m-tuned": "DPM-Solver++(2M), tuned grid",
    "ddim-tuned": "DDIM, tuned grid",
    "edm-heun-tuned": "EDM Heun, tuned grid",
}

METRICS_SHOWN = ("mode_tv", "energy", "sliced_w1", "mmd", "ksd")
# a point cloud's KDE mixture has hundreds of components: mode TV means nothing there, and the closed-form
# floors of energy and KSD cost minutes (pairs of components); its table keeps the metrics that stay cheap
MANY_COMPONENTS, METRICS_MANY = 64, ("sliced_w1", "mmd")
SIGMA_HAT_MIN, SIGMA_HAT_MAX = 0.05, 80.0  # the noise slider's range (the samplers' range)
FLOOR_PAIRS = 4000  # exact pairs behind each frame's energy floor (about 1% relative error)


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
        t: ``(F,)`` the process time of each frame (``None`` for forward, drawn in ``sigma_hat`` alone).
        nfe: field evaluations per particle path.
        settings: what ``sampling.sample`` ran with.
        metrics: particle count -> ``metrics.evaluate`` of the last frame's first ``count`` particles.
        energy, energy_floor: ``(F,)`` each frame's energy distance to the exact noised law and its
            Monte-Carlo floor (``frame_energy``).
        alpha, sigma, x0, eps: the forward run only: ``y[f] = alpha[f] x0 + sigma[f] eps`` with
            ``(F,)`` coefficients and ``(2, N)`` data and noise (the page computes its frames from them).
    """

    key: str
    sampler: str
    steps: int | None
    y: np.ndarray
    sigma_hat: np.ndarray
    scale: np.ndarray
    t: np.ndarray | None = None
    nfe: int = 0
    settings: dict = field(default_factory=dict)
    metrics: dict[int, dict] = field(default_factory=dict)
    energy: np.ndarray | None = None
    energy_floor: np.ndarray | None = None
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
        reference: the exact 2-D mixture behind the density, the metrics (and the exact score).
        s_data: the data standard deviation ``s`` of the display coordinates.
        box: ``(x0, x1, y0, y1)`` the plot box.
        grid_x, grid_y: ``(G,)`` heatmap coordinates.
        arrow_x, arrow_y: ``(A,)`` arrow tails (flattened grid).
        arrow_levels: ``(K,)`` ``sigma_hat`` of the stored arrows; ``None`` when the score is exact (the
            page computes it from ``reference`` at any noise level).
        arrows: ``(K, 2, A)`` a learned score's arrows, drawn length (``score_arrows``), or ``None``.
        runs: forward run first, then the sampler runs.
        counts: particle counts offered (the first ``count`` particles of each run).
        metric_particles: particles per frame behind ``Run.energy``.
    """

    title: str
    source: str
    reference: GaussianMixture
    s_data: float
    box: tuple[float, float, float, float]
    grid_x: np.ndarray
    grid_y: np.ndarray
    arrow_x: np.ndarray
    arrow_y: np.ndarray
    arrow_levels: np.ndarray | None
    arrows: np.ndarray | None
    runs: list[Run]
    counts: tuple[int, ...]
    metric_particles: int


def display_scale(alpha: torch.Tensor, sigma: torch.Tensor, s_data: float) -> torch.Tensor:
    """``c = s / sqrt(s^2 alpha^2 + sigma^2)``: display coordinates ``y = c x`` (module docstring)."""
    return s_data / torch.sqrt(s_data**2 * alpha**2 + sigma**2)


def display_mixture(reference: GaussianMixture, sigma_hat: float, s_data: float) -> GaussianMixture:
    """The exact law of ``y`` at noise level ``sigma_hat``: ``y = C (x_0 + sigma_hat eps)`` with
    ``C = s / sqrt(s^2 + sigma_hat^2)`` is the mixture with means ``C mu_k`` and covariances
    ``C^2 Sigma_k + (C sigma_hat)^2 I``; at ``sigma_hat = inf``, ``N(0, s^2 I)`` (``C = 0``, ``C sigma_hat = s``).
    The page evaluates the same formula in JavaScript."""
    sh = float(sigma_hat)
    if math.isinf(sh):
        c, noise = 0.0, s_data
    else:
        c = s_data / math.sqrt(s_data**2 + sh**2)
        noise = c * sh
    covs = c**2 * reference.covs + noise**2 * torch.eye(reference.dim, dtype=reference.covs.dtype)
    return GaussianMixture(reference.weights, c * reference.means, covs, name=f"{reference.name} at {sh:g}")


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
    metric_particles: int = 500,
    log: Callable[[str], None] | None = None,
) -> ExplorerData:
    """Compute the explorer's data for an exact 2-D mixture or a trained 2-D model.

    A trained model (``train.TrainedModel``) supplies the score arrows and drives the samplers; the
    density, the forward run and the metrics use the exact mixture of its training data
    (``registry.resolve_target`` of its ``data.name``: for a point cloud, its KDE mixture).

    Args:
        target_or_model: a 2-D ``GaussianMixture`` or a trained model on 2-D data.
        n: particles per run.
        frames: most frames kept per run, half as many for a stochastic sampler (the path is subsampled
            evenly, first and last kept: noise makes each frame cost several times a smooth one in the
            page, and the eye follows no single noisy particle); the annealed samplers run on
            ``frames - 1`` levels.
        samplers: sampler name -> step counts to precompute (default ``DEFAULT_SAMPLERS``).
        counts: particle counts offered by the page (default ``n/4, n/2, n``).
        seed: seeds every run and the forward noise; ``seed + 1`` the metrics' exact samples.
        levels: noise levels of a learned field's arrows (geometric ``sigma_hat`` from 0.05 to 80).
        grid: heatmap resolution ``G``.
        arrows: arrow grid size (``arrows x arrows``).
        metric_particles: particles per frame in the energy-per-frame plot (the first of each run).
        log: called with a line before each run (progress).
    """
    for name, value, low in (("n", n, 2), ("frames", frames, 2), ("levels", levels, 2), ("grid", grid, 4),
                             ("arrows", arrows, 2), ("metric_particles", metric_particles, 2)):  # fmt: skip
        if not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    samplers = _checked_samplers(DEFAULT_SAMPLERS if samplers is None else samplers)
    counts = tuple(sorted({max(1, n // 4), max(1, n // 2), n})) if counts is None else tuple(sorted(set(counts)))
    if not counts or counts[0] < 2 or counts[-1] > n:
        raise ValueError(f"counts must lie in 2..n={n}, got {counts}")

    reference, field_fn, title, source = _resolve(target_or_model)
    s_data = math.sqrt(float(torch.diagonal(reference.covariance()).mean()))
    box = _box(reference, s_data, seed)
    gx, gy = (np.linspace(box[0], box[1], grid), np.linspace(box[2], box[3], grid))
    ax, ay = np.linspace(box[0], box[1], arrows + 2)[1:-1], np.linspace(box[2], box[3], arrows + 2)[1:-1]
    tail_x, tail_y = (a.ravel() for a in np.meshgrid(ax, ay))
    arrow_levels = vectors = None
    if field_fn is not None:  # a learned score is known only where it was evaluated: a ladder of levels
        sh = torch.logspace(math.log10(SIGMA_HAT_MIN), math.log10(SIGMA_HAT_MAX), levels, dtype=torch.float64)
        cell = min(ax[1] - ax[0], ay[1] - ay[0])
        arrow_levels, vectors = sh.numpy(), score_arrows(field_fn, sh, s_data, tail_x, tail_y, cell=cell)

    runs = [_forward(reference, s_data, n, frames, seed)]
    for name, step_list in samplers.items():
        for steps in step_list:
            if log is not None:
                log(f"running {name} with {steps} steps on {n} particles")
            runs.append(_sampler_run(target_or_model, name, steps, n, frames, s_data, seed))
    if log is not None:
        log(f"metrics of {len(runs)} runs: every frame, and the last at {len(counts)} particle counts")
    # the exact samples the metrics compare with come from seed + 1: with the runs' own seed they would repeat
    # the components and normals of an exact start, and the samples would look better than exact
    m = min(metric_particles, n)
    shown = METRICS_SHOWN if reference.n_components <= MANY_COMPONENTS else METRICS_MANY
    for run in runs:
        run.energy, run.energy_floor = frame_energy(run.y[:, :, :m], run.sigma_hat, reference, s_data, seed + 1)
    for run in runs[1:]:
        final = torch.from_numpy(run.y[-1].T.copy())
        run.metrics = {c: evaluate(final[:c], reference, seed=seed + 1, metrics=shown) for c in counts}
    return ExplorerData(title, source, reference, s_data, box, gx, gy, tail_x, tail_y, arrow_levels, vectors,
                        runs, counts, m)  # fmt: skip


def _checked_samplers(samplers: Mapping[str, Sequence[int]]) -> dict[str, tuple[int, ...]]:
    """The sampler table, each name known (``-tuned``: one a grid can be tuned for), each step count positive."""
    if not samplers:
        raise ValueError("samplers must name at least one sampler")
    out = {}
    for name, steps in samplers.items():
        resolve_sampler(name.removesuffix(TUNED))
        if name.endswith(TUNED):
            nfe_for_steps(name.removesuffix(TUNED), 1)
        if not steps or any(not isinstance(s, int) or s < 1 for s in steps):
            raise ValueError(f"samplers[{name!r}] must be a non-empty list of positive step counts, got {steps!r}")
        out[name] = tuple(steps)
    return out


def _resolve(target_or_model):
    """``(reference mixture, learned field or None, title, source line)``; a learned field maps
    ``(x, sigma_hat)`` in VE coordinates ``x = x_0 + sigma_hat eps`` (the EDM process) to the score."""
    if isinstance(target_or_model, GaussianMixture):
        target = target_or_model
        _check_2d(target.dim, f"target {target.name!r}")
        return target, None, target.name, f"exact target {target.name}: exact density and score"
    from ...core.registry import resolve_target

    model = target_or_model
    _check_2d(model.field_dim, f"checkpoint {model.directory}")
    data_name = model.config.data.name
    field_: Field = OnProcess(model.field, EDM(sigma_max=2 * SIGMA_HAT_MAX))
    source = (f"checkpoint {model.directory} (step {model.step}): learned score; density and metrics from the "
              f"exact mixture of its data {data_name!r}")  # fmt: skip
    return resolve_target(data_name), field_, f"checkpoint {model.directory}", source


def _check_2d(dim: int, what: str) -> None:
    if dim != 2:
        raise ValueError(f"the explorer draws 2-D data: {what} has dimension {dim}")


def _box(reference: GaussianMixture, s_data: float, seed: int) -> tuple[float, float, float, float]:
    """A square box holding 99.8% of the data on each axis and the blobs at high noise: ``N(mean, s^2)``
    and the limit ``N(0, s^2)`` of the display coordinates."""
    x = reference.sample(20000, torch.Generator().manual_seed(seed)).numpy()
    mean = reference.mean().numpy()
    lo = np.minimum.reduce([np.quantile(x, 0.001, axis=0), mean - 3 * s_data, np.full(2, -3 * s_data)])
    hi = np.maximum.reduce([np.quantile(x, 0.999, axis=0), mean + 3 * s_data, np.full(2, 3 * s_data)])
    centre, half = (lo + hi) / 2, 1.05 * float((hi - lo).max()) / 2
    return (centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half)


def score_arrows(field_fn, sigma_hats, s_data: float, tail_x, tail_y, cell: float) -> np.ndarray:
    """Score arrows in display coordinates, ``(K, 2, A)``: direction of ``grad_y log p(y)`` with drawn
    length ``0.9 cell tanh(|s| / median |s|)`` (long where the pull is strong, never overlapping; the
    page draws an exact mixture's arrows with the same rule).

    Args:
        field_fn: a field on the EDM process (``score(x, sigma_hat)`` with ``x = x_0 + sigma_hat eps``).
        sigma_hats: ``(K,)`` noise levels.
        s_data: the display coordinates' ``s``.
        tail_x, tail_y: ``(A,)`` arrow tails in display coordinates.
        cell: the arrow grid's spacing.
    """
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


def frame_energy(y: np.ndarray, sigma_hat: np.ndarray, reference: GaussianMixture, s_data: float,
                 seed: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Each frame's energy distance (``metrics.energy_distance``) between its particles and as many exact
    samples of the noised law at its ``sigma_hat`` (``display_mixture``), and the floor of that value,
    ``(1/m + 1/m) E|Y - Y'|`` (``metrics.expected_null_floor``).

    The exact samples of every frame come from one seed, so the reference moves smoothly with the noise
    level and the curve's wiggles are the particles' own.

    Args:
        y: ``(F, 2, m)`` particles per frame.
        sigma_hat: ``(F,)`` their noise levels.
        reference: the data's exact mixture.
        s_data: the display coordinates' ``s``.
        seed: seeds the exact samples (not the run's seed: an exact start drawn with it would share them).

    Returns:
        ``(F,)`` values and ``(F,)`` floors.
    """
    m = y.shape[2]
    values, floors = [], []
    for frame, sh in zip(y, sigma_hat, strict=True):
        law = display_mixture(reference, float(sh), s_data)
        g = torch.Generator().manual_seed(seed)
        exact = law.sample(m, g)
        values.append(energy_distance(torch.from_numpy(frame.T.copy()), exact))
        floors.append(expected_null_floor("energy", law, m, m, pairs=FLOOR_PAIRS, generator=g).mean)
    return np.array(values), np.array(floors)


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
    return Run("forward", "forward", None, y.transpose(1, 2).numpy(), sh.numpy(), np.ones(frames), None, 0, settings,
               alpha=alpha.numpy(), sigma=sigma.numpy(), x0=x0.T.numpy(), eps=eps.T.numpy())  # fmt: skip


def _sampler_run(target_or_model, name: str, steps: int, n: int, frames: int, s_data: float, seed: int) -> Run:
    """Run ``name`` with its registry recipe (and ``OVERRIDES``), recording the particles and the time of
    each path entry; keep at most ``frames`` of them (half as many for a stochastic sampler)."""
    base = name.removesuffix(TUNED)
    recipe = resolve_sampler(base)
    levels = max(frames - 1, 1) if recipe.per_level else 10
    override = OVERRIDES.get(base, {})
    grid: str | GridFile | None = override.get("grid")
    if name.endswith(TUNED):
        grid = quick_grid(target_or_model, base, nfe_for_steps(base, steps), seed)
    times: list[float] = []
    result, settings = sample(target_or_model, base, steps=steps, n=n, seed=seed, levels=levels, grid=grid,
                              process=override.get("process"), return_path=True,
                              callback=lambda info: times.append(info.t))  # fmt: skip
    process = resolve_process(settings["process"])
    if isinstance(grid, GridFile):  # the time the particles start moving at
        t0 = grid.times[0]
    else:
        grid_kwargs = recipe.grid_kwargs if grid is None else {}
        t0 = float(make_grid(settings["grid"], process, steps, levels, **grid_kwargs)[0])
    t = torch.tensor([t0, *times], dtype=torch.float64)
    path = result.path.to(torch.float64)
    assert path.shape[0] == t.numel(), "one recorded time per path entry"
    cap = max(2, frames // 2) if recipe.stochastic else frames
    keep = np.unique(np.round(np.linspace(0, path.shape[0] - 1, min(cap, path.shape[0]))).astype(int))
    t, path = t[keep], path[keep]
    alpha, sigma = process.alpha(t), process.sigma(t)
    c = display_scale(alpha, sigma, s_data)
    sigma_hat = torch.where(alpha > 0, sigma / alpha.clamp(min=1e-300), torch.inf)
    y = (c[:, None, None] * path).transpose(1, 2).numpy()
    settings["stochastic"] = recipe.stochastic
    return Run(f"{name}/{steps}", name, steps, y, sigma_hat.numpy(), c.numpy(), t.numpy(), result.nfe, settings)
