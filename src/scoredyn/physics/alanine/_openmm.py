"""OpenMM, imported on first use (an optional dependency: ``pip install 'scoredyn[physics]'``), and the
two pieces every run shares: the constraint setting by name and a Context on a named platform."""

from __future__ import annotations

from typing import Any

__all__ = ["openmm_modules", "constraint_method", "make_context"]


def openmm_modules() -> tuple[Any, Any, Any]:
    """``(openmm, openmm.app, openmm.unit)``, or an ImportError that says how to install them."""
    try:
        import openmm
        import openmm.app
        import openmm.unit
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError("alanine dipeptide MD needs OpenMM: pip install 'scoredyn[physics]'") from e
    return openmm, openmm.app, openmm.unit


def constraint_method(constraints: str) -> Any:
    """OpenMM's constraint setting for ``"hbonds"`` (bonds to hydrogen rigid) or ``"none"``."""
    _, app, _ = openmm_modules()
    table = {"hbonds": app.HBonds, "none": None}
    if constraints not in table:
        raise ValueError(f"constraints must be 'hbonds' or 'none', got {constraints!r}")
    return table[constraints]


def make_context(system: Any, integrator: Any, platform: str) -> Any:
    """An ``openmm.Context`` of ``system`` and ``integrator`` on the platform named ``platform``
    (``"CPU"`` runs one thread)."""
    openmm, _, _ = openmm_modules()
    plat = openmm.Platform.getPlatformByName(platform)
    props = {"Threads": "1"} if platform == "CPU" else {}
    return openmm.Context(system, integrator, plat, props)
