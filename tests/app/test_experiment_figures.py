"""The figures of the two-for-one experiments draw what the analysis computes."""

from __future__ import annotations

import math

import numpy as np

from scoredyn.app.experiments.figures import ramachandran_figure
from scoredyn.physics import alanine as ala


def test_ramachandran_figure_draws_the_free_energy():
    _, angles, _ = ala.load_subset()
    kT = ala.AlanineSettings().kT
    fig = ramachandran_figure(angles[:5000], angles, bins=24, kT=kT, vmax=6.0)
    ax0 = fig.axes[0]
    drawn = np.asarray(ax0.collections[0].get_array()).reshape(24, 24)
    f = (ala.ramachandran_surface(angles[:5000], bins=24, kT=kT).free_energy / kT).numpy().T
    np.testing.assert_allclose(drawn, np.minimum(f, 6.0))
    assert drawn.min() == 0.0 and len(fig.axes) == 3  # two panels and the colour bar
    # independently: F / kT = log(max count) - log(count) on the 24 x 24 equal cells of the torus
    wrapped = np.mod(angles[:5000].astype(np.float64) + math.pi, 2 * math.pi) - math.pi
    edges = np.linspace(-math.pi, math.pi, 25)
    counts, _, _ = np.histogram2d(wrapped[:, 0], wrapped[:, 1], bins=(edges, edges))
    with np.errstate(divide="ignore"):
        f_counts = (np.log(counts.max()) - np.log(counts)).T
    np.testing.assert_allclose(drawn, np.minimum(f_counts, 6.0), rtol=0, atol=1e-9)
