"""The alanine dipeptide molecule (ACE-ALA-NME): atoms, internal coordinates, the built structure
and the shipped PDB file.

The structure is built from internal coordinates (``_ZMATRIX``: standard peptide bond lengths,
angles and a trans backbone at ``(phi, psi) = (-80, 75)`` degrees) by the natural extension reference
frame (``place_atom``), then minimised with amber14 in vacuum (``system.write_structure``); the
minimised structure ships as ``data/alanine_dipeptide.pdb``. Nothing here needs OpenMM.

Units: nm. Coordinates are ``(22, 3)`` in the atom order of the PDB (0-5 ACE, 6-15 ALA, 16-21 NME).
``phi = C(ACE)-N-CA-C`` (atoms ``PHI_ATOMS`` = 4, 6, 8, 14) and ``psi = N-CA-C-N(NME)`` (atoms
``PSI_ATOMS`` = 6, 8, 14, 16).
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = [
    "N_ATOMS",
    "PHI_ATOMS",
    "PSI_ATOMS",
    "place_atom",
    "build_structure",
    "pdb_text",
    "structure_path",
    "read_structure",
]

N_ATOMS = 22
PHI_ATOMS = (4, 6, 8, 14)
PSI_ATOMS = (6, 8, 14, 16)

# One row per atom, in PDB order: residue, atom name, element, and the internal coordinates placing it:
# references (a, b, c) already placed, bond |c d| (Angstrom), angle b-c-d and dihedral a-b-c-d (degrees).
# Names are ff14SB's template names; a dihedral ("phi", offset) is the chosen backbone angle plus offset.
# Geometry: Engh & Huber (1991)-like peptide values, tetrahedral methyls, trans (180) peptide bonds.
_ZMATRIX: tuple[tuple, ...] = (
    ("ACE", "HH31", "H", (5, 4, 1), 1.09, 109.5, 0.0),
    ("ACE", "CH3", "C", None, None, None, None),
    ("ACE", "HH32", "H", (5, 4, 1), 1.09, 109.5, 120.0),
    ("ACE", "HH33", "H", (5, 4, 1), 1.09, 109.5, -120.0),
    ("ACE", "C", "C", (1,), 1.522, None, None),
    ("ACE", "O", "O", (1, 4), 1.229, 120.5, None),
    ("ALA", "N", "N", (5, 1, 4), 1.335, 116.6, 180.0),
    ("ALA", "H", "H", (5, 4, 6), 1.01, 119.8, 180.0),
    ("ALA", "CA", "C", (1, 4, 6), 1.458, 121.9, 180.0),  # omega(ACE) = 180
    ("ALA", "HA", "H", (4, 6, 8), 1.09, 109.5, ("phi", 120.0)),
    ("ALA", "CB", "C", (4, 6, 8), 1.525, 110.4, ("phi", -120.0)),
    ("ALA", "HB1", "H", (6, 8, 10), 1.09, 109.5, 180.0),
    ("ALA", "HB2", "H", (6, 8, 10), 1.09, 109.5, 60.0),
    ("ALA", "HB3", "H", (6, 8, 10), 1.09, 109.5, -60.0),
    ("ALA", "C", "C", (4, 6, 8), 1.525, 111.2, ("phi", 0.0)),
    ("ALA", "O", "O", (6, 8, 14), 1.229, 120.5, ("psi", 180.0)),
    ("NME", "N", "N", (6, 8, 14), 1.335, 116.2, ("psi", 0.0)),
    ("NME", "H", "H", (15, 14, 16), 1.01, 119.8, 180.0),
    ("NME", "CH3", "C", (8, 14, 16), 1.449, 121.9, 180.0),  # omega(NME) = 180
    ("NME", "HH31", "H", (14, 16, 18), 1.09, 109.5, 180.0),
    ("NME", "HH32", "H", (14, 16, 18), 1.09, 109.5, 60.0),
    ("NME", "HH33", "H", (14, 16, 18), 1.09, 109.5, -60.0),
)
_BUILD_ORDER = (1, 4, 5, 0, 2, 3, 6, 7, 8, 14, 9, 10, 11, 12, 13, 15, 16, 17, 18, 19, 20, 21)


def place_atom(a: np.ndarray, b: np.ndarray, c: np.ndarray, bond: float, angle: float, torsion: float) -> np.ndarray:
    """The point ``d`` with ``|c d| = bond``, angle ``b-c-d = angle`` and dihedral ``a-b-c-d = torsion``,
    built in the frame of ``a, b, c`` (the natural extension reference frame, NeRF; Parsons et al. 2005,
    "Practical conversion from torsion space to Cartesian space for in silico protein synthesis",
    J. Comput. Chem. 26, 1063):

    .. math::
        d = c + |cd| \\big(-\\cos\\theta\\, \\hat e_{bc} + \\sin\\theta \\cos\\tau\\, m
            + \\sin\\theta \\sin\\tau\\, n\\big), \\qquad
        n = \\frac{(b - a) \\times \\hat e_{bc}}{|(b - a) \\times \\hat e_{bc}|}, \\; m = n \\times \\hat e_{bc}.

    Args:
        a, b, c: (3,) positions already placed.
        bond: ``|c d|``; angle, torsion: ``theta`` and ``tau`` in degrees.

    Returns:
        (3,) the position of ``d``.
    """
    theta, tau = math.radians(angle), math.radians(torsion)
    e_bc = (c - b) / np.linalg.norm(c - b)
    n = np.cross(b - a, e_bc)
    n /= np.linalg.norm(n)
    m = np.cross(n, e_bc)
    local = bond * np.array([-math.cos(theta), math.sin(theta) * math.cos(tau), math.sin(theta) * math.sin(tau)])
    return c + local[0] * e_bc + local[1] * m + local[2] * n


def build_structure(phi: float = -80.0, psi: float = 75.0) -> np.ndarray:
    """Alanine dipeptide (L-alanine) from the internal coordinates ``_ZMATRIX``: (22, 3) positions in nm,
    with backbone dihedrals ``phi``, ``psi`` (degrees) exactly. Unminimised; see ``write_structure``."""
    pos = np.full((N_ATOMS, 3), np.nan)
    angles = {"phi": phi, "psi": psi}

    def value(v) -> float:
        return angles[v[0]] + v[1] if isinstance(v, tuple) else float(v)

    for i in _BUILD_ORDER:
        _, _, _, refs, bond, angle, torsion = _ZMATRIX[i]
        if refs is None:
            pos[i] = 0.0
        elif len(refs) == 1:
            pos[i] = pos[refs[0]] + [bond, 0.0, 0.0]
        elif len(refs) == 2:  # in the xy-plane
            b, c = pos[refs[0]], pos[refs[1]]
            pos[i] = place_atom(b + [0.0, 1.0, 0.0], b, c, bond, angle, 0.0)
        else:
            a, b, c = (pos[r] for r in refs)
            pos[i] = place_atom(a, b, c, bond, angle, value(torsion))
    assert np.isfinite(pos).all()
    return pos / 10.0  # Angstrom -> nm


def pdb_text(positions_nm: np.ndarray, title: str) -> str:
    """The text of a PDB file of the 22 atoms (a REMARK with ``title``, ATOM records, one chain,
    residues 1-3), from ``positions_nm`` (22, 3) in nm."""
    lines = [f"REMARK   1 {title}"]
    for k, ((res, name, element, *_), xyz) in enumerate(zip(_ZMATRIX, 10.0 * positions_nm, strict=True)):
        resseq = ("ACE", "ALA", "NME").index(res) + 1
        padded = f" {name:<3}" if len(name) < 4 else name
        x, y, z = xyz
        lines.append(
            f"ATOM  {k + 1:5d} {padded:4s} {res:3s} A{resseq:4d}    {x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00"
            f"          {element:>2s}"
        )
    lines += ["TER", "END"]
    return "\n".join(lines) + "\n"


def structure_path() -> Path:
    """The shipped, amber14-minimised structure ``scoredyn/physics/data/alanine_dipeptide.pdb``."""
    return Path(str(resources.files("scoredyn.physics") / "data" / "alanine_dipeptide.pdb"))


def read_structure(path: str | Path | None = None) -> np.ndarray:
    """Positions (22, 3) in nm from the ATOM records of a PDB file (default: the shipped amber14
    minimum, ``structure_path()``), read as text: no OpenMM needed."""
    rows = [ln for ln in Path(path or structure_path()).read_text().splitlines() if ln.startswith("ATOM")]
    return np.array([[float(r[30:38]), float(r[38:46]), float(r[46:54])] for r in rows]) / 10.0
