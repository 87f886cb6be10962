"""Every training objective on mog6, one shared network, a wall-clock budget each.

Questions (issue 4): how fast does each objective train a network whose samples pass for exact
ones, how good is its score at each noise level, and how many samples per second does it train on.

Each objective trains on its natural process (``eps``, ``dsm``, ``x0``, ``v``, ``ssm``, ``ism``,
``ism-hutchinson`` on VP; ``edm`` on EDM; ``cfm`` on the linear path; ``vlb`` on the DDPM
schedule) with the same MLP, optimizer and batch, for ``--budget`` seconds of *training* time
(evaluation excluded: ``TrainResult.seconds`` times the loop only). Every ``--every`` steps the EMA
field draws N samples with ``unipc`` (20 steps, deterministic) and, every ``--sde-every`` steps and
at the end, with ``sde`` (reverse SDE, Euler-Maruyama, 100 steps); samples are judged against fresh
exact samples of mog6 (energy distance and mode TV beside their Monte-Carlo floors). A sampler
"gets there" at the first check with energy <= 3x its floor and mode TV <= 0.03. At the end:
``judge_samples`` in full, and the relative score (and x0) error against the exact score of mog6,
per noise level ``sigma_hat = sigma / alpha``.

Then the 2-D point clouds with the objective that got there first (``--cloud-objective``).

    python benchmarks/train_objectives.py [--budget 90] [--every 500] [--set optim.lr=1e-3] [--quick]
    -> benchmarks/results/train_objectives.json, Markdown tables on stdout
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # small MLPs train faster on one thread

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record, write  # noqa: E402

from scoredyn.config import TrainConfig, apply_overrides  # noqa: E402
from scoredyn.losses import OBJECTIVE_NAMES  # noqa: E402
from scoredyn.metrics import evaluate  # noqa: E402
from scoredyn.quality import judge_samples, score_error_profile  # noqa: E402
from scoredyn.registry import resolve_target  # noqa: E402
from scoredyn.sampling import sample  # noqa: E402
from scoredyn.targets import POINT_CLOUDS, mog6  # noqa: E402
from scoredyn.train import TrainedModel, Trainer, TrainingDiverged  # noqa: E402

NATURAL_PROCESS = {
    "eps": "vp", "dsm": "vp", "x0": "vp", "v": "vp", "ssm": "vp", "ism": "vp", "ism-hutchinson": "vp",
    "edm": "edm", "cfm": "linear", "vlb": "ddpm",
}
SHARED = (
    "model.hidden=128", "model.depth=3", "optim.batch_size=256", "optim.lr=2e-3", "optim.warmup=200",
    "optim.ema_decay=0.999", "data.n=20000",
)
SAMPLERS = {"unipc": 20, "sde": 100}  # name -> steps
SIGMA_HATS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
ENERGY_MAX, MODE_TV_MAX = 3.0, 0.03  # "gets there": energy <= 3x floor and mode TV <= 0.03
CLOUDS = ("figure8", "moons", "swissroll", "checkerboard")


# --- judging ----------------------------------------------------------------------------------------


def quick_judge(x: torch.Tensor, data: str, seed: int) -> dict:
    """Energy (and mode TV on mog6) as ``judge_samples`` computes them, without its other metrics.

    Every metric of ``metrics.evaluate`` draws its floor from its own seeded generator, so a subset
    gives the same numbers; ``full_judge`` checks this at every final evaluation.
    """
    if data in POINT_CLOUDS:  # judge_samples' reference and kernel density estimate
        ref = POINT_CLOUDS[data].sample(x.shape[0], torch.Generator().manual_seed(10_000 + seed))
        rep = evaluate(x, POINT_CLOUDS[data].as_mixture(), reference=ref, seed=seed, metrics=("energy",))
    else:
        rep = evaluate(x, resolve_target(data), seed=seed, metrics=("mode_tv", "energy"))
    return _summary(rep)


def full_judge(x: torch.Tensor, data: str, seed: int) -> dict:
    quick = quick_judge(x, data, seed)
    rep = judge_samples(x, data, seed=seed)
    out = _summary(rep)
    assert math.isclose(out["energy"], quick["energy"], rel_tol=1e-9), (out, quick)
    out["report"] = {k: v for k, v in rep.items() if isinstance(v, dict)}
    return out


def _summary(rep: dict) -> dict:
    e = rep["energy"]
    out = {"energy": e["value"], "energy_floor": e["floor"], "energy_ratio": e["ratio"]}
    if "mode_tv" in rep:
        out.update(mode_tv=rep["mode_tv"]["value"], mode_tv_floor=rep["mode_tv"]["floor"])
    return out


def passes(m: dict) -> bool:
    return m["energy_ratio"] <= ENERGY_MAX and m.get("mode_tv", 0.0) <= MODE_TV_MAX


def draw(model, sampler: str, n: int, seed: int) -> tuple[torch.Tensor | None, float]:
    """``n`` samples (None if any is not finite) and the seconds it took."""
    t0 = time.perf_counter()
    with torch.no_grad():
        res, _ = sample(model, sampler, steps=SAMPLERS[sampler], n=n, seed=seed)
    x = res.x if torch.isfinite(res.x).all() else None
    return x, time.perf_counter() - t0


def judged(model, sampler: str, data: str, n: int, seed: int, full: bool) -> dict:
    x, seconds = draw(model, sampler, n, seed)
    if x is None:
        return {"energy": math.inf, "energy_ratio": math.inf, "mode_tv": 1.0, "not_finite": True, "sample_s": seconds}
    m = full_judge(x, data, seed) if full else quick_judge(x, data, seed)
    return {**m, "sample_s": seconds}


# --- one training run ----------------------------------------------------------------------------------


def as_model(trainer: Trainer) -> TrainedModel:
    """The trainer's EMA field as ``sampling.sample`` takes it (what ``load_trained`` would rebuild)."""
    mean, cov = trainer.data.moments()
    info = {"dim": int(trainer.x.shape[1]), "data_mean": mean.tolist(), "data_cov": cov.tolist()}
    return TrainedModel(trainer.field(ema=True), trainer.config, info, trainer.step, str(trainer.out))


