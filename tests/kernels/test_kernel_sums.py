"""The SVGD direction's kernel sums: the fused Triton pass (run on the CPU by its interpreter) and the
memory-budgeted torch blocks, each through ``svgd_direction`` against the dense ``(N, N, D)`` form of
eq. 8 written in the tests (``_references.svgd_direction_dense``).

``TRITON_INTERPRET=1`` must be in force before ``triton.language`` is first imported (its library
functions are decorated then). If another test module imported triton earlier in this process,
the interpreter tests here cannot run in-process: they are skipped and ``test_in_a_fresh_process``
runs this file again in a child process where they can."""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported (see the module doc)

import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from _references import svgd_direction_dense  # noqa: E402
from scoredyn.core.fields import AnalyticField  # noqa: E402
from scoredyn.core.processes import EDM  # noqa: E402
from scoredyn.core.targets import mog6  # noqa: E402
from scoredyn.kernels import svgd as kernels  # noqa: E402
from scoredyn.samplers import (  # noqa: E402
    geometric_sigma_grid,  # noqa: E402
    svgd,
    svgd_direction,
)

triton = pytest.importorskip("triton")


def _interpreter_ready() -> bool:
    """The interpreter is on and triton's library functions were decorated under it."""
    from triton.language import standard
    from triton.runtime.interpreter import InterpretedFunction

    return os.environ.get("TRITON_INTERPRET") == "1" and isinstance(standard.zeros, InterpretedFunction)


needs_interpreter = pytest.mark.skipif(
    not _interpreter_ready(), reason="triton was imported before TRITON_INTERPRET=1: see test_in_a_fresh_process"
)

U32 = torch.finfo(torch.float32).eps / 2  # float32 unit roundoff, 6e-8


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _term_scale(x: Tensor, s: Tensor, h: float, lam: float) -> Tensor:
    """Per row, ``(1/N) sum_j k_ij (|s_j| + lam (2/h^2)(|c_i| + |c_j|))`` with ``c`` the centred
    particles: the size of the numbers the fused kernel actually adds up (float64)."""
    x, s = x.double(), s.double()
    c = x - x.mean(0)
    k = torch.exp(-torch.cdist(x, x).square() / h**2)
    cn, sn = c.norm(dim=1), s.norm(dim=1)
    return (k @ sn + lam * (2 / h**2) * (k.sum(1) * cn + k @ cn)) / x.shape[0]


Tensor = torch.Tensor


# --- the fused Triton kernel against the dense reference -------------------------------------------


@needs_interpreter
@pytest.mark.parametrize("precision", kernels.PRECISIONS)
@pytest.mark.parametrize(
    ("n", "d", "spread", "h"),
    [
        (150, 2, 2.0, 1.0),  # 150 = 2 tiles + 22: partial row and column tiles
        (100, 10, 1.0, 3.0),  # W = 2 D + 1 = 21 padded to 32
        (70, 64, 1.0, 10.0),  # W = 256 > 2 D + 1: padded accumulators; k ~ exp(-1.3) typical
    ],
)
def test_triton_equals_dense(n, d, spread, h, precision):
    g = _gen(n + d)
    x = spread * torch.randn(n, d, generator=g) + 3.0  # off-centre: the kernel centres
    s = torch.randn(n, d, generator=g)
    assert n % kernels.block_config(2 * d + 1)[0] != 0 and kernels.block_config(2 * d + 1)[2] >= 2 * d + 1
    k = torch.exp(-torch.cdist(x, x).square() / h**2)
    assert 0.05 < float(k.mean()) < 0.6  # most pairs count: the kernel is neither ~0 nor ~1
    for lam in (0.0, 1.0):
        fused = svgd_direction(x, s, h, lam, backend="triton", precision=precision)
        ref = svgd_direction_dense(x.double(), s.double(), h, lam)  # float64, same float32 inputs
        err = (fused.double() - ref).norm(dim=1)
        # float32: each k carries a relative error <= (d2/h^2 + 2) u (exponent argument and exp), the
        # row sums over N <= 150 terms at most N u in the worst order; 30 + 150 < 200, so err is
        # within 200 u of the summed magnitudes (measured <= 3.5 u). The interpreter computes every
        # precision in float32 (TF32 exists only on the GPU), so the one bound holds for all three.
        assert fused.dtype == torch.float32 and bool((err <= 200 * U32 * _term_scale(x, s, h, lam)).all())
        assert float(ref.norm()) > 0.01 * float(_term_scale(x, s, h, lam).norm())  # not all cancelled


