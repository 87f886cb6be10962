"""Energy models on mog6: the energy parameterization against the eps MLP of the same size, and SMC against
annealed Langevin on the trained energy at equal evaluations per particle.

1. Train an eps MLP and an energy MLP (``model.parameterization = "energy"``: ``EnergyField`` on the
   quadratic-head ``EnergyMLP``) of the same size on mog6, with the same objective (eps, VP), optimizer,
   batch, steps and seed. The run folders are kept in ``--runs`` and reused by later calls.
2. Training: the last logged loss, the EMA field's eps loss on fixed held-out draws beside the exact
   field's, the score's relative error by noise level (``score_error_profile``), and samples of the
   reverse SDE (100 steps) at N for each seed: ``mode_tv_exact`` and ``energy_exact`` against mog6, as
   multiples of their floors.
3. The energy's own law: the mode masses of ``exp(-E_theta(., t))`` at noise levels ``sigma_hat``, by
   self-normalized importance weights on exact samples of ``p_t``, against those of ``p_t`` under the same
   assignment — what an exact sampler of the model (SMC, MALA) reaches, whatever its transport.
4. ``smc`` against ``annealed-langevin`` on the trained energy, at equal evaluations per particle: SMC runs
   by name with ``--smc-steps`` moves per level on the geometric ladder (sigma_hat 10 -> 0.05, the last
   level of annealed Langevin too: the learned energy has no log-density at sigma = 0, where the smc
   recipe's default grid ends), and annealed Langevin gets ``round(NFE_smc / levels)`` steps per level.
   The same pair on the exact field of mog6 is the reference.

    python benchmarks/energy_smc.py [--steps 5000] [--n 20000] [--seeds 0,1,2] [--smc-steps 1] [--quick]
    -> benchmarks/results/energy_smc.json, Markdown tables on stdout
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # small MLPs train faster on one thread

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record, write  # noqa: E402

from scoredyn.app.quality import score_error_profile  # noqa: E402
from scoredyn.app.registry import SAMPLERS  # noqa: E402
from scoredyn.app.sampling import sample  # noqa: E402
from scoredyn.core.fields import AnalyticField  # noqa: E402
from scoredyn.core.processes import VP  # noqa: E402
from scoredyn.core.targets import mog6  # noqa: E402
from scoredyn.learning import TrainConfig, Trainer, apply_overrides, load_trained, make_objective  # noqa: E402
from scoredyn.metrics import evaluate  # noqa: E402

SHARED = ("model.hidden=128", "model.depth=3", "optim.batch_size=256", "optim.lr=2e-3", "optim.warmup=200",
          "optim.ema_decay=0.999", "data.name=mog6", "data.n=20000", "objective.name=eps",
          "objective.process=vp", "run.progress=false", "run.log_every=250")  # fmt: skip
METRICS = ("mode_tv_exact", "energy_exact")
SIGMA_HATS = (0.05, 0.1, 0.3, 1.0, 3.0, 10.0)
LEVELS = 10  # annealed Langevin's ladder (sigma_hat 10 -> 0.05)


def train(param: str, args) -> dict:
    """Train (or finish training) one model in ``args.runs``; the run's loss, time and folder."""
    out = Path(args.runs) / f"{param}-{args.steps}-seed{args.train_seed}"
    cfg = apply_overrides(TrainConfig(), [*SHARED, f"model.parameterization={param}", f"optim.steps={args.steps}",
                                          f"run.ckpt_every={args.steps}", f"run.seed={args.train_seed}",
                                          f"run.out={out}"])  # fmt: skip
    trainer = Trainer(cfg, resume=True)
    timing = out / "bench_timing.json"
    if trainer.step < args.steps:
        res = trainer.fit()
        timing.write_text(json.dumps({"train_s": res.seconds, "samples_per_s": res.samples_per_second}))
    log = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line]
    return {"param": param, "dir": str(out), "loss": log[-1]["loss"], "loss_log": [r["loss"] for r in log],
            **json.loads(timing.read_text())}  # fmt: skip


def heldout_loss(field, n: int = 20000, seed: int = 123) -> float:
    """The eps objective at fixed draws (the same for every field): ``E ||eps_hat - eps||^2``."""
    obj = make_objective("eps", VP())
    g = torch.Generator().manual_seed(seed)
    x0 = mog6().sample(n, g).float()
    draws = obj.draw(x0, g)
    with torch.no_grad():
        return float(obj.loss(field, x0, None, draws).mean())


