"""The fused Langevin steps on an exact mixture (``kernels.mixture_langevin``, chosen underneath
``annealed_langevin`` by its ``backend``) against the plain path that calls the field's score.

The Triton kernel runs on the CPU through Triton's interpreter. Triton decides whether its own
library functions (``tl.sum``, ``tl.randn``) are interpreted when it is first imported, so
``TRITON_INTERPRET=1`` must be set before that: it is set here, at collection, and if some module
collected earlier imported triton without it, the interpreter tests (``test_interp_*``) rerun in a
fresh pytest process with the variable set, and each checks that it passed there.
"""

import os

os.environ["TRITON_INTERPRET"] = "1"  # before anything imports triton (see the module doc)

import functools  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from scoredyn.core.fields import AnalyticField, OnProcess  # noqa: E402
from scoredyn.core.registry import resolve_process, resolve_target  # noqa: E402
from scoredyn.core.targets import random_mixture  # noqa: E402
from scoredyn.kernels import mixture_langevin, mixture_score, triton_available  # noqa: E402
from scoredyn.metrics import evaluate  # noqa: E402
from scoredyn.samplers import annealed_langevin, geometric_sigma_grid, langevin, score_drift, start_distribution  # noqa: E402


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


needs_triton = pytest.mark.skipif(not triton_available(), reason="triton is not installed")


def _interpreter_in_process() -> bool:
    import triton.language as tl
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(tl.sum, InterpretedFunction)


@functools.cache
def _child_report() -> str:
    """Run this module's interpreter tests in a fresh process (TRITON_INTERPRET=1 from the start)."""
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", __file__, "-k", "interp", "-q", "-rA", "-p", "no:cacheprovider", "-p",
         "no:xdist"],
        capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    return out.stdout + out.stderr


@pytest.fixture
def interpreter(request) -> bool:
    """True when the test should run here; False when it already ran (and passed) in a child process."""
    if _interpreter_in_process():
        return True
    report = _child_report()
    name = request.node.name
    assert f"PASSED {Path(__file__).name}::{name}" in report.replace("tests/", ""), report[-3000:]
    return False


def _points(n, d, scale, seed, dtype=torch.float64):
    return torch.randn(n, d, generator=_g(seed), dtype=torch.float64).mul(scale).to(dtype)


def _rel_err(a, b) -> float:
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


CASES = {  # target, process, levels, steps per level, particles (tiny: the interpreter is slow)
    "mog6-edm": (resolve_target("mog6"), "edm", 3, 3, 96),
    "d10k6-vp": (random_mixture(10, 6, seed=1), "vp", 3, 2, 32),
    "d10k100-ve": (random_mixture(10, 100, seed=2), "ve", 1, 2, 16),
}


# --- noise off: the kernel follows the reference score drift to float tolerance --------------------


@needs_triton
@pytest.mark.parametrize("case", list(CASES))
def test_interp_noise_off_matches_reference(case, interpreter):
    if not interpreter:
        return
    target, proc, levels, steps, n = CASES[case]
    process = resolve_process(proc)
    grid = geometric_sigma_grid(process, levels)
    x = _points(n, target.dim, 4.0, 0)
    field = AnalyticField(target, process)
    ref = score_drift(field, x, grid, steps_per_level=steps)
    out64 = annealed_langevin(field, x, grid, steps_per_level=steps, noise=False, backend="triton")
    # float64: the kernel uses explicit precisions where the reference solves with Cholesky factors;
    # both are backward stable, so they differ by a few ulp times the (small) condition numbers
    assert _rel_err(out64.x, ref.x) < 1e-11
    assert out64.nfe == ref.nfe == levels * steps and out64.kernel == "triton" and ref.kernel is None
    out32 = score_drift(field, x.float(), grid, steps_per_level=steps, backend="triton")
    # float32 (the reference still computes its score in float64): each step rounds x and the
    # score, ~6e-8 relative, and the logits (quadratic forms up to ~1e3 at the last level) to
    # ~1e-4 absolute, which moves a responsibility by as much; measured max 5e-6 of max|x| over
    # these cases; 5e-5 leaves room and still fails for any wrong term (errors are O(1) then)
    assert out32.x.dtype == torch.float32
    assert _rel_err(out32.x, ref.x) < 5e-5