@needs_interpreter
def test_tile_sums_are_added_with_compensation():
    # one term of 1, then one term of 3/4 of a half-ulp of 1 (2^-24) in each later tile of columns: a
    # plain float32 running sum rounds every later tile's sum away (the stagnation of a long float32
    # chain); the compensated sum of the tiles keeps them, and the one rounding left is the result's
    cols = kernels.block_config(2)[1]  # columns per tile
    n = 8 * cols
    x = torch.zeros(n, 1)  # every k is exp(0) = 1
    values = torch.zeros(n, 2)
    values[0, 0] = 1.0
    values[cols::cols, 0] = 0.75 * 2.0**-24
    values[:, 1] = -values[:, 0]
    exact = values.double().sum(0)  # 1 + 7 * 0.75 * 2^-24 = 1 + 5.25 u
    for precision in kernels.PRECISIONS:
        out = kernels.kernel_sums(x, values, 1.0, backend="triton", precision=precision)
        err = (out.double() - exact).abs() / exact.abs()
        # the plain running sum: every row 5.25 u off; compensated: 0.75 u (the result rounded once)
        assert float(err.max()) <= U32, (precision, float(err.max()) / U32)


@needs_interpreter
def test_distances_from_differences_far_from_the_origin():
    # a cloud of width 0.05 a thousand units out, h = 0.05: the expanded |x|^2 + |y|^2 - 2 x.y in float32
    # would err by ~eps |x|^2 / h^2 = 20 in every exponent; exact differences keep each k to float32
    g = _gen(11)
    x = 1000.0 + 0.05 * torch.randn(100, 3, generator=g)
    values = torch.cat([torch.randn(100, 2, generator=g), torch.ones(100, 1)], 1)
    out = kernels.kernel_sums(x, values, 0.05, backend="triton")
    xd = x.double()
    k = torch.exp(-(xd[:, None, :] - xd[None, :, :]).square().sum(-1) / 0.05**2)  # float64, same float32 inputs
    ref = k @ values.double()
    scale = k @ values.double().abs()
    # each k within (d2/h^2 + 2) u, d2/h^2 <= ~60 here; the sums over 100 terms: within 200 u of the magnitudes
    assert float(((out.double() - ref).abs() / scale).max()) <= 200 * U32


@needs_interpreter
def test_triton_float64_equals_dense():
    g = _gen(3)
    x = 2.0 * torch.randn(90, 3, generator=g, dtype=torch.float64)
    s = torch.randn(90, 3, generator=g, dtype=torch.float64)
    fused = svgd_direction(x, s, 1.5, 1.0, backend="triton")
    dense = svgd_direction_dense(x, s, 1.5, 1.0)
    # float64 sums of the same terms in another order (as the chunked test): measured ~1e-15
    assert fused.dtype == torch.float64 and float((fused - dense).norm()) <= 1e-12 * float(dense.norm())


@needs_interpreter
def test_svgd_triton_backend_follows_torch_backend():
    field = AnalyticField(mog6(), EDM())
    grid = geometric_sigma_grid(field.process, 3, sigma_max=5.0, sigma_min=0.5)
    x0 = 5.0 * torch.randn(100, 2, generator=_gen(5))
    runs = {b: svgd(field, x0, grid, steps_per_level=2, backend=b) for b in ("triton", "torch")}
    moved = float((runs["torch"].x - x0).norm(dim=1).max())
    diff = float((runs["triton"].x - runs["torch"].x).norm(dim=1).max())
    # 6 float32 steps; the two backends differ by ~1e-6 of phi a step and the kicks are contractions
    # here (eta ~ sigma^2 / 2): measured diff 8e-7 of the distance moved
    assert moved > 1.0 and diff <= 1e-4 * moved
    assert runs["triton"].nfe == runs["torch"].nfe == 6


@needs_interpreter
def test_backend_and_precision_checks(monkeypatch):
    x = torch.randn(20, 2, generator=_gen(1))
    values = torch.cat([-x, x, torch.ones(20, 1)], 1)
    assert kernels.PRECISIONS == ("ieee", "tf32x3", "tf32")
    # a wrong precision is refused whatever the backend, and a TF32 variant with float64 particles
    for backend in ("triton", "torch"):
        with pytest.raises(ValueError, match="precision must be one of ieee, tf32x3, tf32, got 'fp16'"):
            kernels.kernel_sums(x, values, 1.0, backend=backend, precision="fp16")
        for p in ("tf32x3", "tf32"):
            with pytest.raises(ValueError, match=f"precision '{p}' is a float32 mode"):
                kernels.kernel_sums(x.double(), values.double(), 1.0, backend=backend, precision=p)
    with pytest.raises(ValueError, match="precision"):
        svgd_direction(x, -x, 1.0, backend="triton", precision="TF32")
    # every variant runs (the interpreter computes them all in float32: the same sums to rounding)
    ieee = kernels.kernel_sums(x, values, 1.0, backend="triton")
    assert torch.equal(ieee, kernels.kernel_sums(x, values, 1.0, backend="triton", precision="ieee"))
    for p in ("tf32x3", "tf32"):
        torch.testing.assert_close(kernels.kernel_sums(x, values, 1.0, backend="triton", precision=p), ieee,
                                   rtol=1e-5, atol=1e-6)  # fmt: skip
    with pytest.raises(ValueError, match="backend"):
        svgd_direction(x, -x, 1.0, backend="cuda")
    monkeypatch.setenv("TRITON_INTERPRET", "0")  # a CPU tensor without the interpreter
    with pytest.raises(ValueError, match="backend 'triton' cannot run here"):
        svgd_direction(x, -x, 1.0, backend="triton")
    with pytest.raises(ValueError, match="cannot run here"):
        kernels.kernel_sums_triton(x, values, 1.0)
    assert torch.equal(svgd_direction(x, -x, 1.0, backend="auto"), svgd_direction(x, -x, 1.0, backend="torch"))


