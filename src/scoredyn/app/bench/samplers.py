"""Network samplers: the share of step time spent outside the network, with the grid's coefficients
precomputed (``Field.at_times``, what every sampler does now) against the per-step formulation
(every coefficient, and for a field read on another process the time map, recomputed at every
step), in one run; and particle-steps per second of both.

The network is the 2-D score MLP of ``configs/mog6.toml`` (VP process, v-prediction), freshly
initialised: its cost does not depend on its weights. ``outside share = 1 - t_net / t_total``, where
``t_net`` is the network alone called ``nfe`` times on inputs of the run's shape.
"""

from __future__ import annotations

import torch

from ...core.fields import Field, NetworkField, on_process
from ...core.registry import resolve_process
from ...learning import build_net
from ..registry import make_grid, resolve_sampler
from .record import best_time, record

SAMPLERS = ("unipc", "dpm-solver-2m", "ode-heun", "ddim", "edm-heun")
UNIT = "share of step time outside the network"


class PerStep(Field):
    """A field that ignores ``at_times``: every evaluation recomputes its coefficients (and, for a
    field on another process, the time map) from the process, as the samplers did per step."""

    def __init__(self, field: Field) -> None:
        self.inner, self.process = field, field.process

    def at_times(self, times):
        return self

    def score(self, x, t):
        return self.inner.score(x, t)

    def denoise(self, x, t):
        return self.inner.denoise(x, t)

    def eps(self, x, t):
        return self.inner.eps(x, t)

    def velocity(self, x, t):
        return self.inner.velocity(x, t)


def small_field(device: str = "cpu", compile: bool | str = False) -> NetworkField:
    """The mog6 config's network (MLP, hidden 128, depth 3) as a v-prediction field of VP."""
    torch.manual_seed(0)
    net = build_net("mlp", 2, 0, hidden=128, depth=3).eval().requires_grad_(False).to(device)
    return NetworkField(net, resolve_process("vp"), "v", sigma_data=1.0, compile=compile)


def _net_calls(field: NetworkField, n: int, nfe: int, device: str):
    """The network alone: ``nfe`` calls on ``n`` inputs of the run's shape."""
    x = torch.randn(n, 2, device=device)
    c = torch.zeros(n, device=device)
    call = field.call_network

    def calls():
        for _ in range(nfe):
            call(x, c, None)

    return calls


def measure(name: str, field: NetworkField, n: int, steps: int, device: str, repeats: int) -> dict:
    """Seconds of one run of ``name`` with precomputed coefficients (``fast``) and per step
    (``plain``), and of its network calls alone (``net``): the best of ``repeats`` rounds, the three
    timed in turn within a round so that a busy machine slows them alike."""
    recipe = resolve_sampler(name)
    process = resolve_process(recipe.process)
    grid = make_grid(recipe.grid, process, steps, 10, **recipe.grid_kwargs)
    on = on_process(field, process)
    x = torch.randn(n, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float32).to(device)
    with torch.no_grad():
        nfe = recipe.fn(on, x, grid, **recipe.kwargs).nfe
        runs = {
            "fast": lambda: recipe.fn(on, x, grid, **recipe.kwargs),
            "plain": lambda: recipe.fn(PerStep(on), x, grid, **recipe.kwargs),
            "net": _net_calls(field, n, nfe, device),
        }
        out = {label: float("inf") for label in runs}
        for _ in range(repeats):
            for label, fn in runs.items():
                out[label] = min(out[label], best_time(fn, repeats=1, warmup=1, device=device))
    return {**out, "nfe": nfe}


def run(*, quick: bool, device: str, results=None) -> list[dict]:
    """Outside-the-network share and particle-steps/s, precomputed vs per-step, for each sampler and
    ``N``; on the full run also the compiled network (``NetworkField(compile=...)``) against eager."""
    sizes = (1, 1000) if quick else (1, 100, 10_000, 1_000_000)
    steps, repeats = (15, 2) if quick else (50, 5)
    field = small_field(device)
    records = []
    for name in SAMPLERS:
        for n in sizes:
            m = measure(name, field, n, steps, device, repeats)
            fast, plain = 1.0 - m["net"] / m["fast"], 1.0 - m["net"] / m["plain"]
            settings = {"sampler": name, "n": n, "steps": steps, "nfe": m["nfe"], "net": "mlp 128x3, vp, v",
                        "dtype": "float32", "seconds": m["fast"], "baseline_seconds": m["plain"],
                        "net_seconds": m["net"]}  # fmt: skip
            records.append(record(f"sampler-overhead/{name}", fast, UNIT, "per-step coefficients", plain,
                                  settings, device=device))  # fmt: skip
            rate, base_rate = n * steps / m["fast"], n * steps / m["plain"]
            records.append(record(f"sampler-throughput/{name}", rate, "particle-steps/s", "per-step coefficients",
                                  base_rate, settings, ratio=rate / base_rate, device=device))  # fmt: skip
    if not quick:
        modes = ["reduce-overhead"] if torch.device(device).type == "cuda" else [True]
        for mode in modes:
            compiled = small_field(device, compile=mode)
            for n in sizes:
                eager, comp = (measure("unipc", f, n, steps, device, repeats) for f in (field, compiled))
                settings = {"sampler": "unipc", "n": n, "steps": steps, "compile": mode, "dtype": "float32"}
                rate, base_rate = n * steps / comp["fast"], n * steps / eager["fast"]
                records.append(record("sampler-compiled/unipc", rate, "particle-steps/s", "eager network",
                                      base_rate, settings, ratio=rate / base_rate, device=device))  # fmt: skip
    return records
