"""Langevin molecular dynamics with any force: BAOAB (Leimkuhler & Matthews 2013).

The underdamped Langevin equation, with mass ``m``, friction ``gamma`` and thermal energy ``kT``,

.. math::
    dx = v\\,dt, \\qquad m\\,dv = F(x)\\,dt - \\gamma m v\\,dt + \\sqrt{2 \\gamma m kT}\\, dW,

has the Boltzmann density ``exp(-U / kT)`` as its configurational equilibrium when ``F = -grad U``.
BAOAB (Leimkuhler & Matthews 2013, "Rational construction of stochastic numerical methods for
molecular sampling", AMRX 2013, 34) splits one step into a half kick (B), a half drift (A), the exact
Ornstein–Uhlenbeck velocity update (O), a half drift and a half kick; its configurational bias is
``O(dt^2)`` (and zero for a harmonic potential). ``force_fn`` may be any callable ``(N, D) -> (N, D)``:
the true force, or ``kT * score`` of a trained field (``forces.field_force``), as in Arts et al.
(2023), "Two for one". The integrator is ``baoab_init`` + ``baoab_step`` and the loop ``baoab``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..core.tensors import randn_like
from ..util import ProgressBar
from .forces import ForceFn

__all__ = ["LangevinState", "Trajectory", "baoab_init", "baoab_step", "baoab"]


@dataclass(frozen=True)
class LangevinState:
    """Positions ``x`` (N, D), velocities ``v`` (N, D), and the force ``f`` (N, D) at ``x``."""

    x: Tensor
    v: Tensor
    f: Tensor


@dataclass(frozen=True)
class Trajectory:
    """Saved frames ``x`` (S, N, D) at ``times`` (S,) (frame 0 is the start), and the final state."""

    x: Tensor
    times: Tensor
    final: LangevinState


def _remove_com(v: Tensor, m: Tensor, n_particles: int | None) -> Tensor:
    """Subtract the mass-weighted mean per spatial dimension over the particles (N, P*d layout)."""
    if n_particles is None:
        return v
    vp = v.reshape(v.shape[0], n_particles, -1)
    if m.numel() == 1:
        return (vp - vp.mean(dim=1, keepdim=True)).reshape(v.shape)
    mp = m.expand_as(v).reshape(v.shape[0], n_particles, -1)
    com = (mp * vp).sum(dim=1, keepdim=True) / mp.sum(dim=1, keepdim=True)
    return (vp - com).reshape(v.shape)


def _masses(masses: float | Tensor, x: Tensor) -> Tensor:
    """Masses as a tensor in ``x``'s dtype, checked to be positive and to broadcast against ``x``."""
    if isinstance(masses, Tensor) and masses.dtype == x.dtype and masses.device == x.device:
        return masses  # already checked by baoab / baoab_init: no per-step cost
    m = torch.as_tensor(masses, dtype=x.dtype, device=x.device)
    if not bool((m > 0).all()):
        raise ValueError("masses must be positive")
    try:
        torch.broadcast_shapes(m.shape, x.shape)
    except RuntimeError:
        raise ValueError(f"masses of shape {tuple(m.shape)} do not broadcast against x {tuple(x.shape)}") from None
    return m


def baoab_init(
    force_fn: ForceFn,
    x0: Tensor,
    *,
    kT: float,
    masses: float | Tensor = 1.0,
    v0: Tensor | None = None,
    generator: torch.Generator | None = None,
    remove_com: int | None = None,
) -> LangevinState:
    """Start state: ``x0``, velocities ``v0`` or Maxwell–Boltzmann draws ``v ~ N(0, kT / m)``, the force at ``x0``.
    ``remove_com = P`` removes the centre-of-mass position and velocity of ``P`` particles (D = P d)."""
    m = _masses(masses, x0)
    v = randn_like(x0, generator) * torch.sqrt(kT / m) if v0 is None else v0.to(x0.dtype)
    x = x0 if remove_com is None else _remove_com(x0, m, remove_com)
    return LangevinState(x, _remove_com(v, m, remove_com), force_fn(x))