def test_in_a_fresh_process():
    """Run the interpreter tests in a child process when they could not run in this one."""
    if _interpreter_ready():
        return
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", __file__, "-k", "not fresh"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert done.returncode == 0 and "skipped" not in done.stdout, done.stdout[-3000:]


# --- the torch backend: the row block sized to the memory budget -------------------------------------


def test_tiny_budget_sets_the_block_and_equals_dense(monkeypatch):
    n, d = 203, 3
    g = _gen(7)
    x = 4.0 * torch.randn(n, d, generator=g, dtype=torch.float64) - 2.0
    s = torch.randn(n, d, generator=g, dtype=torch.float64)
    row = (2 * n + 8 * d) * 8  # bytes one block row may hold (K row, a scratch row, the c x D temporaries)
    budget = 5 * row + row // 2
    assert kernels.chunk_rows(n, d, 8, budget) == 5 and kernels.chunk_rows(n, d, 8, row - 1) == 1
    assert kernels.chunk_rows(n, d, 8) == kernels.MEMORY_BUDGET // row
    blocks = []
    real = kernels._row_block
    monkeypatch.setattr(kernels, "_row_block", lambda xi, *a: blocks.append(xi.shape[0]) or real(xi, *a))
    for lam in (0.0, 1.0):
        blocks.clear()
        phi = svgd_direction(x, s, 1.5, lam, memory_budget=budget)
        # every block's kernel rows K (c, N) fit the budget: 41 blocks of 5 rows and one of 3
        assert blocks == [5] * 40 + [3] and max(blocks) * n * 8 <= budget
        dense = svgd_direction_dense(x, s, 1.5, lam)
        # float64 sums of the same terms in another order: measured ~1e-15
        assert float((phi - dense).norm()) <= 1e-12 * float(dense.norm())
    blocks.clear()
    svgd_direction(x, s, 1.5, chunk_size=50, memory_budget=budget)  # chunk_size wins
    assert blocks == [50, 50, 50, 50, 3]


def test_svgd_passes_the_budget_and_checks_it(monkeypatch):
    field = AnalyticField(mog6(), EDM())
    grid = geometric_sigma_grid(field.process, 2, sigma_max=2.0, sigma_min=1.0)
    x0 = 2.0 * torch.randn(60, 2, generator=_gen(2), dtype=torch.float64)
    blocks = []
    real = kernels._row_block
    monkeypatch.setattr(kernels, "_row_block", lambda xi, *a: blocks.append(xi.shape[0]) or real(xi, *a))
    small = svgd(field, x0, grid, steps_per_level=2, backend="torch", memory_budget=(2 * 60 + 16) * 8 * 7)
    assert set(blocks) == {7, 4} and len(blocks) == 4 * 9  # 4 steps of 8 blocks of 7 rows and one of 4
    whole = svgd(field, x0, grid, steps_per_level=2, backend="torch")
    assert float((small.x - whole.x).abs().max()) <= 1e-12 * float(whole.x.abs().max())  # summation order only
    for bad in (0, -5, 1.5, True):
        with pytest.raises(ValueError, match="memory_budget"):
            svgd(field, x0, grid, memory_budget=bad)
    with pytest.raises(ValueError, match="backend"):
        svgd(field, x0, grid, backend="numpy")


# --- the benchmark's records -------------------------------------------------------------------------


def test_bench_run_records(monkeypatch):
    from scoredyn.app.bench import svgd as bench

    monkeypatch.setattr(bench, "QUICK_SIZES", {2: (300,), 10: (200,)})
    monkeypatch.setattr(bench, "STEP_N", {True: 150, False: 150})
    monkeypatch.setattr(bench, "_memory_records", lambda threads: [])  # N = 20,000: the particle-sampler test
    recs = bench.run(quick=True, device="cpu")
    by_name = {r["name"]: r for r in recs}
    assert set(by_name) == {"svgd_pairs_per_s_n300_d2", "svgd_pairs_per_s_n200_d10", "svgd_step_n150_d2",
                            "svgd_step_n150_d10"}  # fmt: skip
    r = by_name["svgd_pairs_per_s_n300_d2"]
    # pairs/s = N^2 / time, so the ratio to the dense baseline is the baseline's time over ours
    assert r["unit"] == "pairs/s" and r["value"] > 0 and r["baseline_value"] > 0
    assert r["ratio"] == pytest.approx(r["value"] / r["baseline_value"], rel=1e-12)
    assert r["settings"]["backend"] == "torch" and r["device"].startswith("cpu")
    step = by_name["svgd_step_n150_d10"]
    assert step["unit"] == "s" and step["value"] > 0 and step["settings"]["target"] == "mog10"
    cpu = torch.device("cpu")
    assert bench.dense_fits(5000, 2, cpu, True) and not bench.dense_fits(20000, 2, cpu, True)  # 1 GiB cap
