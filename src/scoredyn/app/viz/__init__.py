"""Figures of scoredyn: score fields, sample clouds, trajectories, the noise compass, schedules,
training curves, benchmark plots and animations.

Every function returns a ``matplotlib.figure.Figure`` built without ``pyplot`` (an Agg canvas,
constrained layout), so nothing is shown and no global state is touched; ``save_figure(fig, path)``
writes PNG, SVG or PDF atomically and ``animate`` writes GIF (or MP4 with ffmpeg) atomically.
matplotlib is needed by this subpackage only; the core never imports it.
"""

from .animation import Frames, animate, sampler_frames
from .benchmarks import accuracy_vs_nfe, benchmark_rows, likelihood_plot
from .clouds import sample_clouds
from .compass import noise_compass
from .dynamics import Paths, forward_noising, reverse_paths, trajectories
from .fields import score_error_field, score_field
from .io import save_figure
from .noise_schedules import schedules
from .training import digits_grid, read_metrics, training_curves

__all__ = [
    "save_figure",
    "score_field",
    "score_error_field",
    "sample_clouds",
    "trajectories",
    "reverse_paths",
    "Paths",
    "forward_noising",
    "noise_compass",
    "schedules",
    "training_curves",
    "read_metrics",
    "digits_grid",
    "accuracy_vs_nfe",
    "likelihood_plot",
    "benchmark_rows",
    "animate",
    "sampler_frames",
    "Frames",
]