def baoab_step(
    state: LangevinState,
    force_fn: ForceFn,
    *,
    dt: float,
    friction: float,
    kT: float,
    masses: float | Tensor = 1.0,
    generator: torch.Generator | None = None,
    remove_com: int | None = None,
) -> LangevinState:
    """One BAOAB step (Leimkuhler & Matthews 2013, "Rational construction of stochastic numerical
    methods for molecular sampling", eq. 13), with ``c_1 = exp(-gamma dt)``:

    .. math::
        v \\leftarrow v + \\tfrac{dt}{2} \\tfrac{F(x)}{m};\\; x \\leftarrow x + \\tfrac{dt}{2} v;\\;
        v \\leftarrow c_1 v + \\sqrt{(1 - c_1^2)\\, kT / m}\\; \\xi;\\; x \\leftarrow x + \\tfrac{dt}{2} v;\\;
        v \\leftarrow v + \\tfrac{dt}{2} \\tfrac{F(x)}{m}.

    One force evaluation per step (the force at the new ``x`` is carried in the state).
    """
    m = _masses(masses, state.x)
    c1 = math.exp(-friction * dt)
    x, v, f = state.x, state.v, state.f
    # B: half kick
    v = _remove_com(v + 0.5 * dt * f / m, m, remove_com)
    # A: half drift
    x = x + 0.5 * dt * v
    # O: exact Ornstein-Uhlenbeck velocity update (momentum noise projected off the centre of mass)
    v = _remove_com(c1 * v + math.sqrt(1.0 - c1**2) * torch.sqrt(kT / m) * randn_like(v, generator), m, remove_com)
    # A: half drift
    x = x + 0.5 * dt * v
    # B: half kick with the new force
    f = force_fn(x)
    v = _remove_com(v + 0.5 * dt * f / m, m, remove_com)
    return LangevinState(x, v, f)


def baoab(
    force_fn: ForceFn,
    x0: Tensor,
    *,
    dt: float,
    friction: float,
    kT: float,
    n_steps: int,
    masses: float | Tensor = 1.0,
    save_every: int = 1,
    generator: torch.Generator | None = None,
    v0: Tensor | None = None,
    remove_com: int | None = None,
    progress: bool = False,
) -> Trajectory:
    """Run ``n_steps`` of BAOAB Langevin dynamics for ``N`` independent walkers at once.

    Args:
        force_fn: ``(N, D) -> (N, D)`` force (true ``-grad U``, or ``forces.field_force(...)``).
        x0: (N, D) start positions (one row per walker); not modified.
        dt, friction, kT: time step, friction ``gamma`` (1 / time), thermal energy.
        n_steps: number of steps; frames are saved every ``save_every`` steps (and at step 0).
        masses: scalar, or a tensor broadcasting against (N, D).
        generator: the one source of randomness (initial velocities, O-step noise).
        v0: (N, D) start velocities (default: Maxwell–Boltzmann draws).
        remove_com: number of particles ``P`` (``D = P d``) whose centre-of-mass motion is removed,
            for translation-invariant particle systems; ``None`` for none.
        progress: show a progress bar (rich) on stderr.

    Returns:
        ``Trajectory`` with ``x`` (n_steps // save_every + 1, N, D), ``times`` and the final state.
    """
    if not (dt > 0 and friction >= 0 and kT > 0):
        raise ValueError(f"need dt > 0, friction >= 0, kT > 0; got dt={dt}, friction={friction}, kT={kT}")
    if not isinstance(n_steps, int) or n_steps < 0 or not isinstance(save_every, int) or save_every < 1:
        raise ValueError(f"n_steps must be an int >= 0 and save_every an int >= 1, got {n_steps}, {save_every}")
    if x0.ndim != 2:
        raise ValueError(f"x0 must be (N, D), got {tuple(x0.shape)}")
    if remove_com is not None and (remove_com < 1 or x0.shape[1] % remove_com):
        raise ValueError(f"remove_com={remove_com} does not divide the dimension {x0.shape[1]}")
    knobs = dict(kT=kT, masses=_masses(masses, x0), generator=generator, remove_com=remove_com)
    state = baoab_init(force_fn, x0, v0=v0, **knobs)
    frames = [state.x]
    with ProgressBar("md", n_steps, enabled=progress, every=100) as bar:
        for k in range(1, n_steps + 1):
            state = baoab_step(state, force_fn, dt=dt, friction=friction, **knobs)
            if k % save_every == 0:
                frames.append(state.x)
            bar.update(k)
    times = dt * save_every * torch.arange(len(frames), dtype=torch.float64)
    return Trajectory(torch.stack(frames), times, state)
