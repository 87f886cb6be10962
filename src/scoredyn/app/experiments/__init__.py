"""Experiments that train and compare: the learned force fields of the physics library against
reference molecular dynamics (Arts et al. 2023, "Two for one").

``twoforone`` (the 2-D double well, Müller–Brown and DW-4: training, both routes, simulation, one
system end to end), ``alanine_twoforone`` (the same for alanine dipeptide in an aligned Cartesian
frame), ``results`` (what both report alike) and ``figures`` (their figures; imports matplotlib).
Each experiment is imported by name: ``from scoredyn.app.experiments.twoforone import compare_run``.
"""
