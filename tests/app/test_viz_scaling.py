"""The scaling figure draws the benchmark records' times (N / throughput, N^2 / pairs-per-second)."""

from __future__ import annotations

import numpy as np
import pytest

from scoredyn.app.viz.scaling import scaling_figure


def _lang(n, d, k, backend, rate):
    return {"name": f"langevin/{backend}", "unit": "particle-steps/s", "value": rate,
            "settings": {"n": n, "dim": d, "components": k, "backend": backend}}  # fmt: skip


def _svgd(n, d, rate, dense=None):
    return {"name": f"svgd_pairs_per_s_n{n}_d{d}", "unit": "pairs/s", "value": rate, "baseline_value": dense,
            "settings": {"n": n, "dim": d, "backend": "torch"}}  # fmt: skip


def test_scaling_figure_draws_the_records_times():
    lang = [_lang(n, 2, 6, "eager", 1e6) for n in (1e4, 1e5)] + [_lang(n, 2, 6, "compile", 5e6) for n in (1e4, 1e5)]
    lang += [_lang(1e4, d, 6, "eager", 1e6 / d) for d in (10, 64)]
    svgd = [_svgd(n, 2, 4e7, dense=1e7) for n in (1000, 4000)]
    fig = scaling_figure(lang, svgd)
    a_n, a_d, a_s = fig.axes[:3]
    lines = {ln.get_label(): ln for ln in a_n.get_lines()}
    # seconds per step = N / (particle-steps/s): linear in N at a constant throughput
    np.testing.assert_allclose(lines["eager, D=2, K=6"].get_ydata(), [1e4 / 1e6, 1e5 / 1e6])
    np.testing.assert_allclose(lines["compile, D=2, K=6"].get_ydata(), [1e4 / 5e6, 1e5 / 5e6])
    ref = lines["O(N)"]
    slope = np.diff(np.log(ref.get_ydata())) / np.diff(np.log(ref.get_xdata()))
    np.testing.assert_allclose(slope, 1.0)
    # cost per particle-step against D (largest N at each D): 1/rate
    d_line = {ln.get_label(): ln for ln in a_d.get_lines()}["eager, K=6"]
    np.testing.assert_allclose(d_line.get_xdata(), [2, 10, 64])
    np.testing.assert_allclose(d_line.get_ydata(), [1e-6, 1e-5, 6.4e-5])
    s_lines = {ln.get_label(): ln for ln in a_s.get_lines()}
    # SVGD: N^2 pairs per direction, ours and the dense baseline
    np.testing.assert_allclose(s_lines["torch, D=2"].get_ydata(), [1000**2 / 4e7, 4000**2 / 4e7])
    np.testing.assert_allclose(s_lines["dense, D=2"].get_ydata(), [1000**2 / 1e7, 4000**2 / 1e7])
    q = s_lines["O(N^2)"]
    np.testing.assert_allclose(np.diff(np.log(q.get_ydata())) / np.diff(np.log(q.get_xdata())), 2.0)


def test_scaling_figure_needs_both_kinds_of_records():
    with pytest.raises(ValueError, match="needs Langevin"):
        scaling_figure([], [_svgd(1000, 2, 1e7)])
