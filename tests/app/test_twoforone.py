"""Two for one (Arts et al. 2023): a small denoiser of the 2-D double well as an i.i.d. sampler and as an MD
force, the contract of ``compare``, simulation to a file, and a smoke test of DW-4 with an EGNN."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from scoredyn.app.experiments.twoforone import (
    augment_particles,
    compare,
    compare_routes,
    simulate,
    train_system_model,
)
from scoredyn.learning import load_trained
from scoredyn.physics import (
    ReferenceSettings,
    equilibrium_samples,
    field_force,
    get_system,
    interatomic_distances,
    multi_sigma_force,
    reference_from_samples,
)

# compare() settings for a test: 4000 i.i.d. samples, 128 walkers for t = 20 + 40 (dt 0.05)
KNOBS = dict(sigmas=(0.03, 0.1), n_iid=4000, sampler="sde", sampler_steps=100, walkers=128, burn_in=20.0, duration=40.0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("dw-model")
    x = equilibrium_samples("double-well", 20000, seed=0)
    model = train_system_model("double-well", x, out, steps=1500, seed=0)
    return model, out


@pytest.fixture(scope="module")
def result(trained):
    return compare("double-well", trained[0], seed=1, **KNOBS)


def test_equilibrium_samples_have_the_exact_well_populations():
    # the left well (x < saddle 0.0417) holds 0.7122 of the mass; 20000 i.i.d. draws: s.e. 0.0032
    x = equilibrium_samples("double-well", 20000, seed=3)
    assert x.shape == (20000, 2) and x.dtype == torch.float64
    assert abs(float((x[:, 0] < 0.0417).double().mean()) - 0.7122) < 0.013
    assert torch.equal(x, equilibrium_samples("double-well", 20000, seed=3))
    with pytest.raises(ValueError, match="unknown system"):
        equilibrium_samples("lj99", 10)


def test_compare_contract_is_complete_finite_and_round_trips(result):
    assert result["system"] == "double-well"
    for route in ("iid", "md"):
        for key in ("fe_error_kT", "js"):
            assert math.isfinite(result["routes"][route][key]), (route, key)
    md = result["routes"]["md"]
    assert md["sigma"] in (0.03, 0.1) and md["blown_up"] == 0.0 and md["tau_int"] > 0
    assert [r["sigma"] for r in result["sigma_table"]] == [0.03, 0.1]
    # the route's entry is the table's row with the lowest free-energy error
    # (a sigma whose walkers leave a populated bin empty has an infinite error: null in JSON)
    assert md["fe_error_kT"] == min(r["fe_error_kT"] for r in result["sigma_table"] if r["fe_error_kT"] is not None)
    assert math.isfinite(result["reference"]["fe_error_kT"]) and result["reference"]["n"] == 4000
    assert json.loads(json.dumps(result, allow_nan=False)) == result


def test_both_routes_are_near_the_exact_free_energy_on_the_double_well(result):
    # The study's aim is < 0.3 kT (mean |dF| over the ~35 populated bins); benchmarks/physics_twoforone.py
    # checks it with 3000-step models. This 1500-step model (a test budget) measured iid 0.28 and
    # md 0.31 (sigma 0.1; sigma 0.03 left a populated bin empty), against a floor of 0.11 for 4000
    # exact samples and 0.11 for the same MD with the true force: the bounds below allow ~0.15 kT of
    # seed and platform variation above the measurements, and still fail a model that misses a
    # well's population by a factor e^0.5 (which alone moves every bin of that well by 0.5 kT).
    iid, md, ref = result["routes"]["iid"], result["routes"]["md"], result["reference"]
    assert iid["fe_error_kT"] < 0.45, iid
    assert md["fe_error_kT"] < 0.5, md
    # the floors: fresh exact samples of the same size, and the same MD with the true force
    assert ref["fe_error_kT"] < iid["fe_error_kT"] and ref["js"] < iid["js"]
    true_md = ref["md_true_force"]
    assert true_md["fe_error_kT"] < md["fe_error_kT"] and true_md["blown_up"] == 0.0


def test_multi_sigma_force_is_field_force_per_block(trained):
    field = trained[0].field
    x = equilibrium_samples("double-well", 64, seed=5)
    sigmas = (0.03, 0.3)
    with torch.no_grad():
        stacked = multi_sigma_force(field, sigmas, 1.5, 64)(x.repeat(2, 1))
        for k, s in enumerate(sigmas):
            torch.testing.assert_close(stacked[64 * k : 64 * (k + 1)], field_force(field, s, 1.5)(x))


def test_augment_particles_keeps_distances_and_centres():
    g = torch.Generator().manual_seed(0)
    x = 2.0 * torch.randn(50, 8, generator=g, dtype=torch.float64) + 3.0
    y = augment_particles(x, 4, 3, torch.Generator().manual_seed(1))
    assert y.shape == (150, 8)
    assert float(y.reshape(150, 4, 2).mean(dim=1).abs().max()) < 1e-12  # centre of mass removed
    d_x = interatomic_distances(x, 4).repeat(3, 1).sort(dim=1).values
    d_y = interatomic_distances(y, 4).sort(dim=1).values
    torch.testing.assert_close(d_y, d_x)  # the multiset of pair distances is invariant
    assert not torch.allclose(interatomic_distances(y, 4), interatomic_distances(x, 4).repeat(3, 1))  # permuted
    assert torch.equal(y, augment_particles(x, 4, 3, torch.Generator().manual_seed(1)))


def test_simulate_writes_a_trajectory_with_true_and_learned_forces(trained, tmp_path):
    summary = simulate("double-well", tmp_path / "true", steps=200, walkers=32, save_every=20, seed=2)
    with np.load(summary["path"]) as f:
        assert f["x"].shape == (11, 32, 2) and f["times"][-1] == pytest.approx(200 * 0.05)
        assert json.loads(str(f["settings"]))["force"] == "true"
    assert summary["blown_up"] == 0.0
    learned = simulate("double-well", tmp_path / "nn", force=str(trained[1]), sigma=0.1, steps=100, walkers=16)
    assert learned["blown_up"] == 0.0 and learned["frames"] == 11
    assert load_trained(trained[1]).field_dim == get_system("double-well").dim


def test_dw4_trains_an_egnn_and_compare_returns_finite_numbers(tmp_path):
    # a smoke test of the EGNN-backed DW-4 pipeline (the aim is shown by benchmarks/physics_twoforone.py):
    # 30 training steps on 512 short-run samples, then both routes on 256 samples / 16 walkers
    # (short reference runs: 64 walkers, burn-in 20, frames 2 apart; the floor and MD starts passed in)
    fast = ReferenceSettings(n_walkers=64, burn_in=20.0, thin=2.0)
    pool = equilibrium_samples("dw4", 1536, seed=0, settings=fast)
    model = train_system_model("dw4", pool[:512], tmp_path, steps=30, seed=0)
    assert model.config.model.net == "egnn" and model.config.model.particles == 4
    r, _ = compare_routes("dw4", model, sigmas=(0.1,), n_iid=256, sampler="sde", sampler_steps=10, walkers=16, dt=None,
                    friction=1.0, burn_in=0.2, duration=1.0, seed=2, progress=False,
                    reference=reference_from_samples("dw4", pool[512:1280]), floor_samples=pool[1280:1536],
                    starts=pool[1280:1296])  # fmt: skip
    for route in ("iid", "md"):
        assert math.isfinite(r["routes"][route]["js"]), route
    assert r["routes"]["md"]["blown_up"] == 0.0
