"""Mode weights and mode TV against exact answers on a mixture with well-separated modes."""

from __future__ import annotations

import math

import pytest
import torch

from scoredyn.core.targets import mog6
from scoredyn.metrics import mode_tv, mode_weights

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_mode_tv_of_collapsed_samples():
    # every sample in the dominant component: TV(e_0, w) = 1 - w_0 against the exact histogram w
    target = mog6()
    collapsed = (
        target.means[0] + torch.randn(4000, 2, generator=_gen(16), dtype=F64) @ target.chol[0].T
    )
    exact = target.sample(4000, _gen(17))
    w_collapsed = mode_weights(collapsed, target)
    assert w_collapsed[0] > 0.995  # mog6's modes are far apart: almost no mis-assignment
    w_exact = mode_weights(exact, target)
    tv = mode_tv(collapsed, exact, target)
    assert tv == pytest.approx(1 - float(w_exact[0]), abs=float(1 - w_collapsed[0]) + 1e-12)
    assert tv == pytest.approx(1 - 0.55, abs=4 * math.sqrt(0.55 * 0.45 / 4000) + 0.01)
