"""Few-step sampling on tuned grids: ``unipc``, ``dpm-solver-2m``, ``edm-heun`` and ``ddim`` on uniform-t,
Karras (rho = 7), uniform log-SNR and tuned grids, beside diffusers' UniPC and DPM-Solver++ on their own
default grids, at 4, 5, 6, 8 and 10 evaluations; and the shipped digits model at 5 and 10.

Exact targets: mog6 and mog10 (10-D, 8 components, full covariances) from the package, and two built
here that the package does not hold (so nothing was ever tuned by hand on them): ``grid25``, 25 modes
on a 5 x 5 grid with random weights, and ``random7``, 7 random full-covariance components in 2-D (seed
2026). Each grid is tuned (``optimize_grid``: GITS's dynamic program, then Nelder-Mead on the whole
run; 2000 starts of seed 0) and judged on N = 20,000 starts of seed 1 with the one-sample metrics
against the law, as multiples of exact samples' floor (``mode_tv_exact``, ``energy_exact``). Every run
starts from the exact ``p_{t_max}`` of its process. The tuning time of each grid is recorded.

Digits: the shipped class-conditional U-Net (unconditional draws), energy distance to the held-out
digits as a multiple of the energy distance between two real sets of the same sizes; tuned on 500
starts against the model's own converged flow.

    python benchmarks/grid_tuning.py [--quick] [--targets ...] [--nfe ...] [--no-digits]
    -> benchmarks/results/grid_tuning.json and Markdown tables on stdout
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import types
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import merged, record, write  # noqa: E402

from scoredyn import AnalyticField, DDPMSchedule, optimize_grid, sample  # noqa: E402
from scoredyn.app.tuning import steps_for_nfe  # noqa: E402
from scoredyn.core.registry import resolve_process, resolve_target  # noqa: E402
from scoredyn.core.targets import GaussianMixture, random_mixture  # noqa: E402
from scoredyn.metrics import evaluate  # noqa: E402
from scoredyn.samplers import start_distribution  # noqa: E402

SAMPLERS = ("unipc", "multistep", "dpm-solver-2m", "edm-heun", "ddim")
#: run at every budget (the others at 5 and 10, the goals' budgets)
EVERY_NFE = ("unipc", "multistep")
GRIDS = ("uniform", "karras", "logsnr")
NFES = (4, 5, 6, 8, 10)
METRICS = ("mode_tv_exact", "energy_exact")
N_JUDGE, N_TUNE = 20_000, 2000


def grid25() -> GaussianMixture:
    """25 modes on a 5 x 5 grid of spacing 3, std 0.35, random weights (seed 11)."""
    g = torch.Generator().manual_seed(11)
    c = torch.arange(5, dtype=torch.float64) * 3.0 - 6.0
    means = torch.cartesian_prod(c, c)
    w = torch.rand(25, generator=g, dtype=torch.float64) + 0.5
    cov = 0.35**2 * torch.eye(2, dtype=torch.float64).expand(25, 2, 2).clone()
    return GaussianMixture(w / w.sum(), means, cov, name="grid25")


def random7() -> GaussianMixture:
    return random_mixture(dim=2, n_components=7, seed=2026, mean_scale=4.0, cov_scale=0.5, name="random7")


EXTRA = {"grid25": grid25, "random7": random7}


def target_of(name: str) -> GaussianMixture:
    return EXTRA[name]() if name in EXTRA else resolve_target(name)


def process_of(sampler: str) -> str:
    return "edm" if sampler == "edm-heun" else "vp"


def score(x: torch.Tensor, target: GaussianMixture) -> dict:
    s = evaluate(x, target, metrics=METRICS, seed=5)
    return {m: s[m]["ratio"] for m in METRICS}


def run_peer(name: str, target: GaussianMixture, nfe: int, n: int, seed: int) -> torch.Tensor:
    """diffusers' own loop on its DDPM schedule (linear betas, T = 1000), the exact field's eps as the model."""
    import diffusers

    make = {
        "diffusers UniPC (bh2)": lambda: diffusers.UniPCMultistepScheduler(solver_type="bh2"),
        "diffusers DPM-Solver++ (2M)": lambda: diffusers.DPMSolverMultistepScheduler(
            algorithm_type="dpmsolver++", solver_order=2
        ),
    }[name]
    process = DDPMSchedule()
    field = AnalyticField(target, process)
    sched = make()
    sched.set_timesteps(nfe)
    sigma0 = torch.tensor([float(sched.sigmas[0])], dtype=torch.float64)
    t0 = process.sigma_hat_to_t(sigma0)[0]
    x = start_distribution("exact", process, t0, target=target).sample(n, torch.Generator().manual_seed(seed))
    for i, k in enumerate(sched.timesteps):
        t = process.sigma_hat_to_t(torch.tensor([float(sched.sigmas[i])], dtype=torch.float64))[0]
        x = sched.step(field.eps(x, t), k, x).prev_sample.to(torch.float64)
    return x


def k_diffusion_sampling():
    """k-diffusion's ``sampling`` module. The package's ``__init__`` imports its training stack (torchvision,
    kornia, clean-fid, ...); installed with ``--no-deps``, its sampling module is loaded alone, with the one
    helper it takes from ``utils`` (``append_dims``)."""
    try:
        import k_diffusion.sampling as kd

        return kd
    except ImportError:
        pass
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("k-diffusion is not installed")
    package = types.ModuleType("k_diffusion")
    package.__path__ = list(spec.submodule_search_locations)
    utils = types.ModuleType("k_diffusion.utils")
    utils.append_dims = lambda x, n: x[(...,) + (None,) * (n - x.ndim)]
    package.utils = utils
    sys.modules.setdefault("k_diffusion", package)
    sys.modules.setdefault("k_diffusion.utils", utils)
    where = Path(package.__path__[0]) / "sampling.py"
    loader = importlib.util.spec_from_file_location("k_diffusion.sampling", where)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return module


def run_k_diffusion(name: str, target: GaussianMixture, nfe: int, n: int, seed: int) -> torch.Tensor:
    """k-diffusion's ``sample_heun`` / ``sample_dpmpp_2m`` on its default grid (``get_sigmas_karras``, EDM's
    0.002 .. 80, rho = 7), the exact field's denoiser ``D(x, sigma)`` as the model."""
    kd = k_diffusion_sampling()
    process = resolve_process("edm")
    field = AnalyticField(target, process)
    steps = (nfe + 1) // 2 if name == "heun" else nfe
    sigmas = kd.get_sigmas_karras(steps, 0.002, 80.0, rho=7.0).to(torch.float64)
    x = start_distribution("exact", process, sigmas[0], target=target).sample(n, torch.Generator().manual_seed(seed))

    def model(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return field.denoise(x, sigma.reshape(-1)[0].to(torch.float64))

    sampler = {"heun": kd.sample_heun, "dpmpp_2m": kd.sample_dpmpp_2m}[name]
    return sampler(model, x, sigmas, disable=True)


def exact_targets(
    names, nfes, samplers, evaluations, others_on, energy_on, peers_on=True
) -> tuple[list[dict], list[str]]:
    records, lines = [], []
    for tname in names:
        target = target_of(tname)
        for nfe in nfes:
            for sampler in samplers:
                if sampler not in EVERY_NFE and (nfe not in (5, 10) or tname not in others_on):
                    continue  # the other solvers at the two budgets of the goals
                steps, process = steps_for_nfe(sampler, nfe), process_of(sampler)
                row = {}
                # multistep on hand-made grids is DPM-Solver++(2M) (its default coefficients): only its fit runs
                for grid in () if sampler == "multistep" else GRIDS:
                    res, _ = sample(target, sampler, steps=steps, n=N_JUDGE, seed=1, process=process, grid=grid)
                    row[grid] = score(res.x, target)
                found = optimize_grid(target, sampler, nfe, process=process, n=N_TUNE, seed=0,
                                      evaluations=evaluations)  # fmt: skip
                res, _ = sample(target, sampler, steps=steps, n=N_JUDGE, seed=1, grid=found)
                row["tuned"] = score(res.x, target)
                row["tuned"]["seconds"] = found.tuning["seconds"]
                row["tuned"]["sigma_hat"] = found.sigma_hat
                if sampler == "unipc" and nfe in (5, 10):  # each search alone, beside the two together
                    for method in ("gits", "continuous"):
                        alone = optimize_grid(target, sampler, nfe, process=process, n=N_TUNE, seed=0,
                                              evaluations=evaluations, method=method)  # fmt: skip
                        res, _ = sample(target, sampler, steps=steps, n=N_JUDGE, seed=1, grid=alone)
                        row[f"tuned ({method} only)"] = score(res.x, target) | {"seconds": alone.tuning["seconds"]}
                # the energy objective, where the per-particle distance rewards shrinkage
                if sampler == "unipc" and nfe <= 5 and tname in energy_on:
                    found = optimize_grid(target, sampler, nfe, process=process, n=N_TUNE, seed=0,
                                          evaluations=evaluations, objective="energy")  # fmt: skip
                    res, _ = sample(target, sampler, steps=steps, n=N_JUDGE, seed=1, grid=found)
                    row["tuned (energy)"] = score(res.x, target)
                    row["tuned (energy)"]["seconds"] = found.tuning["seconds"]
                    row["tuned (energy)"]["sigma_hat"] = found.sigma_hat
                for grid, r in row.items():
                    lines.append(f"| {tname} | {nfe} | {sampler} | {grid} | {r['mode_tv_exact']:.2f} | "
                                 f"{r['energy_exact']:.2f} | {r.get('seconds', 0):.0f} |")  # fmt: skip
                print(lines[-1], flush=True)
                records.append(record(f"{tname}/{nfe}/{sampler}", row["tuned"]["energy_exact"], "x floor", None,
                                      None, {"target": tname, "nfe": nfe, "sampler": sampler, "steps": steps,
                                             "process": process, "n": N_JUDGE, "rows": row}))  # fmt: skip
            peers = {  # name -> (run, its arguments)
                "diffusers UniPC (bh2)": (run_peer, "diffusers UniPC (bh2)"),
                "diffusers DPM-Solver++ (2M)": (run_peer, "diffusers DPM-Solver++ (2M)"),
                "k-diffusion sample_heun": (run_k_diffusion, "heun"),
                "k-diffusion sample_dpmpp_2m": (run_k_diffusion, "dpmpp_2m"),
            }
            for peer, (run, which) in peers.items() if peers_on else ():
                try:
                    r = score(run(which, target, nfe, N_JUDGE, 1), target)
                except ImportError:
                    print(f"{peer}: not installed, skipped", flush=True)
                    continue
                lines.append(f"| {tname} | {nfe} | {peer} | its own | {r['mode_tv_exact']:.2f} | "
                             f"{r['energy_exact']:.2f} | |")  # fmt: skip
                print(lines[-1], flush=True)
                settings = {"target": tname, "nfe": nfe, "peer": peer, "n": N_JUDGE, "scores": r}
                records.append(record(f"{tname}/{nfe}/{peer}", r["energy_exact"], "x floor", None, None, settings))
    return records, lines


def digits(nfes=(5, 10), evaluations: int = 200, samplers=("unipc", "edm-heun")) -> tuple[list[dict], list[str]]:
    """The shipped digits model: energy distance to the held-out digits, default vs tuned grids."""
    from scoredyn.learning import load_dataset, load_trained
    from scoredyn.metrics import energy_distance

    model = load_trained("digits")
    held = load_dataset("digits").held_out[0].to(torch.float64)
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(held.shape[0], generator=g)
    a, b = held[idx[: held.shape[0] // 2]], held[idx[held.shape[0] // 2 :]]
    floor = energy_distance(a, b)  # two real sets of about the same size
    n = a.shape[0]
    records, lines = [], []
    for nfe in nfes:
        for sampler in samplers:
            steps, process = steps_for_nfe(sampler, nfe), process_of(sampler)
            row = {}
            for grid in ("default", "tuned"):
                clock = time.perf_counter()
                if grid == "tuned":
                    found = optimize_grid(model, sampler, nfe, process=process, n=500, seed=0,
                                          evaluations=evaluations, candidates=64)  # fmt: skip
                    res, _ = sample(model, sampler, steps=steps, n=n, seed=1, grid=found)
                else:
                    res, _ = sample(model, sampler, steps=steps, n=n, seed=1, process=process)
                e = energy_distance(res.x.double(), b)
                row[grid] = {"energy": e, "ratio": e / floor, "seconds": time.perf_counter() - clock}
                lines.append(f"| digits | {nfe} | {sampler} | {grid} | {e / floor:.2f} | {row[grid]['seconds']:.0f} |")
                print(lines[-1], flush=True)
            records.append(record(f"digits/{nfe}/{sampler}", row["tuned"]["ratio"], "x two real halves",
                                  "default grid", row["default"]["ratio"],
                                  {"nfe": nfe, "sampler": sampler, "n": n, "floor": floor, "rows": row}))  # fmt: skip
    return records, lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", nargs="+", default=["mog6", "mog10", "grid25", "random7"])
    ap.add_argument("--nfe", type=int, nargs="+", default=list(NFES))
    ap.add_argument("--samplers", nargs="+", default=list(SAMPLERS))
    ap.add_argument("--evaluations", type=int, default=600, help="Nelder-Mead's runs per grid")
    ap.add_argument("--others-on", nargs="+", default=None, help="targets the solvers other than unipc run on")
    ap.add_argument("--energy-on", nargs="+", default=None, help="targets unipc is also tuned on by energy")
    ap.add_argument("--no-digits", action="store_true")
    ap.add_argument("--no-peers", action="store_true", help="skip diffusers' and k-diffusion's runs")
    ap.add_argument("--merge", action="store_true", help="keep the file's records this run does not redo")
    ap.add_argument("--digits-samplers", nargs="+", default=["unipc", "edm-heun"])
    ap.add_argument("--digits-only", action="store_true", help="only the digits model (merged into the results)")
    ap.add_argument("--quick", action="store_true", help="mog6, unipc, NFE 5 (a check that it runs)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)
    if args.quick:
        args.targets, args.nfe, args.samplers, args.no_digits, args.evaluations = ["mog6"], [5], ["unipc"], True, 100
    others = args.targets if args.others_on is None else args.others_on
    energy_on = args.targets if args.energy_on is None else args.energy_on
    name = args.out or ("quick_grid_tuning.json" if args.quick else "grid_tuning.json")
    if not args.digits_only:
        records, lines = exact_targets(args.targets, args.nfe, args.samplers, args.evaluations, others, energy_on,
                                       not args.no_peers)  # fmt: skip
        if args.merge:
            records = merged(name, records)
        print("| target | NFE | sampler | grid | mode TV / floor | energy / floor | tuning s |")
        print("|---|---:|---|---|---:|---:|---:|")
        print("\n".join(lines))
        write(name, records)  # before the digits: a failure there keeps these
    if not args.no_digits:
        more, dl = digits(samplers=args.digits_samplers)
        print("| data | NFE | sampler | grid | energy / real halves | s |\n|---|---:|---|---|---:|---:|")
        print("\n".join(dl))
        write(name, merged(name, more))  # the exact targets' records stay (just written, or from before)


if __name__ == "__main__":
    main()
