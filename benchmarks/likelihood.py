"""The cost and accuracy of likelihoods through the probability-flow ODE.

1. Error against NFE: exact field of mog6 (2-D) and of a 10-D mixture with random full covariances,
   exact prior p_{t_max}, adaptive dopri5 at rtol = atol in 1e-2 .. 1e-6; the error of the exact
   divergence (|log p_ode - log p|) and of Hutchinson's estimate (its mean over points and probes,
   which must be 0 within Monte-Carlo error, and its spread).
2. Cost as the dimension grows (2, 10, 64): NFE, wall time per sample and the variance per probe of
   Hutchinson's estimate, against the exact divergence (D vector-Jacobian products per evaluation).
3. A trained mog6 model (configs/mog6.toml, v on VP): the gap of its ODE log-likelihood, and of its
   DDPM bound, to the exact log-density of held-out points.
4. The shipped digits model: bits/dim of the 360 held-out digits (17 grey levels, uniformly
   dequantized) by the ODE with Hutchinson probes, and by the DDPM bound, each with its standard error.

    python benchmarks/likelihood.py [--quick]
    -> benchmarks/results/likelihood.json (records in DESIGN.md's format)
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record, write  # noqa: E402

from scoredyn.app.estimate import estimate_likelihood  # noqa: E402
from scoredyn.core.fields import AnalyticField  # noqa: E402
from scoredyn.core.processes import VP  # noqa: E402
from scoredyn.core.targets import (
    mog6,  # noqa: E402
    random_mixture,  # noqa: E402
)
from scoredyn.likelihood import log_likelihood  # noqa: E402
from scoredyn.samplers import start_distribution  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _case(target, n: int, seed: int):
    process = VP()
    x = target.sample(n, torch.Generator().manual_seed(seed))
    prior = start_distribution("exact", process, process.t_max, target=target)
    return AnalyticField(target, process), x, prior, target.log_prob(x)


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def error_vs_nfe(n: int, tolerances) -> list[dict]:
    rows = []
    for name, target in (("mog6", mog6()), ("random-10d", random_mixture(10, 5, seed=1))):
        field, x, prior, exact = _case(target, n, seed=0)
        for tol in tolerances:
            res, wall = _timed(log_likelihood, field, x, prior=prior, rtol=tol, atol=tol)
            err = res.logp - exact
            rows.append(
                dict(
                    name=name,
                    dim=target.dim,
                    estimator="exact",
                    tol=tol,
                    nfe=res.nfe,
                    abs_error=float(err.abs().mean()),
                    abs_error_std=float(err.abs().std()),
                    wall_s_per_sample=wall / n,
                )
            )
            g = torch.Generator().manual_seed(2)
            res, wall = _timed(
                log_likelihood,
                field,
                x,
                prior=prior,
                rtol=tol,
                atol=tol,
                divergence="hutchinson",
                probes=4,
                generator=g,
            )
            per_probe = res.logp_per_probe - exact[:, None]
            bias, se = float(per_probe.mean()), float(per_probe.mean(1).std() / math.sqrt(n))
            rows.append(
                dict(
                    name=name,
                    dim=target.dim,
                    estimator="hutchinson",
                    tol=tol,
                    nfe=res.nfe,
                    abs_error=abs(bias),
                    bias=bias,
                    bias_stderr=se,
                    bias_z=bias / se,
                    abs_error_std=float(per_probe.std()),
                    wall_s_per_sample=wall / n,
                    probes=4,
                )
            )
    return rows


def cost_vs_dim(n: int, dims) -> list[dict]:
    rows = []
    for dim in dims:
        target = mog6() if dim == 2 else random_mixture(dim, 5, seed=dim)
        field, x, prior, exact = _case(target, n, seed=3)
        res_e, wall_e = _timed(log_likelihood, field, x, prior=prior, rtol=1e-5, atol=1e-5)
        g = torch.Generator().manual_seed(4)
        res_h, wall_h = _timed(
            log_likelihood, field, x, prior=prior, rtol=1e-5, atol=1e-5, divergence="hutchinson", probes=8, generator=g
        )
        per_probe_var = float(res_h.logp_per_probe.var(1).mean())  # variance of one probe, per point
        rows.append(
            dict(
                dim=dim,
                n=n,
                nfe_exact=res_e.nfe,
                nfe_hutchinson=res_h.nfe,
                wall_s_per_sample_exact=wall_e / n,
                wall_s_per_sample_hutchinson_8=wall_h / n,
                exact_abs_error=float((res_e.logp - exact).abs().mean()),
                hutchinson_bias=float((res_h.logp - exact).mean()),
                hutchinson_bias_stderr=float((res_h.logp - exact).std() / math.sqrt(n)),
                variance_per_probe=per_probe_var,
            )
        )
    return rows


def trained_mog6(n: int, steps: int) -> dict:
    from scoredyn.learning import Trainer, apply_overrides, load_toml, load_trained

    with tempfile.TemporaryDirectory() as out:
        cfg = apply_overrides(
            load_toml(ROOT / "configs" / "mog6.toml"), [f"run.out={out}", f"optim.steps={steps}", "run.progress=false"]
        )
        _, train_s = _timed(Trainer(cfg, resume=False).fit)
        model = load_trained(out)
    target = mog6()
    x = target.sample(n, torch.Generator().manual_seed(11))
    exact = target.log_prob(x)
    doc = {"steps": steps, "train_s": train_s, "n": n}
    for name, kwargs in (("ode", {}), ("vlb", {"estimator": "vlb"})):
        est, wall = _timed(estimate_likelihood, model, x, seed=12, **kwargs)
        gap = est.logp - exact
        doc[name] = dict(
            mean_logp=est.mean,
            stderr=est.stderr,
            gap=float(gap.mean()),
            gap_stderr=float(gap.std() / math.sqrt(n)),
            nfe=est.nfe,
            wall_s=wall,
            sigma_min=est.settings["sigma_min"],
        )
    doc["exact_mean_logp"] = float(exact.mean())
    return doc


def digits_bpd(probes: int, n: int) -> dict:
    from scoredyn.learning import load_dataset, load_trained

    model = load_trained("digits")
    x = load_dataset("digits").reference(n).double()
    doc = {"n": int(x.shape[0]), "levels": 17}
    for name, kwargs in (("ode", {"hutchinson": probes}), ("vlb", {"estimator": "vlb"})):
        est, wall = _timed(estimate_likelihood, model, x, dequantize_levels=17, batch=120, **kwargs)
        d = est.to_dict()
        doc[name] = dict(
            bits_per_dim=d["bits_per_dim"]["mean"],
            stderr=d["bits_per_dim"]["stderr"],
            nfe=est.nfe,
            wall_s=wall,
            settings=est.settings,
        )
    return doc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer points and settings")
    args = parser.parse_args()
    torch.set_num_threads(1)
    q = args.quick
    tolerances = (1e-2, 1e-4) if q else (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
    records = []
    rows = error_vs_nfe(50 if q else 200, tolerances)
    records.append(record("likelihood_error_vs_nfe", None, "nats", None, None, {"rows": rows}))
    for r in rows:
        extra = f" bias {r['bias']:+.2e} (z {r['bias_z']:+.2f})" if r["estimator"] == "hutchinson" else ""
        print(
            f"{r['name']:>10} {r['estimator']:>10} tol {r['tol']:.0e}: NFE {r['nfe']:4d} "
            f"|err| {r['abs_error']:.2e}{extra}"
        )
    cost = cost_vs_dim(50 if q else 200, (2, 10) if q else (2, 10, 64))
    for r in cost:
        ratio = r["wall_s_per_sample_exact"] / r["wall_s_per_sample_hutchinson_8"]
        records.append(
            record(
                f"likelihood_cost_d{r['dim']}",
                r["wall_s_per_sample_hutchinson_8"],
                "s/sample",
                "exact divergence",
                r["wall_s_per_sample_exact"],
                r,
                ratio=ratio,
            )
        )
        print(
            f"D={r['dim']:3d}: exact {r['wall_s_per_sample_exact'] * 1e3:.2f} ms/sample (NFE {r['nfe_exact']}), "
            f"hutchinson x8 {r['wall_s_per_sample_hutchinson_8'] * 1e3:.2f} ms/sample (NFE {r['nfe_hutchinson']}), "
            f"variance per probe {r['variance_per_probe']:.3g}"
        )
    trained = trained_mog6(200 if q else 1000, 1000 if q else 4000)
    records.append(record("likelihood_trained_mog6_gap", trained["ode"]["gap"], "nats", "exact log p", 0.0, trained))
    print(
        f"trained mog6: ODE gap {trained['ode']['gap']:+.4f} +- {trained['ode']['gap_stderr']:.4f} nats, "
        f"VLB gap {trained['vlb']['gap']:+.4f} +- {trained['vlb']['gap_stderr']:.4f}"
    )
    digits = digits_bpd(2 if q else 4, 40 if q else 360)
    records.append(
        record(
            "likelihood_digits_bpd",
            digits["ode"]["bits_per_dim"],
            "bits/dim",
            "DDPM bound",
            digits["vlb"]["bits_per_dim"],
            digits,
        )
    )
    print(
        f"digits: {digits['ode']['bits_per_dim']:.3f} +- {digits['ode']['stderr']:.3f} bits/dim (ODE), "
        f"{digits['vlb']['bits_per_dim']:.3f} +- {digits['vlb']['stderr']:.3f} (DDPM bound)"
    )
    write("likelihood_quick.json" if q else "likelihood.json", records)


if __name__ == "__main__":
    main()