@needs_triton
@pytest.mark.parametrize("precision", ["ieee", "tf32x3", "tf32"])
@pytest.mark.parametrize("case", ["d10k6-vp", "d64k6-edm"])
def test_interp_every_precision_runs_within_the_float32_bound(case, precision, interpreter):
    if not interpreter:
        return
    # the interpreter computes every precision in float32 (TF32 exists only on a GPU): the argument
    # reaches the kernel (D > 8: tl.dot) with its block configuration, and the float32 bound of
    # test_interp_noise_off_matches_reference holds; benchmarks/gpu_check.py measures the GPU's
    target, proc, levels, steps, n = {**CASES, "d64k6-edm": (random_mixture(64, 6, seed=4), "edm", 2, 2, 40)}[case]
    process = resolve_process(proc)
    grid = geometric_sigma_grid(process, levels)
    x = _points(n, target.dim, 4.0, 0)  # 40 particles: one full block of 32 rows and a partial one at D = 64
    ref = score_drift(AnalyticField(target, process), x, grid, steps_per_level=steps)
    sigma2 = process.sigma(grid).square().tolist()
    y = x.float()
    for t, s2 in zip(grid, sigma2, strict=True):  # annealed_langevin's kicks, eta = sigma^2 / 2, noise off
        y = mixture_langevin(y, target.noised(process, t).precision_terms(), 0.5 * s2, steps, noise=False,
                             backend="triton", precision=precision)  # fmt: skip
    assert y.dtype == torch.float32 and _rel_err(y, ref.x) < 5e-5


def test_precision_is_checked_for_every_backend():
    terms = resolve_target("mog6").precision_terms()
    x = torch.zeros(4, 2)
    for backend in ("torch", "compile"):
        with pytest.raises(ValueError, match="precision must be one of ieee, tf32x3, tf32, got 'high'"):
            mixture_langevin(x, terms, 0.1, 1, backend=backend, precision="high")
        for p in ("tf32x3", "tf32"):  # TF32 is a float32 format: refused, not ignored, for float64
            with pytest.raises(ValueError, match=f"precision '{p}' is a float32 mode"):
                mixture_langevin(x.double(), terms, 0.1, 1, backend=backend, precision=p)
    # the torch formulation computes in x's dtype: asking for a precision changes nothing there
    out = {p: mixture_langevin(x, terms, 0.1, 2, backend="torch", precision=p, generator=_g(0))
           for p in ("ieee", "tf32x3", "tf32")}  # fmt: skip
    assert torch.equal(out["ieee"], out["tf32"]) and torch.equal(out["ieee"], out["tf32x3"])


@needs_triton
def test_interp_launch_blocking_does_not_change_the_path(interpreter):
    if not interpreter:
        return
    # the Philox key counts steps from the seed drawn from the generator, so the noise is the same
    # however the steps are grouped into launches
    p_t = resolve_target("mog6").noised(resolve_process("edm"), 1.0)
    x = _points(40, 2, 3.0, 1)
    run = functools.partial(mixture_langevin, x, p_t.precision_terms(), 0.3, 4, backend="triton")
    a, b = run(generator=_g(7)), run(generator=_g(7), steps_per_launch=3)
    assert torch.equal(a, b) and not torch.equal(x, a)
    assert not torch.equal(a, run(generator=_g(8)))
    # through the sampler: a path per level, the start first
    field = AnalyticField(resolve_target("mog6"), resolve_process("edm"))
    grid = geometric_sigma_grid(field.process, 2)
    out = annealed_langevin(field, x, grid, steps_per_level=4, backend="triton", return_path=True,
                            generator=_g(7))  # fmt: skip
    assert out.path.shape == (3, 40, 2) and torch.equal(out.path[0], x) and torch.equal(out.path[-1], out.x)


# --- the in-kernel noise is standard normal and independent -------------------------------------------


@needs_triton
def test_interp_kernel_noise_is_independent_standard_normal(interpreter):
    if not interpreter:
        return
    # with zero precisions the score vanishes, and eta = 1/2 makes each kick x += xi exactly; runs of
    # 1..4 steps from the same seed share their first draws, so their differences are the draws of steps 0..3
    n, d, steps = 4096, 2, 4
    terms = (torch.zeros(1, d, dtype=torch.float64), torch.zeros(1, d, d, dtype=torch.float64),
             torch.zeros(1, dtype=torch.float64))  # fmt: skip
    zero = torch.zeros(n, d, dtype=torch.float64)
    sums = [zero] + [mixture_langevin(zero, terms, 0.5, k, generator=_g(3), backend="triton",
                                      steps_per_launch=1) for k in range(1, steps + 1)]  # fmt: skip
    xi = torch.stack([b - a for a, b in zip(sums[:-1], sums[1:], strict=True)])  # (steps, n, d)
    together = mixture_langevin(zero, terms, 0.5, steps, generator=_g(3), backend="triton")
    assert torch.allclose(together, xi.sum(0), rtol=0, atol=1e-12)  # one launch = the same draws
    flat = xi.flatten()
    m = flat.numel()  # 32768 draws: sd of the mean 0.0055, of the variance 0.0078
    assert abs(float(flat.mean())) < 4 / m**0.5
    assert abs(float(flat.var()) - 1) < 4 * (2 / m) ** 0.5
    assert abs(float((flat**4).mean()) - 3) < 4 * (96 / m) ** 0.5  # the Gaussian kurtosis (var of xi^4 is 96)
    # correlations: across steps, across coordinates, across neighbouring particles; each from
    # >= 4095 pairs, sd <= 1/sqrt(4095) = 0.016, bound 4 sd
    def corr(a, b):
        return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])

    bound = 4 / (n - 1) ** 0.5
    assert all(abs(corr(xi[s], xi[s + 1])) < bound for s in range(steps - 1))
    assert abs(corr(xi[:, :, 0], xi[:, :, 1])) < bound
    assert abs(corr(xi[:, :-1], xi[:, 1:])) < bound
    # the law: a Kolmogorov-Smirnov distance below its 0.1% critical value 1.95/sqrt(m)
    sorted_ = flat.sort().values
    cdf = 0.5 * (1 + torch.erf(sorted_ / 2**0.5))
    grid = torch.arange(1, m + 1, dtype=torch.float64) / m
    assert float(torch.maximum(grid - cdf, cdf - (grid - 1 / m)).max()) < 1.95 / m**0.5