def train_and_judge(objective: str, process: str, data: str, args, out: str, *, sde_checks: bool) -> dict:
    """Train for ``args.budget`` seconds, judging the EMA field every ``args.every`` steps."""
    cfg = apply_overrides(
        TrainConfig(),
        [*SHARED, f"data.name={data}", f"objective.name={objective}", f"objective.process={process}",
         f"run.out={out}", "run.ckpt_every=1000000000", "run.progress=false", f"run.seed={args.seed}", *args.set],
    )
    trainer = Trainer(cfg, resume=False)
    train_s, checks, reached, diverged = 0.0, [], {s: None for s in SAMPLERS}, None
    last_rate = None  # steps per second of the previous chunk: the last chunk stops at the budget
    while train_s < args.budget:
        chunk, last = args.every, False
        if last_rate is not None:
            left = max(1, math.ceil((args.budget - train_s) * last_rate))
            chunk, last = min(chunk, left), left <= chunk
        try:
            res = trainer.fit(steps=trainer.step + chunk)
        except TrainingDiverged as err:
            diverged = {"step": trainer.step, "train_s": train_s, "error": str(err)}
            print(f"  {objective}: diverged at step {trainer.step}", flush=True)
            break
        train_s += res.seconds
        last_rate = chunk / max(res.seconds, 1e-9)
        final = last or train_s >= args.budget  # the chunk that was to end at the budget is the last
        model = as_model(trainer)
        row = {"step": trainer.step, "train_s": train_s, "loss": res.loss}
        for s in SAMPLERS:
            due = s == "unipc" or final or (sde_checks and trainer.step % args.sde_every == 0)
            if not due:
                continue
            m = judged(model, s, data, args.n, args.seed, full=final)
            row[s] = m
            if reached[s] is None and passes(m):
                reached[s] = {"train_s": train_s, "step": trainer.step}
        checks.append(row)
        print(f"  {objective:15s} step {trainer.step:6d}  train {train_s:6.1f}s  loss {res.loss:9.4g}  "
              + "  ".join(f"{s}: energy x{row[s]['energy_ratio']:8.2f}" + (f" TV {row[s]['mode_tv']:.4f}"
                          if "mode_tv" in row[s] else "") for s in SAMPLERS if s in row), flush=True)
        if final:
            break
    steps = trainer.step
    final_row = checks[-1] if checks else {}
    if diverged is not None and steps > 0:  # judge the last good weights
        model = as_model(trainer)
        final_row = {"step": steps, "train_s": train_s}
        final_row.update({s: judged(model, s, data, args.n, args.seed, full=True) for s in SAMPLERS})
    return {
        "objective": objective,
        "process": process,
        "data": data,
        "parameterization": trainer.parameterization,
        "steps": steps,
        "train_s": train_s,
        "samples_per_s": cfg.optim.batch_size * steps / max(train_s, 1e-9),
        "reached": reached,
        "final": {s: final_row.get(s) for s in SAMPLERS},
        "diverged": diverged,
        "checks": checks,
        "config": list(SHARED) + list(args.set),
        "trainer": trainer,
    }


