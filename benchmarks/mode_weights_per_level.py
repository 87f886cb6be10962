"""Where annealed Langevin's mode weights go wrong, level by level: the mass each sampler gives the
dominant component of mog6 at every level, against the law's (0.55 at every level: ``p_t`` is a mixture
with the data's weights at every noise level).

At level ``t`` the mass of component ``k`` is estimated by the mean posterior responsibility
``sum_i W_i r_k(x_i; t)`` under ``p_t`` (weights ``W`` for SMC, equal otherwise), which is exactly
``pi_k`` in expectation for particles distributed as ``p_t`` (Rao-Blackwellized: lower variance than
counting assignments). Annealed Langevin and annealed MALA run the texts' ladder (EDM, sigma 10 -> 0.05,
10 levels x 100 steps); SMC its adaptive ladder on the VP path.

    python benchmarks/mode_weights_per_level.py [--n 100000]
    -> docs/images/mode_weights_per_level.png and benchmarks/results/mode_weights_per_level.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record, write  # noqa: E402

from scoredyn.app.sampling import sample  # noqa: E402
from scoredyn.core.registry import resolve_process  # noqa: E402
from scoredyn.core.targets import mog6  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUNS = (("annealed Langevin", "annealed-langevin", 100), ("annealed MALA", "annealed-mala", 99), ("SMC", "smc", 8))


def trace(target, name: str, steps: int, n: int, seed: int) -> dict:
    levels: list[tuple[float, float]] = []
    process = None

    def on_level(info) -> None:
        p_t = target.noised(process, info.t)
        r = p_t.responsibilities(info.x.double())
        w = torch.ones(len(r), dtype=torch.float64) / len(r) if info.log_w is None else torch.exp(info.log_w.double())
        sigma_hat = float(process.sigma(torch.tensor(info.t)) / process.alpha(torch.tensor(info.t)))
        levels.append((sigma_hat, float((w[:, None] * r).sum(0)[0])))

    from scoredyn.app.registry import resolve_sampler

    process = resolve_process(resolve_sampler(name).process)
    sample(target, name, steps=steps, n=n, seed=seed, callback=on_level)
    return {"sigma_hat": [s for s, _ in levels], "dominant_mass": [m for _, m in levels]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    target = mog6()
    traces = {label: trace(target, name, steps, args.n, args.seed) for label, name, steps in RUNS}
    fig, ax = plt.subplots(figsize=(7, 4))
    for (label, tr), style in zip(traces.items(), ("o-", "s-", ".-"), strict=True):
        sig = [max(s, 1e-3) for s in tr["sigma_hat"]]
        ax.plot(sig, tr["dominant_mass"], style, label=label, ms=4)
    pi = float(target.weights[0])
    sd = (pi * (1 - pi) / args.n) ** 0.5
    ax.axhline(pi, color="k", lw=1, label=f"the law: {pi:.2f} at every level")
    ax.axhspan(pi - 2 * sd, pi + 2 * sd, color="k", alpha=0.1, label="±2 sd of N exact samples")
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("noise level sigma / alpha (the run goes left to right)")
    ax.set_ylabel("mass of the dominant component")
    ax.set_title(f"mog6, N = {args.n:,}: the dominant component's mass at each level")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = ROOT / "docs" / "images" / "mode_weights_per_level.png"
    tmp = out.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(out)
    final = {label: tr["dominant_mass"][-1] for label, tr in traces.items()}
    print({k: round(v, 4) for k, v in final.items()}, "law", pi, "sd", round(sd, 4))
    write("mode_weights_per_level.json", [record("mog6/dominant_mass_final", final, "mass", None, None,
                                                 {"n": args.n, "seed": args.seed, "traces": traces})])  # fmt: skip


if __name__ == "__main__":
    main()
