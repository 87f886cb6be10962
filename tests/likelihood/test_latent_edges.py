"""``slerp`` at its edges: parallel and identical latents (the linear limit of Shoemake's formula), tiny
angles on either side of the switch to it, and the spherical formula itself for vectors of unequal
length, each against the formula written out here.

Shoemake (1985): ``z(s) = sin((1 - s) theta) / sin(theta) z0 + sin(s theta) / sin(theta) z1`` with
``cos theta = z0.z1 / (|z0| |z1|)``. As ``theta -> 0`` the coefficients tend to ``1 - s`` and ``s``
(``sin(a theta) / sin(theta) -> a``), so parallel latents interpolate linearly:
``z(s) = (1 - s) z0 + s z1``; the error of that limit is ``s (1 - s) theta^2 / 2`` relative (the
next term of ``sin(a theta) / sin(theta) = a (1 + (1 - a^2) theta^2 / 6 + ...)``, summed).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scoredyn.likelihood import slerp

F64 = torch.float64
# float64 rounding of a handful of operations on numbers of order 1: a few ulp (2.2e-16 each)
ROUND = dict(rtol=1e-14, atol=1e-15)

# Parallel pairs. For parallel z0, z1 the computed cos theta rounds to 1 - 1 ulp, to 1, or to 1 + 1 ulp
# depending on the digits (theta = 1.5e-8, 0, or arccos of a number above 1 before the clamp); the
# list holds vectors of each kind on a float64 CPU, and every one must give the linear path.
PARALLEL = [
    ([0.1, 0.2, 0.3], 2.5),
    ([0.1, 0.2, 0.3], 0.3),
    ([0.7, 0.7, 0.1], 3.0),
    ([0.7, 0.7, 0.1], 1.0),
    ([-1.3, 0.4, 2.9, 0.6], 0.3),
    ([0.3, -1.7, 2.2], 2.5),
    ([1.0, 2.0, 3.0], 1.0),
]


def linear_path(z0: np.ndarray, z1: np.ndarray, n: int) -> np.ndarray:
    s = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - s) * z0 + s * z1


def shoemake(z0: np.ndarray, z1: np.ndarray, n: int, theta: float | None = None) -> np.ndarray:
    """Shoemake's formula at ``n`` equispaced ``s`` in ``[0, 1]``; ``theta`` from the vectors unless given."""
    if theta is None:
        theta = math.acos(float(z0 @ z1) / (np.linalg.norm(z0) * np.linalg.norm(z1)))
    s = np.linspace(0.0, 1.0, n)[:, None]
    return (np.sin((1 - s) * theta) * z0 + np.sin(s * theta) * z1) / math.sin(theta)


@pytest.mark.parametrize("z, c", PARALLEL)
def test_slerp_of_parallel_vectors_is_the_linear_interpolation(z, c):
    z0 = np.array(z)
    z1 = c * z0
    path = slerp(torch.tensor(z0, dtype=F64), torch.tensor(z1, dtype=F64), 6).numpy()
    assert np.isfinite(path).all()
    # (1 - s) z0 + s c z0 = (1 + (c - 1) s) z0: written through the scale factor, not the code's sum
    s = np.linspace(0.0, 1.0, 6)[:, None]
    np.testing.assert_allclose(path, (1 + (c - 1) * s) * z0, **ROUND)
    np.testing.assert_allclose(path[0], z0, **ROUND)
    np.testing.assert_allclose(path[-1], z1, **ROUND)


def test_slerp_of_identical_vectors_stays_put():
    for z in ([0.7, 0.7, 0.1], [0.1, 0.2, 0.3], [-1.3, 0.4, 2.9, 0.6]):
        z0 = torch.tensor(z, dtype=F64)
        path = slerp(z0, z0.clone(), 5)
        np.testing.assert_allclose(path.numpy(), np.tile(np.array(z), (5, 1)), **ROUND)


@pytest.mark.parametrize("theta", [5e-7, 2e-6, 1e-4])
def test_slerp_at_tiny_angles_meets_its_linear_limit(theta):
    """On either side of the switch to the linear form (``theta < 1e-6``) the path is Shoemake's
    formula to within the limit's error ``s (1 - s) theta^2 / 2 <= theta^2 / 8`` relative (module
    docstring) plus the rounding of ``theta`` itself: ``acos`` near 1 turns one ulp of ``cos theta``
    into ``2.2e-16 / theta`` relative in ``theta``, which moves the path by about ``1e-16`` absolute
    (its coefficients change by ``O(theta * d theta)``). ``theta^2 / 8 + 1e-13`` bounds both."""
    r0, r1 = 1.3, 0.6
    z0 = np.array([r0, 0.0, 0.0])
    z1 = r1 * np.array([math.cos(theta), math.sin(theta), 0.0])
    path = slerp(torch.tensor(z0, dtype=F64), torch.tensor(z1, dtype=F64), 9).numpy()
    exact = shoemake(z0, z1, 9, theta)
    tol = theta**2 / 8 + 1e-13
    np.testing.assert_allclose(path, exact, rtol=0.0, atol=tol * max(r0, r1))
    np.testing.assert_allclose(path, linear_path(z0, z1, 9), rtol=0.0, atol=tol * max(r0, r1))


@pytest.mark.parametrize("z, c", [(z, -c) for z, c in PARALLEL])
def test_slerp_of_opposite_vectors_keeps_its_ends(z, c):
    """Opposite latents (``theta = pi``): the great circle is not unique and ``sin theta`` is zero in
    exact arithmetic, so only the ends are defined: ``s = 0`` gives ``z0`` and ``s = 1`` gives ``z1``.
    The computed ``cos theta`` rounds to -1, or to one ulp either side of it (the list holds each kind),
    and must be clamped into ``[-1, 1]`` before ``arccos`` or the whole path is NaN. The interior
    divides by ``sin(pi) = 1.2e-16`` in float64: finite, but not pinned here."""
    z0 = np.array(z)
    z1 = c * z0
    path = slerp(torch.tensor(z0, dtype=F64), torch.tensor(z1, dtype=F64), 5).numpy()
    assert np.isfinite(path).all()
    np.testing.assert_allclose(path[0], z0, **ROUND)
    np.testing.assert_allclose(path[-1], z1, **ROUND)


def test_slerp_of_unequal_lengths_is_shoemakes_formula():
    """The spherical branch for vectors of different norms at a generic angle: the coefficients
    ``sin((1 - s) theta) / sin theta`` and ``sin(s theta) / sin theta`` multiply the vectors themselves
    (no normalisation), so the norm along the path is not constant."""
    z0 = np.array([1.5, -0.4, 0.2, 0.9])
    z1 = np.array([-0.3, 2.2, 0.7, -1.1])
    theta = math.acos(float(z0 @ z1) / (np.linalg.norm(z0) * np.linalg.norm(z1)))
    path = slerp(torch.tensor(z0, dtype=F64), torch.tensor(z1, dtype=F64), 7).numpy()
    np.testing.assert_allclose(path, shoemake(z0, z1, 7), **ROUND)
    # the midpoint written out: (z0 + z1) sin(theta / 2) / sin(theta) = (z0 + z1) / (2 cos(theta / 2))
    np.testing.assert_allclose(path[3], (z0 + z1) / (2 * math.cos(theta / 2)), **ROUND)
    # n = 2 is the two ends
    two = slerp(torch.tensor(z0, dtype=F64), torch.tensor(z1, dtype=F64), 2).numpy()
    np.testing.assert_allclose(two, np.stack([z0, z1]), **ROUND)