def profile(trainer: Trainer) -> list[dict]:
    return score_error_profile(trainer.field(), mog6(), list(SIGMA_HATS))


# --- references: the exact score, fresh data ------------------------------------------------------------


def references(args, clouds) -> dict:
    """The same samplers on the exact score of mog6 (same N, seed and moments start), and fresh data
    from each point cloud judged like the samples (what 'as good as the data' scores)."""
    exact = {}
    for s in SAMPLERS:
        with torch.no_grad():
            res, _ = sample(mog6(), s, steps=SAMPLERS[s], n=args.n, seed=args.seed, start="moments")
        exact[s] = full_judge(res.x, "mog6", args.seed)
    fresh = {}
    for c in clouds:
        x = POINT_CLOUDS[c].sample(args.n, torch.Generator().manual_seed(20_000 + args.seed))
        fresh[c] = full_judge(x, c, args.seed)
    return {"exact_field": exact, "fresh_data": fresh}


# --- tables ----------------------------------------------------------------------------------------------


def _t(reached: dict | None) -> str:
    return "-" if reached is None else f"{reached['train_s']:.0f} s ({reached['step']})"


def _e(m: dict | None) -> str:
    return "-" if m is None else f"{m['energy_ratio']:.2f}"


def _tv(m: dict | None) -> str:
    return "-" if m is None or "mode_tv" not in m else f"{m['mode_tv']:.3f}"


