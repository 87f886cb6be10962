"""The fused score and log-density of a mixture against the exact field's own (triangular solves,
log-sum-exp), at several noise levels, in float64 and float32, across chunks."""

import pytest
import torch

from scoredyn.core.fields import AnalyticField
from scoredyn.core.processes import VP
from scoredyn.core.targets import mog6, mog10
from scoredyn.kernels import mixture_density
from scoredyn.kernels.mixture_density import mixture_score_log_prob


@pytest.mark.parametrize("make", [mog6, mog10])
@pytest.mark.parametrize("t", [0.0, 0.2, 0.9])
def test_fused_density_matches_the_exact_field(make, t):
    target = make()
    field = AnalyticField(target, VP())
    x = 2.0 * torch.randn(3000, target.dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    s, lp = mixture_score_log_prob(x, field.exact_mixture(t).precision_terms())
    s_ref, lp_ref = field.score_and_log_prob(x, t)
    # float64 rounding through precisions with condition number below 1e3: 1e-9 relative
    assert torch.allclose(lp, lp_ref, rtol=1e-10, atol=1e-9)
    assert torch.allclose(s, s_ref, rtol=1e-9, atol=1e-9 * float(s_ref.abs().max()))
    s32, lp32 = mixture_score_log_prob(x.float(), field.exact_mixture(t).precision_terms())
    assert s32.dtype == torch.float32 and torch.allclose(lp32.double(), lp_ref, rtol=1e-5, atol=1e-3)


def test_chunks_do_not_change_the_result(monkeypatch):
    target = mog10()
    terms = target.precision_terms()
    x = torch.randn(5000, 10, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    whole = mixture_score_log_prob(x, terms)
    monkeypatch.setattr(mixture_density, "CHUNK_BYTES", 1)  # the smallest chunk, 1024 rows
    parts = mixture_score_log_prob(x, terms)
    assert torch.allclose(whole[0], parts[0], atol=1e-12) and torch.allclose(whole[1], parts[1], atol=1e-12)


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend"):
        mixture_score_log_prob(torch.zeros(2, 2), mog6().precision_terms(), backend="triton")
