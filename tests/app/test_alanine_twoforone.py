"""Two for one for alanine dipeptide: the aligned-frame force is equivariant, and a tiny run gives the contract."""

import math

import pytest
import torch

pytest.importorskip("openmm")

from scoredyn.app.experiments.alanine_twoforone import (
    AlignedFrame,
    aligned_force,
    bond_pairs,
    compare_alanine,
    kabsch,
    train_alanine,
)
from scoredyn.physics.alanine import aligned_cartesian, load_subset  # noqa: E402


def _rotation(g: torch.Generator) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    return q if torch.linalg.det(q) > 0 else -q


@pytest.fixture(scope="module")
def frames():
    x, _, _ = load_subset()
    return torch.as_tensor(x, dtype=torch.float64)


def test_kabsch_matches_aligned_cartesian_and_frame_round_trips(frames):
    frame = AlignedFrame.fit(frames)
    y, r, c = kabsch(frames[:16], frame.reference)
    # the same least-squares rotation as alanine.aligned_cartesian: float64 round-off only
    assert torch.allclose(y.reshape(16, -1), aligned_cartesian(frames[:16], frame.reference), atol=1e-12)
    assert torch.allclose(torch.linalg.det(r), torch.ones(16, dtype=torch.float64), atol=1e-12)
    z = frame.encode(frames[:16])
    assert torch.allclose(frame.decode(z), y, atol=1e-12)
    assert 0.02 < frame.scale < 0.2  # nm: the RMS fluctuation about the mean aligned frame
    assert len(bond_pairs()) == 21  # 22 atoms, one molecule, no rings: a tree


@pytest.mark.parametrize("project", [False, True])
def test_force_is_rotation_and_translation_equivariant(frames, project):
    # a known field on the aligned, standardised coordinates: the exact score of N(m, diag(v))
    g = torch.Generator().manual_seed(0)
    frame = AlignedFrame.fit(frames)
    m, v = torch.randn(66, generator=g, dtype=torch.float64), 0.5 + torch.rand(66, generator=g, dtype=torch.float64)
    force = aligned_force(lambda z: -(z - m) / v, frame, kT=2.5, project=project)
    x = frames[:8].reshape(8, 22, 3)
    q, b = _rotation(g), torch.randn(1, 1, 3, generator=g, dtype=torch.float64)
    f = force(x.reshape(8, 66)).reshape(8, 22, 3)
    f_moved = force((x @ q.T + b).reshape(8, 66)).reshape(8, 22, 3)
    # F(Q x + b) = Q F(x): exact up to float64 round-off through an SVD (1e-10 relative)
    assert torch.allclose(f_moved, f @ q.T, atol=1e-10 * float(f.abs().max()), rtol=0)
    if project:  # no net force, no net torque about the centre
        r = x - x.mean(dim=1, keepdim=True)
        assert float(f.sum(dim=1).abs().max()) < 1e-9 * float(f.abs().max())
        assert float(torch.linalg.cross(r, f, dim=-1).sum(dim=1).abs().max()) < 1e-9 * float(f.abs().max())


def test_tiny_run_gives_finite_contract(frames, tmp_path):
    torch.manual_seed(0)
    train_x, ref_x = frames[0::2], frames[1::2]
    model, frame = train_alanine(train_x, tmp_path / "m", 150, hidden=64, depth=2)
    out, angles = compare_alanine(
        model, frame, reference=ref_x, floor=train_x, starts=ref_x[:4], sigmas=(0.05, 0.2), n_iid=500,
        sampler_steps=10, n_steps=30, burn_in=10, save_every=10,
    )  # fmt: skip
    assert out["system"] == "alanine-dipeptide" and len(out["sigma_table"]) == 2
    iid, md, ref = out["routes"]["iid"], out["routes"]["md"], out["reference"]
    for d in (iid, ref["iid_floor"]):
        assert 0.0 <= d["js"] <= 1.0 and math.isfinite(d["bond_error_nm"])
    assert md["sigma"] in (0.05, 0.2) and 0.0 <= md["blown_up"] <= 1.0
    assert all(math.isfinite(r["force_rel_error"]) and r["force_rel_error"] > 0 for r in out["sigma_table"])
    # fe_error_kT needs every populated cell hit: at 500 samples it is inf (None) even for the floor;
    # the true force from reference frames for 15 fs cannot break a bond, and 500 reference frames of
    # the same run match the other 500 closely (measured JS 0.13 bits at 36 x 36 cells)
    assert ref["md_true_force"]["blown_up"] == 0.0 and ref["md_true_force"]["bond_error_nm"] < 0.01
    assert ref["iid_floor"]["js"] < 0.3 and ref["iid_floor"]["bond_error_nm"] < 1e-3
    assert angles["iid"].shape == (500, 2)