# --- noise on: the samples follow the target, as the reference's do ------------------------------------


def _ratios(samples, target, seed):
    ev = evaluate(samples, target, seed=seed, metrics=("mode_tv", "energy"))
    return ev["mode_tv"]["ratio"], ev["energy"]["ratio"]


@needs_triton
def test_interp_samples_match_target_like_the_reference(interpreter):
    if not interpreter:
        return
    target, process = resolve_target("mog6"), resolve_process("edm")
    grid = geometric_sigma_grid(process, 10)
    n, steps = 256, 20  # 200 steps of 256 particles: the interpreter's budget
    x = _points(n, 2, 10.0, 4)  # the ladder's start N(0, 10^2 I)
    field = AnalyticField(target, process)
    fused = annealed_langevin(field, x, grid, steps_per_level=steps, backend="triton", generator=_g(5))
    ref = annealed_langevin(field, x, grid, steps_per_level=steps, generator=_g(5))
    # ratio = metric / its Monte-Carlo floor at this n; an exact sampler scatters about 1 (single
    # draws up to ~2.5); 20 steps a level leave a small bias; 4 separates a broken kernel (missing
    # noise collapses to the modes: energy ratio > 10; a wrong weight moves mode TV by > 5 floors)
    for ratios in (_ratios(fused.x, target, 11), _ratios(ref.x, target, 11)):
        assert ratios[0] < 4 and ratios[1] < 4, ratios


def test_torch_backend_samples_match_target():
    target, process = resolve_target("mog6"), resolve_process("edm")
    grid = geometric_sigma_grid(process, 10)
    x = _points(2000, 2, 10.0, 6, torch.float32)
    out = annealed_langevin(AnalyticField(target, process), x, grid, steps_per_level=100, backend="torch",
                            generator=_g(1))  # fmt: skip
    assert out.x.dtype == torch.float32 and out.nfe == 1000 and out.kernel == "torch"
    tv, ed = _ratios(out.x, target, 12)
    # the study's setting (10 levels x 100 steps) is unbiased at this n (reference measured ratios
    # ~0.6-1.2); 3 allows one draw's scatter
    assert tv < 3 and ed < 3, (tv, ed)


# --- the torch formulation and its compiled form ----------------------------------------------------------


def test_torch_backend_follows_the_reference_path():
    # the same generator draws, so in float64 the two runs are the same path to rounding
    target, process = random_mixture(10, 6, seed=3), resolve_process("vp")
    grid = geometric_sigma_grid(process, 4)
    x = _points(300, 10, 2.0, 7)
    field = AnalyticField(target, process)
    ref = annealed_langevin(field, x, grid, steps_per_level=5, generator=_g(9))
    out = annealed_langevin(field, x, grid, steps_per_level=5, backend="torch", generator=_g(9))
    assert _rel_err(out.x, ref.x) < 1e-10  # explicit precision vs Cholesky solves: ulp-level
    # plain Langevin at one repeated level takes the same fused path
    ref1 = langevin(field, x, grid[1].repeat(7), eta=0.01, generator=_g(2))
    out1 = langevin(field, x, grid[1].repeat(7), eta=0.01, backend="torch", generator=_g(2))
    assert _rel_err(out1.x, ref1.x) < 1e-10 and out1.nfe == ref1.nfe == 7 and out1.kernel == "torch"
    # the score alone, against the field's, at a level in the middle
    t = grid[2]
    s = mixture_score(x, *target.noised(process, t).precision_terms())
    assert _rel_err(s, AnalyticField(target, process).score(x, t)) < 1e-11


