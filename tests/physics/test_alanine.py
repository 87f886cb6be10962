"""Alanine dipeptide: the shipped structure with amber14, forces, dihedrals, seeded OpenMM runs, the shipped
subset's Ramachandran populations, the analysis helpers and Kabsch alignment."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import torch

from scoredyn.physics import alanine as ala

needs_openmm = pytest.mark.skipif(
    importlib.util.find_spec("openmm") is None, reason="OpenMM is an optional extra (pip install 'scoredyn[physics]')"
)

# ff14SB (amber14-all.xml) bonds by (residue, atom name), ff14SB template names
EXPECTED_BONDS = {
    frozenset(p)
    for p in [
        (("ACE", "HH31"), ("ACE", "CH3")), (("ACE", "HH32"), ("ACE", "CH3")), (("ACE", "HH33"), ("ACE", "CH3")),
        (("ACE", "CH3"), ("ACE", "C")), (("ACE", "C"), ("ACE", "O")), (("ACE", "C"), ("ALA", "N")),
        (("ALA", "N"), ("ALA", "H")), (("ALA", "N"), ("ALA", "CA")), (("ALA", "CA"), ("ALA", "HA")),
        (("ALA", "CA"), ("ALA", "CB")), (("ALA", "CB"), ("ALA", "HB1")), (("ALA", "CB"), ("ALA", "HB2")),
        (("ALA", "CB"), ("ALA", "HB3")), (("ALA", "CA"), ("ALA", "C")), (("ALA", "C"), ("ALA", "O")),
        (("ALA", "C"), ("NME", "N")), (("NME", "N"), ("NME", "H")), (("NME", "N"), ("NME", "C")),
        (("NME", "C"), ("NME", "H1")), (("NME", "C"), ("NME", "H2")), (("NME", "C"), ("NME", "H3")),
    ]
}  # fmt: skip
# OpenMM's PDB reader renames NME's CH3/HH3x to C/H1-3 and ACE's HH3x to H1-3 (pdbNames.xml)
_RENAMED = {("ACE", "H1"): "HH31", ("ACE", "H2"): "HH32", ("ACE", "H3"): "HH33"}

# the shipped structure, minimised with amber14 in vacuum (measured when it was made; PDB rounding to
# 0.001 Angstrom moves the energy by < 0.01 kJ/mol and the angles by < 0.05 degrees)
E_MIN = -91.274  # kJ/mol
PHI_MIN, PSI_MIN = -75.05, 53.96  # degrees: C7eq of ff14SB in vacuum (amber99sb: -77.5, 54.1)


@pytest.fixture(scope="module")
def shipped():
    return ala.alanine_system(constraints="none")


@needs_openmm
def test_shipped_structure_has_the_amber14_topology(shipped):
    top = shipped.topology
    assert [r.name for r in top.residues()] == ["ACE", "ALA", "NME"]
    assert top.getNumAtoms() == ala.N_ATOMS == shipped.system.getNumParticles()
    bonds = {
        frozenset((a.residue.name, _RENAMED.get((a.residue.name, a.name), a.name)) for a in (b.atom1, b.atom2))
        for b in top.bonds()
    }
    assert bonds == EXPECTED_BONDS
    # 12 hydrogens: HBonds constrains exactly 12 bonds
    assert ala.alanine_system(constraints="hbonds").system.getNumConstraints() == 12
    # the atom order of the dihedral definitions
    names = [(a.residue.name, a.name) for a in top.atoms()]
    assert [names[i] for i in ala.PHI_ATOMS] == [("ACE", "C"), ("ALA", "N"), ("ALA", "CA"), ("ALA", "C")]
    assert [names[i] for i in ala.PSI_ATOMS] == [("ALA", "N"), ("ALA", "CA"), ("ALA", "C"), ("NME", "N")]


@needs_openmm
def test_shipped_structure_is_the_c7eq_minimum(shipped):
    e, f = ala.openmm_energy_force(shipped.system, shipped.positions)
    assert e[0] == pytest.approx(E_MIN, abs=0.02)
    # a minimum up to the PDB's 0.001 A rounding: forces ~ k * 1e-4 nm with k ~ 3e5 kJ/mol/nm^2 (C=O, C-H)
    assert np.abs(f).max() < 60.0 and np.sqrt((f**2).mean()) < 20.0
    phi, psi = np.degrees(ala.phi_psi(shipped.positions[None]))[0]
    assert phi == pytest.approx(PHI_MIN, abs=0.1) and psi == pytest.approx(PSI_MIN, abs=0.1)
    # the C7 hydrogen bond O(ACE) ... H(NME) that names the basin: 1.94 A
    assert np.linalg.norm(shipped.positions[5] - shipped.positions[17]) == pytest.approx(0.194, abs=0.003)
    # L-alanine (CORN rule): looking from HA, C -> CB -> N runs clockwise
    ca, c, cb, ha = (shipped.positions[i] for i in (8, 14, 10, 9))
    assert np.dot(np.cross(c - ca, cb - ca), ha - ca) < 0


@needs_openmm
def test_building_and_minimising_reproduces_the_shipped_file_and_the_basin_order(tmp_path, shipped):
    out = ala.write_structure(tmp_path / "ala.pdb")
    assert out["energy"] == pytest.approx(E_MIN, abs=0.01)
    assert out["phi"] == pytest.approx(PHI_MIN, abs=0.05) and out["psi"] == pytest.approx(PSI_MIN, abs=0.05)
    rebuilt = ala.alanine_system(tmp_path / "ala.pdb", constraints="none").positions
    np.testing.assert_allclose(rebuilt, shipped.positions, atol=2e-4)  # same minimum, to the PDB's rounding
    # for L-alanine C7eq is the global minimum; C7ax (phi > 0) lies 6.2 kJ/mol above it (ff14SB, vacuum),
    # C5 4.3 kJ/mol above (a D-alanine would have the C7ax/C7eq order reversed)
    c7ax = ala.write_structure(tmp_path / "c7ax.pdb", phi=75.0, psi=-60.0)
    c5 = ala.write_structure(tmp_path / "c5.pdb", phi=-150.0, psi=160.0)
    assert c7ax["phi"] > 0 and c7ax["energy"] - out["energy"] == pytest.approx(6.24, abs=0.05)
    assert c5["phi"] < -120 and c5["energy"] - out["energy"] == pytest.approx(4.27, abs=0.05)


@needs_openmm
def test_openmm_force_is_minus_the_gradient_of_its_energy(shipped):
    g = np.random.default_rng(0)
    x = shipped.positions + 0.005 * g.standard_normal(shipped.positions.shape)  # off the minimum
    _, f = ala.openmm_energy_force(shipped.system, x)
    h = 1e-5  # nm; central differences: error ~ h^2 U''' ~ 1e-10 * 1e6 and round-off ~ 1e-13 * 100 / h
    for atom, axis in [(0, 0), (5, 1), (8, 2), (10, 0), (16, 1), (21, 2)]:
        plus, minus = x.copy(), x.copy()
        plus[atom, axis] += h
        minus[atom, axis] -= h
        e, _ = ala.openmm_energy_force(shipped.system, np.stack([plus, minus]))
        assert f[0, atom, axis] == pytest.approx(-(e[0] - e[1]) / (2 * h), rel=1e-5, abs=1e-3)


def test_dihedral_of_constructed_points_and_torch_numpy_agree():
    g = np.random.default_rng(1)
    for tau in [-179.0, -120.0, -60.0, -1.0, 0.0, 30.0, 90.0, 179.0]:
        a, b, c = g.standard_normal((3, 3))
        d = ala.place_atom(a, b, c, 1.3, 110.0, tau)
        assert math.degrees(ala.dihedral(a, b, c, d)) == pytest.approx(tau, abs=1e-9)
    pts = g.standard_normal((4, 50, 3))
    np.testing.assert_allclose(
        ala.dihedral(*(torch.as_tensor(p) for p in pts)).numpy(), ala.dihedral(*pts), rtol=0, atol=1e-12
    )
    # the built structure has exactly the backbone angles asked for
    x = ala.build_structure(phi=-63.0, psi=-42.0)
    np.testing.assert_allclose(np.degrees(ala.phi_psi(x[None])), [[-63.0, -42.0]], atol=1e-9)


@needs_openmm
def test_dihedral_matches_openmm_theta():
    import openmm
    import openmm.unit

    # a CustomTorsionForce with energy "theta" reports OpenMM's own dihedral of atoms 0-1-2-3
    g = np.random.default_rng(2)
    system = openmm.System()
    for _ in range(4):
        system.addParticle(1.0)
    torsion = openmm.CustomTorsionForce("theta")
    torsion.addTorsion(0, 1, 2, 3, [])
    system.addForce(torsion)
    pts = g.standard_normal((40, 4, 3))
    ctx = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    theirs = []
    for p in pts:
        ctx.setPositions(p)
        energy = ctx.getState(getEnergy=True).getPotentialEnergy()
        theirs.append(energy.value_in_unit(openmm.unit.kilojoule_per_mole))
    ours = ala.dihedral(pts[:, 0], pts[:, 1], pts[:, 2], pts[:, 3])
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)


@needs_openmm
def test_openmm_runs_are_finite_and_bitwise_reproducible(tmp_path):
    # 10 frames x 10 steps = 100 steps of 2 fs from the shipped structure, no equilibration
    s = ala.AlanineSettings(save_every=10, equilibration=0, seed=7)
    a = ala.openmm_reference(10, out_dir=tmp_path / "a", settings=s)
    b = ala.openmm_reference(10, out_dir=tmp_path / "b", settings=s)
    c = ala.openmm_reference(10, out_dir=tmp_path / "c", settings=ala.AlanineSettings(save_every=10, equilibration=0))
    assert a.x.shape == (10, 22, 3) and a.x.dtype == np.float32 and np.isfinite(a.x).all()
    assert np.array_equal(a.x, b.x)  # Reference platform, same seed: the same trajectory, bit for bit
    assert not np.array_equal(a.x, c.x)  # another seed, another trajectory
    # 100 steps (0.2 ps) move atoms by ~0.01-0.1 nm, bonds stay intact (C-N amide bond 0.134 nm)
    assert 0.005 < np.abs(a.x[-1] - ala.alanine_system().positions).max() < 0.3
    np.testing.assert_allclose(np.linalg.norm(a.x[:, 14] - a.x[:, 16], axis=1), 0.134, atol=0.01)
    np.testing.assert_allclose(a.angles, ala.phi_psi(a.x.astype(np.float64)), atol=1e-6)
    # cached: the file is read back, not rerun, and a longer request reruns
    again = ala.openmm_reference(5, out_dir=tmp_path / "a", settings=s)
    assert np.array_equal(again.x, a.x[:5]) and again.settings == a.settings
    assert ala.load_reference(tmp_path / "a").settings["seed"] == 7


def test_shipped_subset_is_dominated_by_c7eq_and_c5():
    x, angles, settings = ala.load_subset()
    assert x.shape == (1000, 22, 3) and angles.shape == (20000, 2) and x.dtype == np.float32
    assert settings["temperature"] == 300.0
    pops = ala.basin_populations(angles)
    assert sum(pops.values()) == pytest.approx(1.0)
    # vacuum at 300 K (40 ns reference: C7eq/C5 0.991, alphaR 0.0092 +- 0.0004 by 10 block averages,
    # C7ax/alphaL never visited). The subset's 20000 frames are 2 ps apart, with autocorrelation times
    # of 4-7 ps: ~8000 effective frames, so alphaR's binomial error is ~0.001; the window is +-4 of those
    assert 0.005 < pops["alphaR"] < 0.014 and pops["C7eq/C5"] > 0.985
    assert pops["C7ax/alphaL"] == 0.0
    # the coordinates and the angles come from the same run: their populations agree
    assert ala.basin_populations(ala.phi_psi(x.astype(np.float64)))["C7eq/C5"] == pytest.approx(
        pops["C7eq/C5"], abs=0.03
    )
    # the most likely cell of the 2-D histogram is the C7eq basin, near the minimised structure
    s = ala.ramachandran_surface(angles, bins=36)
    i, j = np.unravel_index(int(torch.argmax(s.prob)), s.prob.shape)
    centre = [math.degrees(float(e[k] + e[k + 1]) / 2) for e, k in ((s.xedges, i), (s.yedges, j))]
    assert -120 < centre[0] < -60 and 30 < centre[1] < 120


def test_ramachandran_error_is_zero_against_itself_and_sees_a_shift():
    _, angles, _ = ala.load_subset()
    a, b = angles[::2], angles[1::2]
    same = ala.ramachandran_error(angles, angles)
    assert same["fe_error_kT"] == 0.0 and same["js"] == 0.0
    halves = ala.ramachandran_error(a, b, bins=18)
    assert halves["js"] < 0.02 and halves["fe_error_kT"] < 0.3  # two halves of one run: sampling noise only
    shifted = np.mod(angles + [math.pi / 2, 0.0] + math.pi, 2 * math.pi) - math.pi  # phi rotated by 90 deg
    far = ala.ramachandran_error(shifted, angles, bins=18)
    assert far["js"] > 0.3 and far["fe_error_kT"] > 1.0
    # periodic bins: every angle in [-pi, pi] lands in exactly one cell
    edge = np.array([[math.pi, -math.pi], [-math.pi, math.pi], [0.0, 0.0]])
    assert float(ala.ramachandran_surface(edge, bins=4).prob.sum()) == pytest.approx(1.0)
    assert float(ala.ramachandran_surface(edge, bins=4).prob[0, 0]) == pytest.approx(2 / 3)


def test_kabsch_alignment_recovers_a_known_rotation():
    g = torch.Generator().manual_seed(3)
    ref = torch.as_tensor(ala.build_structure())
    q, _ = torch.linalg.qr(torch.randn(5, 3, 3, generator=g, dtype=torch.float64))
    q = q * torch.sign(torch.linalg.det(q))[:, None, None]  # proper rotations
    moved = ref @ q.transpose(1, 2) + torch.randn(5, 1, 3, generator=g, dtype=torch.float64)
    aligned = ala.aligned_cartesian(moved, ref)
    centred = (ref - ref.mean(0)).reshape(-1)
    assert aligned.shape == (5, 66)
    torch.testing.assert_close(aligned, centred.expand(5, -1), atol=1e-10, rtol=0)
    # a mirror image cannot be rotated onto the molecule (chirality kept): RMSD stays large
    mirrored = ref * torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)
    rmsd = (ala.aligned_cartesian(mirrored[None], ref) - centred).reshape(-1, 3).norm(dim=1).pow(2).mean().sqrt()
    assert float(rmsd) > 0.03  # nm
    # noisy frames: alignment never increases the RMSD to the reference beyond the unrotated, centred one
    noisy = moved + 0.01 * torch.randn(5, 22, 3, generator=g, dtype=torch.float64)
    err = (ala.aligned_cartesian(noisy, ref) - centred).reshape(5, -1, 3).norm(dim=2).pow(2).mean(1).sqrt()
    assert float(err.max()) < 0.02
    # on MD frames: a proper rotation keeps every dihedral (a reflection would flip phi and psi)
    x, _, _ = ala.load_subset()
    y = ala.aligned_cartesian(x[:200], ala.build_structure()).reshape(-1, 22, 3)
    np.testing.assert_allclose(ala.phi_psi(y).numpy(), ala.phi_psi(x[:200].astype(np.float64)), atol=1e-12)
