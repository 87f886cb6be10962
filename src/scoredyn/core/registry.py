"""The names of the core's objects: built-in targets and processes, each an explicit table (add an
entry to make a new one available by name to the command line, configs and ``sample``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .processes import EDM, OU, VE, VP, DDPMSchedule, Linear, Process, SubVP
from .targets import POINT_CLOUDS, GaussianMixture, mog6, mog10, offcentre, rings

__all__ = ["EXACT_TARGETS", "TARGETS", "resolve_target", "PROCESSES", "resolve_process"]

# --- targets -------------------------------------------------------------------------------------

EXACT_TARGETS: dict[str, Callable[[], GaussianMixture]] = {
    "mog6": mog6,
    "rings": rings,
    "offcentre": offcentre,
    "mog10": mog10,
}

TARGETS: tuple[str, ...] = tuple(EXACT_TARGETS) + tuple(POINT_CLOUDS)


def resolve_target(name_or_path: str) -> GaussianMixture:
    """A built-in target name, or a path to a mixture JSON file, as an exact ``GaussianMixture``.

    Point-cloud toys (``figure8``, ``moons``, ``swissroll``, ``checkerboard``) resolve to the exact
    mixture of their kernel density estimate (``PointCloud.as_mixture``).
    """
    if name_or_path in EXACT_TARGETS:
        return EXACT_TARGETS[name_or_path]()
    if name_or_path in POINT_CLOUDS:
        return POINT_CLOUDS[name_or_path].as_mixture()
    path = Path(name_or_path)
    if path.suffix.lower() == ".json" or path.exists():
        return GaussianMixture.load(path)
    raise ValueError(f"unknown target {name_or_path!r}: use one of {', '.join(TARGETS)} or a mixture .json file")


# --- processes -------------------------------------------------------------------------------------

PROCESSES: dict[str, Callable[[], Process]] = {
    "vp": VP,
    "vp-cosine": lambda: VP("cosine"),
    "subvp": SubVP,
    "ve": VE,
    "edm": EDM,
    "ou": OU,
    "linear": Linear,
    "ddpm": DDPMSchedule,
    "ddpm-cosine": lambda: DDPMSchedule(schedule="cosine"),
}


def resolve_process(name: str) -> Process:
    """A new process of the named kind (one of ``PROCESSES``)."""
    if name not in PROCESSES:
        raise ValueError(f"unknown process {name!r}: use one of {', '.join(PROCESSES)}")
    return PROCESSES[name]()