def test_compiled_equals_eager():
    target, process = resolve_target("mog6"), resolve_process("edm")
    grid = geometric_sigma_grid(process, 3)
    x = _points(500, 2, 5.0, 8)
    field = AnalyticField(target, process)

    def run(backend):
        return annealed_langevin(field, x, grid, steps_per_level=5, backend=backend, generator=_g(2))

    eager, compiled, ref = run("torch"), run("compile"), run("eager")
    # the compiler may reorder the K-sums and fuse multiply-adds: a few ulp per step in float64
    assert _rel_err(compiled.x, eager.x) < 1e-12
    assert _rel_err(compiled.x, ref.x) < 1e-10
    assert compiled.nfe == ref.nfe == 15


# --- the sampler's contract -------------------------------------------------------------------------------


def test_skips_a_level_with_zero_sigma_and_records_the_path():
    target, process = resolve_target("mog6"), resolve_process("vp")
    grid = torch.tensor([0.5, 0.2, 0.0], dtype=torch.float64)  # VP: sigma(0) = 0, no step there
    x = _points(50, 2, 1.0, 9)
    field = AnalyticField(target, process)
    out = annealed_langevin(field, x, grid, steps_per_level=3, backend="torch", return_path=True)
    assert out.nfe == 6 and out.path.shape == (4, 50, 2)
    assert torch.equal(out.path[-1], out.path[-2]) and torch.equal(out.path[0], x)
    assert torch.equal(x, _points(50, 2, 1.0, 9))  # the argument is not changed


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"x": torch.zeros(4, 3)}, "x"),
        ({"grid": torch.tensor([0.1, 0.5])}, "grid"),
        ({"steps_per_level": 0}, "steps_per_level"),
        ({"eta_factor": -1.0}, "eta_factor"),
        ({"step_rule": "nope"}, "step_rule"),
        ({"backend": "cuda"}, "backend"),
    ],
)
def test_bad_arguments_raise_naming_them(kwargs, name):
    process = resolve_process("edm")
    args = {"x": torch.zeros(4, 2), "grid": geometric_sigma_grid(process, 2), "backend": "torch", **kwargs}
    with pytest.raises(ValueError, match=name):
        annealed_langevin(AnalyticField(resolve_target("mog6"), process), args.pop("x"), args.pop("grid"), **args)
    with pytest.raises(ValueError, match="steps_per_launch"):
        mixture_langevin(torch.zeros(4, 2), resolve_target("mog6").precision_terms(), 0.1, 2, steps_per_launch=0)


def test_a_fused_backend_needs_an_exact_mixture():
    # a field that is not the exact field of a mixture has no closed form to fuse: auto keeps the
    # plain path, an explicit fused backend is refused with one line
    target = resolve_target("mog6")
    field = OnProcess(AnalyticField(target, resolve_process("edm")), resolve_process("vp"))
    grid = geometric_sigma_grid(field.process, 2)
    x = _points(20, 2, 3.0, 3)
    assert annealed_langevin(field, x, grid, steps_per_level=2).kernel is None
    with pytest.raises(ValueError, match="needs the exact field of a Gaussian mixture"):
        annealed_langevin(field, x, grid, steps_per_level=2, backend="torch")


def test_interp_sample_dispatches_to_the_kernel(interpreter):
    """``sampling.sample`` passes a backend to annealed Langevin, which runs an exact mixture through the
    fused kernel (on CUDA by default; here asked for, on the interpreter): the same particles as the
    sampler called on the same start with the same generator, and the settings say so. On the CPU by
    default it keeps the plain path."""
    if not interpreter:
        return
    from scoredyn.app.sampling import sample

    target, proc = resolve_target("mog6"), resolve_process("edm")
    ref, settings = sample(target, "annealed-langevin", steps=3, n=64, seed=5, levels=4, return_path=True)
    assert settings["kernel"] is None
    res, settings = sample(target, "annealed-langevin", steps=3, n=64, seed=5, levels=4, return_path=True,
                           backend="triton")  # fmt: skip
    assert settings["kernel"] == "triton" and res.nfe == ref.nfe and res.path.shape == ref.path.shape
    torch.testing.assert_close(res.path[0], ref.path[0], rtol=0, atol=0)  # the same start
    grid = geometric_sigma_grid(proc, 4)
    g = torch.Generator().manual_seed(5)
    x0 = start_distribution("ladder", proc, grid[0], dim=2).sample(64, g)  # the start draws, then the kernel's seed
    direct = annealed_langevin(AnalyticField(target, proc), x0, grid, steps_per_level=3, backend="triton", generator=g)
    torch.testing.assert_close(res.x, direct.x, rtol=0, atol=0)
