"""Every training objective on mog6, one shared network, a wall-clock budget each.

Questions: how fast does each objective train a network whose samples pass for exact
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
    python benchmarks/train_objectives.py --objectives edm --clouds "" --merge   (redo some rows)
    python benchmarks/train_objectives.py --tables          (the tables of the results file)
    python benchmarks/train_objectives.py --diagnose        (dsm against the implicit objectives at
        equal steps, and their per-sample gradient noise per noise level -> ..._diagnose.json)
    python benchmarks/train_objectives.py --throughput      (samples/s alone -> ..._throughput.json)
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # small MLPs train faster on one thread

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import RESULTS, record, write  # noqa: E402

from scoredyn.app.quality import judge_samples, score_error_profile  # noqa: E402
from scoredyn.app.sampling import sample  # noqa: E402
from scoredyn.core.registry import resolve_target  # noqa: E402
from scoredyn.core.targets import POINT_CLOUDS, mog6  # noqa: E402
from scoredyn.learning import (  # noqa: E402  # noqa: E402
    OBJECTIVE_NAMES,  # noqa: E402
    TrainConfig,
    TrainedModel,
    Trainer,
    TrainingDiverged,
    apply_overrides,
)
from scoredyn.metrics import evaluate  # noqa: E402

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


# --- why the implicit objectives lag: equal steps, and gradient noise per noise level ---------------------

IMPLICIT = ("ssm", "ism", "ism-hutchinson")


def gradient_noise(trainer: Trainer, names: tuple[str, ...], batch: int, seed: int) -> list[dict]:
    """Per noise level, the per-sample gradient of each objective at the trainer's (non-EMA) network,
    all on the same ``x0`` and ``eps`` and with the same weight ``lambda = sigma^2`` (the implicit
    objectives' ``sigma^2 / 2`` doubled): ``noise = E||g_i - g||^2`` (what one sample adds to a
    step's variance) and ``signal``, an unbiased estimate of ``||E g||^2`` (the same for every
    objective in expectation: they differ by a constant in ``theta``; nearly 0 where the network is good)."""
    from scoredyn.learning import make_objective

    params = [p for p in trainer.model.parameters() if p.requires_grad]
    field = trainer.field(ema=False)
    g = torch.Generator().manual_seed(seed)
    x0 = trainer.x[torch.randint(trainer.x.shape[0], (batch,), generator=g)]
    objectives = {n: make_objective(n, trainer.process, sigma_data=trainer.sigma_data) for n in names}
    rows = []
    for sh in SIGMA_HATS:
        t = trainer.process.sigma_hat_to_t(torch.tensor([sh], dtype=torch.float64))[0]
        draws = objectives["ssm"].draw(x0, g) if "ssm" in names else objectives[names[0]].draw(x0, g)
        draws["v"] = draws.get("v", torch.randn(batch, 1, x0.shape[1], generator=g))
        draws["t"], draws["w"] = torch.full((batch,), float(t), dtype=torch.float64), torch.ones(batch)
        row = {"sigma_hat": sh}
        for name, obj in objectives.items():
            scale = 2.0 if name in IMPLICIT else 1.0
            d = dict(draws)
            if name == "ism-hutchinson":  # Rademacher probes: the signs of the Gaussian ones
                d["v"] = torch.sign(draws["v"])
            grads = []
            for i in range(batch):
                di = {k: v[i : i + 1] for k, v in d.items()}
                loss = scale * obj.loss(field, x0[i : i + 1], None, di).sum()
                grads.append(torch.cat([gr.reshape(-1) for gr in torch.autograd.grad(loss, params)]))
            G = torch.stack(grads).double()
            mean = G.mean(0)
            noise = float(((G - mean) ** 2).sum(1).mean())
            # ||mean||^2 overestimates ||E g||^2 by the batch's own noise, noise / (batch - 1)
            row[name] = {"noise": noise, "signal": float((mean**2).sum()) - noise / (batch - 1)}
        rows.append(row)
    return rows


def diagnose(args) -> None:
    """DSM and the implicit objectives at the same number of steps (not the same seconds), then the
    gradient noise of each at the DSM-trained network."""
    runs = []
    for obj in ("dsm", *IMPLICIT):
        cfg = apply_overrides(
            TrainConfig(),
            [*SHARED, f"objective.name={obj}", "objective.process=vp", "run.ckpt_every=1000000000",
             "run.progress=false", f"run.seed={args.seed}", *args.set],
        )
        with tempfile.TemporaryDirectory() as out:
            trainer = Trainer(apply_overrides(cfg, [f"run.out={out}"]), resume=False)
            res = trainer.fit(steps=args.diagnose_steps)
        model = as_model(trainer)
        final = {s: judged(model, s, "mog6", args.n, args.seed, full=False) for s in SAMPLERS}
        r = {"objective": obj, "steps": trainer.step, "train_s": res.seconds, "final": final, "trainer": trainer,
             "profile": profile(trainer)}
        runs.append(r)
        print(f"{obj:15s} {trainer.step} steps {res.seconds:5.1f}s  unipc x{final['unipc']['energy_ratio']:.2f}"
              f"  sde x{final['sde']['energy_ratio']:.2f}", flush=True)
    noise = gradient_noise(runs[0]["trainer"], ("dsm", *IMPLICIT), args.diagnose_batch, args.seed)
    recs = [record(f"diagnose-{r['objective']}", r["train_s"], "s", None, None,
                   {k: v for k, v in r.items() if k != "trainer"}) for r in runs]
    recs.append(record("diagnose-gradient-noise", None, "squared gradient norm", None, None,
                       {"batch": args.diagnose_batch, "rows": noise}))
    write("train_objectives_diagnose.json", recs)
    print(f"\n**equal steps ({args.diagnose_steps}): relative score error by sigma_hat**\n")
    print(table_b(runs, "score_rel_err"))
    print("\n| objective | steps | train s | final energy / floor, unipc / sde | final mode TV, unipc / sde |")
    print("|---|---:|---:|---:|---:|")
    for r in runs:
        f = r["final"]
        print(f"| {r['objective']} | {r['steps']} | {r['train_s']:.0f} | {_e(f['unipc'])} / {_e(f['sde'])} | "
              f"{_tv(f['unipc'])} / {_tv(f['sde'])} |")
    names = ("dsm", *IMPLICIT)
    print("\n**per-sample gradient noise E||g_i - g||^2 (signal ||g||^2), weight sigma^2, at the DSM network**\n")
    print("| sigma_hat | " + " | ".join(names) + " |")
    print("|---:|" + "---:|" * len(names))
    for row in noise:
        print(f"| {row['sigma_hat']:g} | "
              + " | ".join(f"{row[n]['noise']:.3g} ({row[n]['signal']:.2g})" for n in names) + " |")


# --- throughput alone -------------------------------------------------------------------------------------


def throughput(args) -> None:
    """Samples per second of every objective, best of ``--rounds`` interleaved rounds of ``--tp-steps``
    steps after a warm-up (the machine is shared: the best round is the least disturbed)."""
    trainers, folders = {}, []
    for obj in OBJECTIVE_NAMES:
        folders.append(tempfile.TemporaryDirectory())
        out = folders[-1].name
        cfg = apply_overrides(
            TrainConfig(),
            [*SHARED, f"objective.name={obj}", f"objective.process={NATURAL_PROCESS[obj]}", f"run.out={out}",
             "run.ckpt_every=1000000000", "run.progress=false", f"run.seed={args.seed}", *args.set],
        )
        trainers[obj] = Trainer(cfg, resume=False)
        trainers[obj].fit(steps=20)  # warm-up
    rates = {obj: [] for obj in trainers}
    for _ in range(args.rounds):
        for obj, tr in trainers.items():
            res = tr.fit(steps=tr.step + args.tp_steps)
            rates[obj].append(res.samples_per_second)
    for folder in folders:
        folder.cleanup()
    rows = [{"objective": o, "process": NATURAL_PROCESS[o], "best": max(r), "rounds": r} for o, r in rates.items()]
    write("train_objectives_throughput.json", [
        record(f"throughput-{r['objective']}", r["best"], "samples/s", None, None,
               {**r, "steps": args.tp_steps, "batch": trainers[r["objective"]].config.optim.batch_size})
        for r in rows
    ])
    print("| objective | process | samples/s (best) | ms/step | rounds |")
    print("|---|---|---:|---:|---|")
    for r in rows:
        batch = trainers[r["objective"]].config.optim.batch_size
        print(f"| {r['objective']} | {r['process']} | {r['best']:,.0f} | {1000 * batch / r['best']:.1f} | "
              + ", ".join(f"{x:,.0f}" for x in r["rounds"]) + " |")


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
    ap.add_argument("--diagnose", action="store_true",
                    help="only the implicit-objective diagnosis (equal steps, gradient noise)")
    ap.add_argument("--diagnose-steps", type=int, default=2000)
    ap.add_argument("--diagnose-batch", type=int, default=128)
    ap.add_argument("--throughput", action="store_true", help="only the samples/s of every objective")
    ap.add_argument("--tp-steps", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--merge", action="store_true", help="keep the results file's records of runs not redone")
    ap.add_argument("--tables", action="store_true", help="only print the tables of the results file")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.tables:
        return tables_from_file(RESULTS / ("train_objectives_quick.json" if args.quick else "train_objectives.json"))
    if args.diagnose:
        return diagnose(args)
    if args.throughput:
        return throughput(args)
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

    kept = []  # --merge: the records of the results file that this run does not redo
    if args.merge and (RESULTS / filename).exists():
        kept = json.loads((RESULTS / filename).read_text())
        old_ref = next((r["settings"] for r in kept if r["name"] == "train-reference"), {})
        ref["fresh_data"] = {**old_ref.get("fresh_data", {}), **ref["fresh_data"]}
        kept = [r for r in kept if r["name"] != "train-reference"]

    def save() -> None:
        names = {r["name"] for r in records}
        recs = [r for r in kept if r["name"] not in names] + records
        recs.append(record("train-reference", None, "energy / floor", None, None,
                           {**ref, "wall_s": time.perf_counter() - t_start}))
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
    print_tables(runs, cloud_runs, ref)


def tables_from_file(path: Path) -> None:
    """Print the tables of a results file (after runs merged into it with ``--merge``)."""
    recs = json.loads(path.read_text())
    ref = next(r["settings"] for r in recs if r["name"] == "train-reference")
    runs = [r["settings"] for r in recs if r["name"] != "train-reference"]
    order = {name: i for i, name in enumerate(OBJECTIVE_NAMES)}
    mog = sorted((r for r in runs if r["data"] == "mog6"), key=lambda r: order[r["objective"]])
    print_tables(mog, [r for r in runs if r["data"] != "mog6"], ref)


def print_tables(runs: list[dict], cloud_runs: list[dict], ref: dict) -> None:
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
