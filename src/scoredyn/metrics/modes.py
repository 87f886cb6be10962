"""Mode weights of a Gaussian mixture and the total variation between two mode histograms."""

from __future__ import annotations

import torch
from torch import Tensor

from ..core.targets import GaussianMixture


def mode_weights(x: Tensor, mixture: GaussianMixture) -> Tensor:
    """Fraction of samples assigned to each component (largest posterior responsibility).

    .. math:: w_k(x) = \\frac{1}{N} \\#\\{i : \\arg\\max_j\\, \\pi_j\\, \\mathcal{N}(x_i; \\mu_j, \\Sigma_j) = k\\}

    Args:
        x: ``(N, D)`` samples.
        mixture: the mixture with ``K`` components.

    Returns:
        ``(K,)`` float64 weights summing to 1.
    """
    labels = mixture.component_log_prob(x).argmax(dim=1)
    return torch.bincount(labels, minlength=mixture.n_components).to(torch.float64) / x.shape[0]


def mode_tv(x: Tensor, y: Tensor, mixture: GaussianMixture) -> float:
    """Total variation between the mode-weight histograms of two sample sets (``y`` usually fresh
    exact samples, so assignment errors cancel).

    .. math:: \\mathrm{TV}(x, y) = \\tfrac{1}{2} \\sum_k |w_k(x) - w_k(y)|

    with ``w_k`` the fraction of a set assigned to component ``k`` (``mode_weights``).

    Args:
        x: ``(N, D)`` samples.
        y: ``(M, D)`` samples.
        mixture: the mixture whose components define the modes.
    """
    return 0.5 * float((mode_weights(x, mixture) - mode_weights(y, mixture)).abs().sum())
