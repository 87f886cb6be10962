import math

import pytest
import torch

from scoredyn.learning import EGNN, MLP, NETS, FourierEmbedding, SinusoidalEmbedding, UNet, build_net


def _inputs(n: int, dim: int, num_classes: int = 0, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g)
    c = 4 * torch.rand(n, generator=g) - 2
    y = torch.randint(0, num_classes, (n,), generator=g) if num_classes else None
    return x, c, y


def _perturb(net: torch.nn.Module, seed: int = 0) -> None:
    """Move every parameter a little (the zero-initialised output layer included)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))


def _small(kind: str, dim: int, num_classes: int = 0) -> torch.nn.Module:
    kwargs = {"hidden": 32, "depth": 2, "emb_dim": 16} if kind == "mlp" else {"channels": 8, "emb_dim": 16}
    return build_net(kind, dim, num_classes, **kwargs)


CASES = [("mlp", 2), ("mlp", 10), ("unet", 64)]


@pytest.mark.parametrize(("kind", "dim"), CASES)
@pytest.mark.parametrize("num_classes", [0, 3])
def test_shapes_and_zero_init(kind, dim, num_classes):
    torch.manual_seed(0)
    net = _small(kind, dim, num_classes)
    x, c, y = _inputs(5, dim, num_classes)
    out = net(x, c, y)
    assert out.shape == (5, dim) and out.dtype == torch.float32
    assert torch.equal(out, torch.zeros_like(out))  # zero-initialised last layer
    _perturb(net)
    out = net(x, c, y)
    assert out.shape == (5, dim) and torch.isfinite(out).all() and out.abs().max() > 0
    # gradients reach every parameter once the output layer is not zero
    out.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters() if p.requires_grad)


def test_default_sizes():
    torch.manual_seed(0)
    assert sum(p.numel() for p in UNet(num_classes=10).parameters()) < 450_000
    assert sum(p.numel() for p in UNet().parameters()) > 100_000
    x, c, _ = _inputs(3, 2)
    assert MLP(2)(x, c).shape == (3, 2)
    assert UNet(channel_mult=(1, 2, 2))(*_inputs(3, 64)[:2]).shape == (3, 64)
    assert UNet(side=4, in_channels=3)(*_inputs(3, 48)[:2]).shape == (3, 48)


@pytest.mark.parametrize(("kind", "dim"), [("mlp", 2), ("unet", 64)])
def test_conditioning(kind, dim):
    torch.manual_seed(0)
    net = _small(kind, dim, num_classes=3)
    _perturb(net)
    x, c, _ = _inputs(4, dim)
    out = {k: net(x, c, torch.full((4,), k)) for k in range(4)}  # 3 is the null class
    for a in range(4):
        for b in range(a):
            assert (out[a] - out[b]).abs().max() > 1e-3
    assert torch.equal(net(x, c, None), out[3])  # y=None is the null class
    # the noise level matters too
    assert (net(x, c + 0.5, None) - out[3]).abs().max() > 1e-3
    # an unconditional net ignores nothing it was given: y is not an argument it needs
    uncond = _small(kind, dim)
    _perturb(uncond)
    assert torch.equal(uncond(x, c), uncond(x, c, None))


@pytest.mark.parametrize(("kind", "dim"), CASES)
def test_deterministic_under_seed(kind, dim):
    torch.manual_seed(7)
    a = _small(kind, dim, 3)
    torch.manual_seed(7)
    b = _small(kind, dim, 3)
    torch.manual_seed(8)
    c = _small(kind, dim, 3)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)


def test_fourier_frequencies_fixed():
    torch.manual_seed(1)
    a = FourierEmbedding(64)
    torch.manual_seed(2)
    b = FourierEmbedding(64)
    assert torch.equal(a.freqs, b.freqs)  # independent of the global seed
    assert not torch.equal(a.freqs, FourierEmbedding(64, seed=1).freqs)
    # drawing the frequencies uses a local generator ...
    torch.manual_seed(1)
    r1 = torch.rand(3)
    torch.manual_seed(1)
    FourierEmbedding(64)
    assert torch.equal(torch.rand(3), r1)  # ... so the global stream is untouched
    # buffers, not parameters: saved with the weights, never trained
    assert "freqs" in a.state_dict() and not list(a.parameters())
    # frequencies are N(0, scale^2): with 512 draws the sample std is within 10% (s.e. ~ 3%)
    assert abs(float(FourierEmbedding(1024, scale=2.0).freqs.std()) - 2.0) < 0.2


def test_embedding_values():
    c = torch.tensor([0.0, 0.5, -1.3])
    f = FourierEmbedding(8, scale=1.0)
    e = f(c)
    phase = 2 * math.pi * c[:, None] * f.freqs[None, :]
    assert torch.allclose(e, torch.cat([phase.cos(), phase.sin()], 1))
    # each (cos, sin) pair lies on the unit circle
    assert torch.allclose(e[:, :4] ** 2 + e[:, 4:] ** 2, torch.ones(3, 4))
    s = SinusoidalEmbedding(8, max_period=10000.0, input_scale=1.0)
    # omega_i = 10000^(-i/4): 1, 0.1, 0.01, 0.001
    assert torch.allclose(s.freqs, torch.tensor([1.0, 0.1, 0.01, 0.001]))
    assert torch.allclose(s(c)[:, 0], torch.cos(c)) and torch.allclose(s(c)[:, 5], torch.sin(0.1 * c))
    with pytest.raises(ValueError, match="even"):
        FourierEmbedding(7)


def test_build_net_errors():
    assert tuple(NETS) == ("mlp", "unet", "egnn")
    assert isinstance(build_net("unet", 64), UNet) and isinstance(build_net("mlp", 3, 2), MLP)
    with pytest.raises(ValueError, match="unknown net 'resnet'.*mlp, unet, egnn"):
        build_net("resnet", 2)
    for dim in (2, 63, 65):
        with pytest.raises(ValueError, match="side \\* side \\* in_channels"):
            build_net("unet", dim)
    with pytest.raises(ValueError, match="in_channels"):
        build_net("unet", 64, in_channels=3)
    assert build_net("unet", 48, in_channels=3).side == 4
    with pytest.raises(ValueError, match="embedding"):
        MLP(2, embedding="learned")
    with pytest.raises(ValueError, match="x must have shape"):
        MLP(2)(torch.zeros(3, 4), torch.zeros(3))
    with pytest.raises(ValueError, match="c_noise"):
        MLP(2)(torch.zeros(3, 2), torch.zeros(2))


def test_mlp_learns_noise_conditional_map():
    """The net fits F(x, c) = sin(3c) x, a target whose sign and size depend on the noise level."""
    torch.manual_seed(0)
    net = MLP(2, hidden=64, depth=2, emb_dim=32)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        x, c, _ = _inputs(256, 2, seed=int(torch.randint(0, 2**31, (1,), generator=g)))
        loss = (net(x, c) - torch.sin(3 * c)[:, None] * x).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, c, _ = _inputs(4096, 2, seed=-1)
    with torch.no_grad():
        mse = float((net(x, c) - torch.sin(3 * c)[:, None] * x).square().mean())
    # the target's mean square is E[sin^2(3c)] E[x^2] ~ 0.5; predicting 0 scores that. Measured
    # after 300 steps: 3e-4 .. 5e-4 (seeds 0, 1, 2); 0.005 (1% of the variance) leaves a 10x margin.
    assert mse < 0.005


# --- EGNN ----------------------------------------------------------------------------------------


def _egnn_case(seed: int = 0):
    """A perturbed float64 EGNN (4 particles in 3-D, so rotations are not all commuting) and inputs."""
    torch.manual_seed(seed)
    net = build_net("egnn", 12, n_particles=4, hidden=16, depth=3, emb_dim=16).double()
    _perturb(net, seed)
    x, c, _ = _inputs(32, 12, seed=seed)
    return net, x.double(), c.double()


def test_egnn_is_equivariant_and_translation_invariant():
    net, x, c = _egnn_case()
    g = torch.Generator().manual_seed(1)
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))  # a random O(3) element
    perm = torch.tensor([2, 0, 3, 1])
    shift = torch.randn(1, 1, 3, generator=g, dtype=torch.float64)
    with torch.no_grad():
        f = net(x, c).reshape(32, 4, 3)
        assert float(f.abs().max()) > 1e-2  # not the trivial (zero) map
        f_rot = net((x.reshape(32, 4, 3) @ q.T).reshape(32, 12), c).reshape(32, 4, 3)
        f_perm = net(x.reshape(32, 4, 3)[:, perm].reshape(32, 12), c).reshape(32, 4, 3)
        f_shift = net((x.reshape(32, 4, 3) + shift).reshape(32, 12), c).reshape(32, 4, 3)
    # float64 arithmetic of a few hundred terms: agreement to ~1e-14 expected, 1e-10 allowed
    torch.testing.assert_close(f_rot, f @ q.T, rtol=0, atol=1e-10)
    torch.testing.assert_close(f_perm, f[:, perm], rtol=0, atol=1e-10)
    torch.testing.assert_close(f_shift, f, rtol=0, atol=1e-10)
    assert float(f.mean(dim=1).abs().max()) < 1e-12  # centre of mass of the output is 0


def test_egnn_starts_at_zero_and_checks_its_shapes():
    torch.manual_seed(0)
    net = build_net("egnn", 8, n_particles=4)
    assert isinstance(net, EGNN) and (net.n, net.d) == (4, 2)
    x, c, _ = _inputs(5, 8)
    assert torch.equal(net(x, c), torch.zeros(5, 8))  # phi_x zero-initialised: positions stay
    with pytest.raises(ValueError, match="egnn needs n_particles >= 2"):
        build_net("egnn", 9, n_particles=4)
    with pytest.raises(ValueError, match="egnn needs n_particles >= 2"):
        build_net("egnn", 8)
    with pytest.raises(ValueError, match="x must have shape"):
        net(torch.zeros(3, 6), torch.zeros(3))
