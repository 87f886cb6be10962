"""The exact field evaluated in row chunks: bit for bit the evaluation in one piece (scalar and per-row
times, float64 and float32, through autograd and the ODE likelihood), no chunk above its rows, and
the per-row-time path against the exact noised density."""

import pytest
import torch

from scoredyn.app.sampling import sample
from scoredyn.core.fields import AnalyticField
from scoredyn.core.fields.base import CHUNK_BYTES_ENV, FIELD_CHUNK_BYTES, field_chunk_bytes, rows_per_chunk
from scoredyn.core.processes import VP, Linear
from scoredyn.core.targets import mog6, mog10, random_mixture
from scoredyn.likelihood import log_likelihood
from scoredyn.samplers import start_distribution

WHOLE = 2**62  # a budget no test batch reaches: one chunk
TARGETS = {"mog6": mog6(), "mog10": mog10(), "random-3d": random_mixture(3, 5, seed=4)}
# (working dtype of the field, dtype of the particles): the sampler's float64 default, its
# --float32 particles on the float64 field, and a float32 field
DTYPES = [(torch.float64, torch.float64), (torch.float64, torch.float32), (torch.float32, torch.float32)]


def _field(target, process, rows: int | None, per_sample: bool, dtype=torch.float64) -> AnalyticField:
    """The exact field with a budget of exactly ``rows`` rows per chunk (``None``: one chunk)."""
    probe = AnalyticField(target, process, dtype)
    budget = WHOLE if rows is None else rows * probe.bytes_per_row(per_sample)
    return AnalyticField(target, process, dtype, chunk_bytes=budget)


def _times(kind: str, n: int, process, g: torch.Generator) -> torch.Tensor:
    if kind == "scalar":
        return torch.tensor(0.35, dtype=torch.float64)
    lo, hi = process.t_min, process.t_max
    return lo + (hi - lo) * (0.02 + 0.96 * torch.rand(n, generator=g, dtype=torch.float64))


def _points(target, n: int, dtype, g: torch.Generator) -> torch.Tensor:
    """Points spread over the mixture and beyond it (far points stress the log-sum-exp)."""
    return (target.sample(n, g) + 3.0 * torch.randn(n, target.dim, generator=g, dtype=torch.float64)).to(dtype)


@pytest.mark.parametrize("name", list(TARGETS))
@pytest.mark.parametrize("dtypes", DTYPES, ids=["f64", "f64-field-f32-x", "f32"])
@pytest.mark.parametrize("kind", ["scalar", "per-row"])
def test_chunks_are_bit_identical_to_one_piece(name, dtypes, kind):
    target, process, (work, xdt) = TARGETS[name], VP(), dtypes
    g = torch.Generator().manual_seed(3)
    n, rows = 53, 7  # 8 chunks, the last one of 4 rows
    x, t = _points(target, n, xdt, g), _times(kind, n, process, g)
    chunked = _field(target, process, rows, kind == "per-row", work)
    whole = _field(target, process, None, kind == "per-row", work)
    assert chunked.chunk_rows(t) == rows and whole.chunk_rows(t) >= n
    for method in ("score", "denoise", "eps", "velocity"):
        a, b = getattr(chunked, method)(x, t), getattr(whole, method)(x, t)
        assert a.dtype == xdt and a.shape == (n, target.dim)
        assert torch.equal(a, b), method
    (s1, d1), (s2, d2) = chunked.score_and_denoise(x, t), whole.score_and_denoise(x, t)
    assert torch.equal(s1, s2) and torch.equal(d1, d2)
    # and every row is what the field gives that row alone
    one = _field(target, process, 1, kind == "per-row", work)
    assert torch.equal(one.denoise(x, t), d2)


@pytest.mark.parametrize("kind", ["scalar", "per-row"])
def test_chunks_are_bit_identical_through_autograd(kind):
    """First and second derivatives (the exact divergence, a differentiable likelihood) through the
    chunked evaluation are those of the whole one: rows stay independent in the backward pass."""
    target, process = mog10(), VP()
    g = torch.Generator().manual_seed(5)
    n = 29
    x0, t = _points(target, n, torch.float64, g), _times(kind, n, process, g)
    cot = torch.randn(n, target.dim, generator=g, dtype=torch.float64)
    results = []
    for rows in (4, None):
        x = x0.clone().requires_grad_(True)
        v = _field(target, process, rows, kind == "per-row").velocity(x, t)
        (vjp,) = torch.autograd.grad(v, x, grad_outputs=cot, create_graph=True)
        (hvp,) = torch.autograd.grad((vjp * cot).sum(), x)
        results.append((v.detach(), vjp.detach(), hvp))
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)


def test_ode_likelihood_is_bit_identical_with_chunks():
    """``log_likelihood`` differentiates the field on ``D`` replicas of the points (exact divergence)."""
    target, process = mog6(), VP()
    x = target.sample(6, torch.Generator().manual_seed(0))
    prior = start_distribution("exact", process, process.t_max, target=target)
    out = [log_likelihood(_field(target, process, rows, False), x, prior=prior, rtol=1e-4, atol=1e-4)
           for rows in (5, None)]  # fmt: skip
    assert out[0].nfe == out[1].nfe
    assert torch.equal(out[0].logp, out[1].logp) and torch.equal(out[0].z, out[1].z)


