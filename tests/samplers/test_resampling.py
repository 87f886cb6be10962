"""Weights and resampling: the ESS formulas against hand computations, systematic resampling's
floor/ceil property for every uniform, multinomial resampling's mean, and the Hilbert curve's order
(a bijection on the grid whose consecutive cells are neighbours)."""

import math

import pytest
import torch

from scoredyn.samplers.resampling import (
    conditional_ess,
    effective_sample_size,
    hilbert_index,
    multinomial_resample,
    resample_groups,
    systematic_resample,
)


def test_effective_sample_size_is_kong_liu_wong():
    w = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    expected = w.sum() ** 2 / (w**2).sum()  # 100 / 30
    assert float(effective_sample_size(torch.log(w) + 7.0)) == pytest.approx(float(expected), rel=1e-12)
    assert float(effective_sample_size(torch.zeros(5, dtype=torch.float64))) == pytest.approx(5.0, rel=1e-12)


def test_conditional_ess_against_its_definition():
    g = torch.Generator().manual_seed(0)
    log_w, inc = torch.randn(50, generator=g, dtype=torch.float64), torch.randn(50, generator=g, dtype=torch.float64)
    W, u = torch.softmax(log_w, 0), torch.exp(inc)
    expected = float((W * u).sum() ** 2 / (W * u**2).sum())  # Zhou, Johansen & Aston 2016, eq. 3.16
    assert conditional_ess(log_w, inc) == pytest.approx(expected, rel=1e-12)
    assert conditional_ess(log_w, torch.full((50,), 3.0, dtype=torch.float64)) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("seed", range(20))
def test_systematic_copies_are_floor_or_ceil_of_n_w(seed):
    g = torch.Generator().manual_seed(seed)
    n = 37
    log_w = 2.0 * torch.randn(3, n, generator=g, dtype=torch.float64)
    idx = systematic_resample(log_w, g)
    expected = n * torch.softmax(log_w, -1)
    for row in range(3):
        counts = torch.bincount(idx[row], minlength=n).double()
        assert counts.sum() == n
        low, high = torch.floor(expected[row]) - 1e-9, torch.ceil(expected[row]) + 1e-9
        assert bool(((counts >= low) & (counts <= high)).all())


def test_multinomial_counts_have_the_weights_as_mean():
    # 20000 rows of 4 particles: the mean count of particle 0 is 4 W_0 with sd sqrt(4 W (1 - W) / 20000) = 0.0065;
    # the bound 0.04 is 6 sd: a false failure has probability below 1e-8
    g = torch.Generator().manual_seed(1)
    w = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    idx = multinomial_resample(torch.log(w).expand(20000, 4), g)
    mean_counts = torch.stack([(idx == k).double().sum(1).mean() for k in range(4)])
    assert torch.allclose(mean_counts, 4 * w, atol=0.04)


@pytest.mark.parametrize("dim,bits", [(2, 3), (3, 2), (4, 2)])
def test_hilbert_order_is_a_path_through_neighbouring_cells(dim, bits):
    side = 2**bits
    cells = torch.cartesian_prod(*[torch.arange(side)] * dim).double().reshape(-1, dim)
    index = hilbert_index(cells, bits=bits)
    assert index.unique().numel() == side**dim  # a bijection onto 0 .. side^D - 1
    assert int(index.min()) == 0 and int(index.max()) == side**dim - 1
    path = cells[index.argsort()]
    steps = (path[1:] - path[:-1]).abs().sum(1)
    assert bool((steps == 1).all())  # each cell is next to the one before: a Hamiltonian path of unit steps


def test_hilbert_order_keeps_separated_clusters_in_few_runs():
    # two clusters far apart: along the curve each is one or a few runs, so systematic resampling gives each
    # cluster N W_A copies to within the number of runs
    g = torch.Generator().manual_seed(2)
    x = torch.cat([torch.randn(500, 3, generator=g) - 20, torch.randn(500, 3, generator=g) + 20]).double()
    label = torch.arange(1000) >= 500
    order = hilbert_index(x).argsort()
    runs = int((label[order][1:] != label[order][:-1]).sum()) + 1
    assert runs <= 4
    log_w = torch.randn(1, 1000, generator=g, dtype=torch.float64)
    mass = float(torch.softmax(log_w[0], 0)[label].sum())
    for _ in range(10):
        idx = resample_groups(log_w, g, key=hilbert_index(x)[None])[0]
        assert abs(int(label[idx].sum()) - 1000 * mass) <= runs


def test_resample_groups_maps_back_through_the_order():
    # with one dominant particle per row, every copy is that particle, whatever the order read
    log_w = torch.full((2, 6), -50.0, dtype=torch.float64)
    log_w[0, 4] = log_w[1, 1] = 0.0
    key = torch.tensor([[5, 3, 1, 0, 2, 4], [0, 1, 2, 3, 4, 5]])
    idx = resample_groups(log_w, torch.Generator().manual_seed(0), key=key)
    assert idx[0].tolist() == [4] * 6 and idx[1].tolist() == [1] * 6
    assert math.isclose(float(effective_sample_size(log_w[0])), 1.0, rel_tol=1e-9)
