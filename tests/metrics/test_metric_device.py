"""The metrics follow the samples' device: scored on samples on a second device (``_foreign``: another
device's tensors with the CPU's values, checked as CUDA checks them), every metric gives the CPU's value
bit for bit, with the mixture's tensors moved to the samples (its floors, drawn from the law alone, stay
on the CPU)."""

from __future__ import annotations

import torch

from _foreign import assert_same_on_foreign, on_both
from scoredyn.core.targets import mog6
from scoredyn.metrics import (
    METRICS,
    energy_distance,
    energy_exact,
    evaluate,
    kernel_embedding,
    kernel_stein_discrepancy,
    mmd,
    mmd_exact,
    mode_tv,
    mode_tv_exact,
    mode_weights,
    sliced_wasserstein,
    wasserstein2,
)
from scoredyn.metrics.closed_forms import expected_distance
from scoredyn.metrics.exact import ksd_estimate, mode_counts

TARGET = mog6()


def _samples(n: int, seed: int) -> torch.Tensor:
    return TARGET.sample(n, torch.Generator().manual_seed(seed))


def test_distances_and_the_stein_discrepancy_follow_the_samples():
    x, y = _samples(64, 0), _samples(48, 1)

    def run(move):
        a, b = move(x), move(y)
        return (
            energy_distance(a, b),
            mmd(a, b),
            sliced_wasserstein(a, b, n_projections=8),
            wasserstein2(a, b),
            kernel_stein_discrepancy(a, TARGET.score),
            kernel_stein_discrepancy(a, TARGET.score(a), kernel="rbf"),
            mode_weights(a, TARGET),
            mode_tv(a, b, TARGET),
        )

    assert_same_on_foreign(*on_both(run), "distances")


def test_metrics_against_the_exact_law_follow_the_samples():
    x = _samples(64, 2)

    def run(move):
        a = move(x)
        counts = mode_counts(a, TARGET)
        assert counts.device.type == "cpu"  # K counts, read like a metric's value
        return (
            expected_distance(a, TARGET),
            kernel_embedding(a, TARGET, 1.5),
            counts.tolist(),
            energy_exact(a, TARGET),
            mmd_exact(a, TARGET, 1.5),
            mode_tv_exact(a, TARGET),
            ksd_estimate(a, TARGET),
            energy_exact(a, TARGET, budget=64 * 40),
        )

    assert_same_on_foreign(*on_both(run), "exact metrics")


def test_evaluate_scores_every_metric_on_the_samples_device():
    x, ref = _samples(64, 3), _samples(64, 4)

    def run(move):
        return evaluate(move(x), TARGET, seed=5), evaluate(
            move(x), TARGET, reference=move(ref), metrics=["energy", "w2"]
        )

    copies = []
    here, far = on_both(run, copies)
    assert set(METRICS) <= set(here[0])
    assert_same_on_foreign(here, far, "evaluate")
    # the samples stay where they are (w2 reads its cost matrix on the CPU: POT solves there)
    assert (False, tuple(x.shape)) not in copies, "the samples were copied to the CPU"