def table_a(runs: list[dict], ref: dict) -> str:
    lines = [
        "| objective | process | samples/s | steps | time to 3x floor, unipc / sde | "
        "final energy / floor, unipc / sde | final mode TV, unipc / sde |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        f = r["final"]
        note = f" (diverged at step {r['diverged']['step']})" if r["diverged"] else ""
        lines.append(
            f"| {r['objective']}{note} | {r['process']} | {r['samples_per_s']:,.0f} | {r['steps']} | "
            f"{_t(r['reached']['unipc'])} / {_t(r['reached']['sde'])} | {_e(f['unipc'])} / {_e(f['sde'])} | "
            f"{_tv(f['unipc'])} / {_tv(f['sde'])} |"
        )
    ex = ref["exact_field"]
    floor = ex["unipc"]["mode_tv_floor"]
    lines.append(f"| *exact score* | vp / edm | | | | {_e(ex['unipc'])} / {_e(ex['sde'])} | "
                 f"{_tv(ex['unipc'])} / {_tv(ex['sde'])} (floor {floor:.3f}) |")
    return "\n".join(lines)


def table_b(runs: list[dict], key: str) -> str:
    lines = ["| objective | " + " | ".join(f"{s:g}" for s in SIGMA_HATS) + " |", "|---|" + "---:|" * len(SIGMA_HATS)]
    for r in runs:
        cells = [f"{p[key]:.2g}" if p[key] < 100 else f"{p[key]:.0f}" for p in r["profile"]]
        lines.append(f"| {r['objective']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_c(runs: list[dict], ref: dict) -> str:
    lines = [
        "| data | objective | samples/s | steps | time to 3x floor (unipc) | final energy / floor, unipc / sde | "
        "fresh data / floor |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        f = r["final"]
        lines.append(
            f"| {r['data']} | {r['objective']} ({r['process']}) | {r['samples_per_s']:,.0f} | {r['steps']} | "
            f"{_t(r['reached']['unipc'])} | {_e(f['unipc'])} / {_e(f['sde'])} | "
            f"{ref['fresh_data'][r['data']]['energy_ratio']:.2f} |"
        )
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------------------


def best_objective(runs: list[dict]) -> dict:
    """The run whose unipc samples got there first (ties and misses: the lower final energy ratio)."""
    def key(r):
        reached = r["reached"]["unipc"]
        return (reached["train_s"] if reached else math.inf, r["final"]["unipc"]["energy_ratio"])
    return min(runs, key=key)


def _record_of(r: dict, budget: float, extra: dict) -> dict:
    reached = r["reached"]["unipc"]
    settings = {k: v for k, v in r.items() if k != "trainer"}
    settings.update(
        budget_s=budget, samplers=SAMPLERS, energy_max=ENERGY_MAX, mode_tv_max=MODE_TV_MAX,
        value_is="training seconds until unipc samples reach energy <= 3x floor and mode TV <= 0.03 "
                 "(the budget if never)", **extra,
    )
    name = f"train-{r['objective']}" if r["data"] == "mog6" else f"train-{r['data']}-{r['objective']}"
    return record(name, reached["train_s"] if reached else budget, "s", None, None, settings)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", type=float, default=90.0, help="training seconds per objective")
    ap.add_argument("--every", type=int, default=500, help="steps between checks (unipc)")
    ap.add_argument("--sde-every", type=int, default=1000, help="steps between reverse-SDE checks on mog6")
    ap.add_argument("--n", type=int, default=5000, help="samples per check")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    ap.add_argument("--objectives", default=",".join(OBJECTIVE_NAMES))
    ap.add_argument("--clouds", default=",".join(CLOUDS))
    ap.add_argument("--cloud-objective", default="auto", help="objective for the clouds ('auto': the fastest on mog6)")
    ap.add_argument("--quick", action="store_true", help="10 s budget, objectives v and vlb, one cloud")
    args = ap.parse_args()
    torch.set_num_threads(1)
    objectives = args.objectives.split(",")
    clouds = [c for c in args.clouds.split(",") if c]
    if args.quick:
        args.budget, objectives, clouds = 10.0, ["v", "vlb"], clouds[:1]
    filename = "train_objectives_quick.json" if args.quick else "train_objectives.json"
    t_start = time.perf_counter()

    ref = references(args, clouds)
    print("exact score:", {s: round(m["energy_ratio"], 2) for s, m in ref["exact_field"].items()},
          "fresh data:", {c: round(m["energy_ratio"], 2) for c, m in ref["fresh_data"].items()}, flush=True)
    runs, cloud_runs, records = [], [], []

    def save() -> None:
        recs = records + [record("train-reference", None, "energy / floor", None, None,
                                 {**ref, "wall_s": time.perf_counter() - t_start})]
        write(filename, recs)

    for obj in objectives:
        with tempfile.TemporaryDirectory() as out:
            r = train_and_judge(obj, NATURAL_PROCESS[obj], "mog6", args, out, sde_checks=True)
        r["profile"] = profile(r["trainer"])
        runs.append(r)
        records.append(_record_of(r, args.budget, {}))
        save()
        print(f"{obj}: {r['samples_per_s']:,.0f} samples/s, score rel. err "
              + " ".join(f"{p['sigma_hat']:g}:{p['score_rel_err']:.2g}" for p in r["profile"]), flush=True)
    if clouds:
        best = best_objective(runs) if args.cloud_objective == "auto" else {"objective": args.cloud_objective}
        obj = best["objective"]
        print(f"point clouds with {obj}", flush=True)
        for c in clouds:
            with tempfile.TemporaryDirectory() as out:
                r = train_and_judge(obj, NATURAL_PROCESS[obj], c, args, out, sde_checks=False)
            cloud_runs.append(r)
            records.append(_record_of(r, args.budget, {}))
            save()
    wall = time.perf_counter() - t_start
    save()
    print(f"\ntotal wall time {wall / 60:.1f} min\n")
    print("**(A) mog6: time to 3x floor and final quality**\n")
    print(table_a(runs, ref))
    print("\n**(B) relative score error by sigma_hat**\n")
    print(table_b(runs, "score_rel_err"))
    print("\n**(B') relative x0 (denoiser) error by sigma_hat**\n")
    print(table_b(runs, "x0_rel_err"))
    if cloud_runs:
        print("\n**(C) point clouds**\n")
        print(table_c(cloud_runs, ref))


if __name__ == "__main__":
    main()
