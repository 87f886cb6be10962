"""Learning the field: every objective learns mog6's score; a trained field runs every sampler
under every process; the shipped digits model draws digits a held-out classifier recognises.

The training here is short (a 2x64 MLP, a few hundred steps, about a second each): the bounds are
loose on purpose and say what a *working* objective reaches in that budget, while a broken one
(wrong sign, wrong target, wrong weight) stays at the untrained error of about 1. How well each
objective learns with a real budget is measured in ``benchmarks/train_objectives.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from scoredyn.app.quality import digits_report, score_error_profile
from scoredyn.app.registry import SAMPLERS
from scoredyn.app.sampling import sample
from scoredyn.core.fields import OnProcess
from scoredyn.core.processes import EDM, VP
from scoredyn.core.targets import mog6
from scoredyn.learning import OBJECTIVE_NAMES, TrainConfig, Trainer, apply_overrides, load_trained
from scoredyn.samplers import edm_heun, karras_grid, ode

NATURAL_PROCESS = {"edm": "edm", "cfm": "linear", "vlb": "ddpm"}


def tiny(out: Path, objective: str, *extra: str) -> TrainConfig:
    return apply_overrides(
        TrainConfig(),
        [
            f"objective.name={objective}",
            f"objective.process={NATURAL_PROCESS.get(objective, 'vp')}",
            "data.n=4000",
            "model.hidden=64",
            "model.depth=2",
            "model.emb_dim=32",
            "optim.batch_size=128",
            "optim.steps=400",
            "optim.warmup=50",
            "optim.ema_decay=0.95",
            "run.ckpt_every=100000",
            "run.log_every=100",
            "run.progress=false",
            f"run.out={out}",
            *extra,
        ],
    )


# Relative score error E||s - s*||^2 / E||s*||^2 after 400 steps at sigma_hat = 3 and 1 (mog6's
# components are ~0.5 wide and ~4 apart: sigma_hat = 1 still separates the modes). Measured on this
# machine (seeds 0 and 1): at sigma_hat = 3, 0.03-0.06 for eps/dsm/x0/v/cfm, 0.07-0.15 for
# edm/ism/ism-hutchinson/vlb, 0.17-0.22 for ssm; at sigma_hat = 1, 0.15-0.33 and 0.36-0.55. The
# untrained networks sit at 0.48 (edm, whose skip connection is already a fair denoiser) to 2000
# (x0). The bounds say "has learned", loosely; a wrong sign, target or weight stays above them.
@pytest.mark.parametrize("objective", OBJECTIVE_NAMES)
def test_every_objective_learns_the_mixture_score(tmp_path, objective):
    trainer = Trainer(tiny(tmp_path, objective), resume=False)
    before = score_error_profile(trainer.field(ema=False), mog6(), [3.0], n=2000)[0]["score_rel_err"]
    trainer.fit()
    at3, at1 = (r["score_rel_err"] for r in score_error_profile(trainer.field(), mog6(), [3.0, 1.0], n=2000))
    assert at3 < 0.3 and at3 < 0.5 * before, (objective, before, at3)
    assert at1 < 0.7, (objective, at1)


@pytest.fixture(scope="module")
def trained_vp(tmp_path_factory):
    out = tmp_path_factory.mktemp("vp")
    Trainer(tiny(out, "v"), resume=False).fit()
    return load_trained(out)


@pytest.mark.parametrize("train_process", ["vp", "edm"])
def test_a_field_trained_under_one_process_solves_the_same_ode_under_another(tmp_path, train_process):
    """The PF-ODE is one ODE in (x / alpha, sigma / alpha) whatever the process (Karras et al. 2022,
    sec. 3). So the learned field solved with EDM's Heun sampler on the EDM process and with the
    Heun ODE solver on the VP process, from the same start on the same sigma_hat grid, must land on
    the same points up to the two solvers' discretisation errors, which differ (they step in
    different variables) and shrink like h^2. Measured: max difference 0.16, 0.04, 0.009 at 50, 100,
    200 steps (the data's scale is ~4). A wrong mapping between the processes (time or scale) would
    leave an O(1) difference that does not shrink; so the test asks for the h^2 shrinkage (a ratio
    above 3 from 100 to 200 steps, 4 in theory) and a small difference at 200 steps."""
    objective = "v" if train_process == "vp" else "edm"
    Trainer(tiny(tmp_path, objective), resume=False).fit()
    learned = load_trained(tmp_path).field
    vp, edm = VP(), EDM()
    on_edm = learned if train_process == "edm" else OnProcess(learned, edm)
    on_vp = learned if train_process == "vp" else OnProcess(learned, vp)
    x_hat = 80.0 * torch.randn(500, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def gap(steps: int) -> float:
        sigma_hats = karras_grid(edm, steps, sigma_max=80.0)
        t_vp = torch.cat([vp.sigma_hat_to_t(sigma_hats[:-1].clone()), torch.zeros(1, dtype=torch.float64)])
        a = edm_heun(on_edm, x_hat, sigma_hats).x
        b = ode(on_vp, x_hat * vp.alpha(t_vp[0]), t_vp, method="heun").x
        assert a.std() > 1.0  # the samples spread over the modes (not a degenerate comparison)
        return float((a - b).abs().max())

    coarse, fine = gap(100), gap(200)
    assert fine < 0.03 and coarse / fine > 3.0, (coarse, fine)


# smc and annealed-mala need a log-density, which a score network does not have: they refuse it
# (tests/app/test_cli.py) and run on energy models (tests/learning/test_energy_training.py)
@pytest.mark.parametrize("name", sorted(set(SAMPLERS) - {"smc", "annealed-mala"}))
def test_every_sampler_runs_on_a_trained_model(trained_vp, name):
    result, settings = sample(trained_vp, name, steps=4, n=200, seed=3, levels=3)
    assert torch.isfinite(result.x).all() and result.x.shape == (200, 2)
    assert settings["target"].startswith("checkpoint:")
    again, _ = sample(trained_vp, name, steps=4, n=200, seed=3, levels=3)
    assert torch.equal(result.x, again.x)  # the seed decides everything


def test_shipped_digits_model_draws_recognisable_digits():
    """The digits check: a classifier trained on the real training digits labels the samples
    with a mean confidence within 0.1 of its confidence on real held-out digits, and the class
    histogram of the samples is within TV 0.15 of uniform. With N = 1000 the histogram's own
    sampling noise is about 0.05 in TV."""
    model = load_trained("digits")  # the shipped model (benchmarks/train_digits.py)
    result, _ = sample(model, "edm-heun", steps=18, n=1000, seed=0, dtype=torch.float32)
    report = digits_report(result.x)
    assert report["real_accuracy"] > 0.9  # the judge itself is good
    assert report["confidence"]["gap"] <= 0.1, report["confidence"]
    assert report["class_tv_uniform"] <= 0.15, report["class_histogram"]
    assert np.isfinite(report["energy"]["ratio"])


def test_an_explicit_exact_start_is_refused_for_a_trained_model(trained_vp):
    """The recipes' default exact start becomes the data-moments start for a learned field, but
    asking for 'exact' explicitly is an error (there is no exact p_T to draw from)."""
    with pytest.raises(ValueError, match="start 'exact' needs an exact target"):
        sample(trained_vp, "unipc", steps=4, n=10, seed=0, start="exact")
