"""Experiments that train and compare: the learned force fields of the physics library against
reference molecular dynamics (Arts et al. 2023, "Two for one")."""