@pytest.mark.parametrize("kind", ["scalar", "per-row"])
def test_no_evaluation_sees_more_rows_than_a_chunk(monkeypatch, kind):
    seen: list[int] = []
    original = AnalyticField.posterior

    def spy(self, x, t):
        seen.append(x.shape[0])
        assert t.ndim == 0 or t.shape == (x.shape[0],)  # per-row times are split with their rows
        return original(self, x, t)

    monkeypatch.setattr(AnalyticField, "posterior", spy)
    target, process = mog6(), VP()
    g = torch.Generator().manual_seed(1)
    n, rows = 1000, 64
    x, t = _points(target, n, torch.float64, g), _times(kind, n, process, g)
    field = _field(target, process, rows, kind == "per-row")
    for evaluate in (field.score, field.denoise, field.score_and_denoise, field.velocity):
        seen.clear()
        evaluate(x, t)
        assert max(seen) == rows and sum(seen) == n and len(seen) == 16  # ceil(1000 / 64)


def test_the_default_budget_and_its_override(monkeypatch):
    monkeypatch.delenv(CHUNK_BYTES_ENV, raising=False)
    assert FIELD_CHUNK_BYTES == 64 * 2**20 and field_chunk_bytes() == FIELD_CHUNK_BYTES
    field = AnalyticField(mog6(), VP())
    # mog6 (K = 6, D = 2): 8 bytes x K (4 D + 8) = 768 bytes per row at one time; with a time per
    # row also the factors, 8 K (4 D^2 + D) = 864 more
    assert field.bytes_per_row() == 768 and field.bytes_per_row(per_sample=True) == 768 + 864
    assert field.chunk_rows(0.5) == 64 * 2**20 // 768 == 87381
    assert field.chunk_rows(torch.full((3,), 0.5)) == 64 * 2**20 // 1632
    monkeypatch.setenv(CHUNK_BYTES_ENV, str(100 * 768 + 767))
    assert field.chunk_rows(0.5) == 100
    monkeypatch.setenv(CHUNK_BYTES_ENV, "1")
    assert field.chunk_rows(0.5) == 1  # at least one row, whatever the budget
    for bad in ("0", "-5", "lots"):
        monkeypatch.setenv(CHUNK_BYTES_ENV, bad)
        with pytest.raises(ValueError, match=CHUNK_BYTES_ENV):
            field.score(torch.zeros(2, 2, dtype=torch.float64), 0.5)
    assert rows_per_chunk(1000, 64 * 2**20) == 67108 and rows_per_chunk(10**9, 1) == 1
    with pytest.raises(ValueError, match="chunk_bytes"):
        AnalyticField(mog6(), VP(), chunk_bytes=0)


@pytest.mark.parametrize("sampler", ["unipc", "edm-heun"])
def test_sampling_is_unchanged_by_the_budget(monkeypatch, sampler):
    """The samples of ``sample`` do not depend on the budget (a budget of 16 rows against one chunk)."""
    runs = []
    for budget in (16 * 768, WHOLE):
        monkeypatch.setenv(CHUNK_BYTES_ENV, str(budget))
        runs.append(sample(mog6(), sampler, steps=4, n=300, seed=2)[0].x)
    assert torch.equal(runs[0], runs[1])


@pytest.mark.parametrize("process", [VP(), Linear()], ids=["vp", "linear"])
def test_per_row_times_against_the_exact_noised_density(process):
    """With one time per row, the score is the autograd gradient of the exact noised log density
    ``log p_{t_i}`` at each row's own time (an independent evaluation: the mixture's Cholesky
    solves), and the denoiser is Tweedie's ``(x + sigma^2 s) / alpha`` of it."""
    target = TARGETS["random-3d"]
    g = torch.Generator().manual_seed(7)
    n = 12
    x, t = _points(target, n, torch.float64, g), _times("per-row", n, process, g)
    field = _field(target, process, 5, True)
    s, x0 = field.score_and_denoise(x, t)
    for i in range(n):
        xi = x[i : i + 1].clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(target.noised(process, t[i]).log_prob(xi).sum(), xi)
        # float64 evaluations of one function by two routes: 1e-9 relative
        torch.testing.assert_close(s[i : i + 1], grad, rtol=1e-9, atol=1e-9 * float(grad.abs().max()))
        a, sig = float(process.alpha(t[i])), float(process.sigma(t[i]))
        tweedie = (x[i] + sig**2 * grad[0]) / a
        torch.testing.assert_close(x0[i], tweedie, rtol=1e-8, atol=1e-8 * float(tweedie.abs().max()))


def test_one_field_follows_its_time_from_call_to_call():
    """The factors of ``S_k`` are kept for the last time only: a field asked at t, t' and t again
    answers each time as the exact noised density of that time does (autograd of ``log p_t``)."""
    target, process = TARGETS["random-3d"], VP()
    x = _points(target, 40, torch.float64, torch.Generator().manual_seed(9))
    field = _field(target, process, 16, False)
    for t in (0.2, 0.7, 0.2):
        xr = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(target.noised(process, t).log_prob(xr).sum(), xr)
        # float64 evaluations of one function by two routes: 1e-9 relative
        torch.testing.assert_close(field.score(x, t), grad, rtol=1e-9, atol=1e-9 * float(grad.abs().max()))
