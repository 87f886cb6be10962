"""Two for one (Arts et al. 2023, "Two for one: diffusion models and force fields for coarse-grained
molecular dynamics", JCTC 19, 6151): one denoiser trained on equilibrium samples gives two samplers.

* **i.i.d. route**: run a diffusion sampler on the trained field (``scoredyn.app.sampling.sample``).
* **MD route**: use the score of the density smoothed at a small noise level ``sigma`` as a force,
  ``F(x) = kT s_theta(x, sigma)`` (``scoredyn.physics.field_force``), and run BAOAB Langevin dynamics
  (Leimkuhler & Matthews 2013) with it.

On the 2-D double well, Müller–Brown and DW-4 (``scoredyn.physics.systems``). ``training``: the
recipe per system; ``comparison``: both routes against the equilibrium, with their floors and a
table over ``sigma``; ``simulation``: MD to a trajectory file; ``run``: one system end to end with
its files and figures.
"""

from ....physics import multi_sigma_force
from .comparison import BLOWN_UP_RADIUS, MAX_BLOWN_UP, SIGMAS, RouteSamples, compare, compare_routes, md_scores
from .run import N_REF_DW4, POOL_SETTINGS, QUICK, compare_run
from .simulation import simulate
from .training import AUGMENT, N_TRAIN, TRAIN_STEPS, augment_particles, train, train_system_model

__all__ = [
    "SIGMAS",
    "BLOWN_UP_RADIUS",
    "MAX_BLOWN_UP",
    "N_TRAIN",
    "AUGMENT",
    "TRAIN_STEPS",
    "QUICK",
    "N_REF_DW4",
    "POOL_SETTINGS",
    "RouteSamples",
    "augment_particles",
    "train_system_model",
    "train",
    "compare",
    "compare_routes",
    "md_scores",
    "simulate",
    "compare_run",
    "multi_sigma_force",
]