def judged(source, sampler: str, steps: int, n: int, seed: int, **knobs) -> dict:
    """Samples of one run, scored against mog6: the ratios to the floors, NFE, seconds, the run's info."""
    t0 = time.perf_counter()
    res, _ = sample(source, sampler, steps=steps, n=n, seed=seed, **knobs)
    seconds = time.perf_counter() - t0
    finite = bool(torch.isfinite(res.x).all())
    rep = evaluate(res.x, mog6(), metrics=METRICS, seed=seed) if finite else None
    info = {k: v for k, v in (res.info or {}).items() if k in ("log_z", "log_z_se", "levels", "search_nfe")}
    ratios = {m: (rep[m]["ratio"] if rep else float("inf")) for m in METRICS}
    return {"sampler": sampler, "steps": steps, "seed": seed, "nfe": int(res.nfe), "seconds": seconds, **ratios,
            "info": info}  # fmt: skip


def own_mode_masses(field, sigma_hat: float, n: int = 20000, seed: int = 7) -> dict:
    """The mode masses of the model's own law ``exp(-E(., t))`` at ``sigma_hat``: exact samples of ``p_t``,
    each assigned to its most responsible component of ``p_t``, weighted by ``exp(-E) / p_t`` (self-
    normalized) for the model and equally for ``p_t`` itself; the TV between the two histograms (the
    model's error alone, whatever the assignment does where the components overlap) and the weights' ESS
    fraction (how far to trust it)."""
    process, target = field.process, mog6()
    t = process.sigma_hat_to_t(torch.tensor([sigma_hat], dtype=torch.float64))[0]
    p_t = target.noised(process, t)
    y = p_t.sample(n, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        log_w = field.log_prob(y, t) - AnalyticField(target, process).log_prob(y, t)
    w = torch.softmax(log_w, 0)
    label = p_t.component_log_prob(y).argmax(1)
    masses = torch.zeros(target.n_components, dtype=torch.float64).index_add_(0, label, w)
    exact = torch.bincount(label, minlength=target.n_components).to(torch.float64) / n
    tv = 0.5 * float((masses - exact).abs().sum())
    return {"sigma_hat": sigma_hat, "masses": masses.tolist(), "exact_masses": exact.tolist(), "tv": tv,
            "ess_fraction": float(1 / (w**2).sum() / n)}  # fmt: skip


def smc_against_langevin(source, args) -> list[dict]:
    rows = []
    for seed in args.seeds:
        smc_row = judged(source, "smc", args.smc_steps, args.n, seed, grid="geometric", levels=LEVELS)
        al_steps = max(1, round(smc_row["nfe"] / LEVELS))
        al_row = judged(source, "annealed-langevin", al_steps, args.n, seed, levels=LEVELS)
        rows += [smc_row, al_row]
        print(f"    seed {seed}: smc NFE {smc_row['nfe']} ({smc_row['info'].get('levels')} levels): mode TV "
              f"x{smc_row['mode_tv_exact']:.2f} energy x{smc_row['energy_exact']:.2f} ({smc_row['seconds']:.0f}s) | "
              f"annealed-langevin NFE {al_row['nfe']}: mode TV x{al_row['mode_tv_exact']:.2f} energy "
              f"x{al_row['energy_exact']:.2f} ({al_row['seconds']:.0f}s)", flush=True)  # fmt: skip
    return rows


def mean_of(rows: list[dict], sampler: str, metric: str) -> float:
    vals = [r[metric] for r in rows if r["sampler"] == sampler]
    return sum(vals) / len(vals)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=5000, help="training steps of each model")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--smc-steps", type=int, default=1, help="MALA moves per SMC level")
    ap.add_argument("--train-seed", type=int, default=0)
    ap.add_argument("--runs", default="runs/energy_smc", help="where the trained run folders are kept")
    ap.add_argument("--quick", action="store_true", help="1500 steps, N = 5000, one seed")
    args = ap.parse_args()
    if args.quick:
        args.steps, args.n, args.seeds = 1500, 5000, "0"
    args.seeds = [int(s) for s in args.seeds.split(",")]
    torch.set_num_threads(1)

    # 1-2. the two models, trained alike, and their samples
    models, training = {}, {}
    exact_loss = heldout_loss(AnalyticField(mog6(), VP(), dtype=torch.float32))
    for param in ("eps", "energy"):
        run = train(param, args)
        model = load_trained(run["dir"])
        models[param] = model
        run["heldout_loss"] = heldout_loss(model.field)
        run["score_rel_err"] = {r["sigma_hat"]: r["score_rel_err"] for r in
                                score_error_profile(model.field, mog6(), list(SIGMA_HATS), n=4000, seed=5)}  # fmt: skip
        run["sde"] = [judged(model, "sde", 100, args.n, seed) for seed in args.seeds]
        training[param] = run
        tv, en = mean_of(run["sde"], "sde", "mode_tv_exact"), mean_of(run["sde"], "sde", "energy_exact")
        print(f"{param}: {args.steps} steps in {run['train_s']:.0f}s, last loss {run['loss']:.4f}, held-out eps loss "
              f"{run['heldout_loss']:.4f} (exact field {exact_loss:.4f}); sde: mode TV x{tv:.2f}, energy x{en:.2f} "
              "(mean over seeds)", flush=True)  # fmt: skip

    # 3. the energy's own law at each level
    own = [own_mode_masses(models["energy"].field, sh) for sh in SIGMA_HATS]
    for row in own:
        print(f"  exp(-E) at sigma_hat {row['sigma_hat']}: mode masses {[round(m, 3) for m in row['masses']]} "
              f"(p_t: {[round(m, 3) for m in row['exact_masses']]}), TV {row['tv']:.3f}, ESS "
              f"{row['ess_fraction']:.2f}", flush=True)  # fmt: skip

    # 4. smc against annealed Langevin at equal NFE
    comparison = {}
    if "smc" in SAMPLERS:
        for label, source in (("energy", models["energy"]), ("exact", mog6())):
            print(f"  {label} field:", flush=True)
            comparison[label] = smc_against_langevin(source, args)
    else:
        print("  the smc sampler is not registered: the comparison is left out", flush=True)

    settings = {"shared": list(SHARED), "steps": args.steps, "n": args.n, "seeds": args.seeds,
                "smc_steps": args.smc_steps, "train_seed": args.train_seed, "exact_heldout_loss": exact_loss,
                "training": training, "own_mode_masses": own, "comparison": comparison}  # fmt: skip
    records = []
    for metric in METRICS:
        records.append(record(f"energy-vs-eps-sde-{metric}", mean_of(training["energy"]["sde"], "sde", metric),
                              "x floor", "eps MLP of the same size", mean_of(training["eps"]["sde"], "sde", metric),
                              settings if not records else {"see": "the first record's settings"}))  # fmt: skip
    records.append(
        record(
            "energy-vs-eps-heldout-loss",
            training["energy"]["heldout_loss"],
            "eps loss",
            "eps MLP of the same size",
            training["eps"]["heldout_loss"],
            {"exact_field": exact_loss},
        )
    )
    for label, rows in comparison.items():
        for metric in METRICS:
            records.append(record(f"smc-vs-annealed-langevin-{label}-{metric}", mean_of(rows, "smc", metric), "x floor",
                                  "annealed-langevin at equal NFE", mean_of(rows, "annealed-langevin", metric),
                                  {"rows": rows}))  # fmt: skip
    print("\n| model | steps | train s | held-out eps loss | sde mode TV (x floor) | sde energy (x floor) |")
    print("|---|---:|---:|---:|---:|---:|")
    for param, run in training.items():
        print(
            f"| {param} | {args.steps} | {run['train_s']:.0f} | {run['heldout_loss']:.4f} | "
            f"{mean_of(run['sde'], 'sde', 'mode_tv_exact'):.2f} | {mean_of(run['sde'], 'sde', 'energy_exact'):.2f} |"
        )
    if comparison:
        print("\n| field | sampler | NFE | mode TV (x floor) | energy (x floor) |")
        print("|---|---|---:|---:|---:|")
        for label, rows in comparison.items():
            for name in ("smc", "annealed-langevin"):
                nfe = sum(r["nfe"] for r in rows if r["sampler"] == name) / len(args.seeds)
                print(
                    f"| {label} | {name} | {nfe:.0f} | {mean_of(rows, name, 'mode_tv_exact'):.2f} | "
                    f"{mean_of(rows, name, 'energy_exact'):.2f} |"
                )
    print("wrote", write("energy_smc.json", records))


if __name__ == "__main__":
    main()
