"""One GPU check of the fused kernels: float32 accuracy per precision, the sampled law, the speed suite.

In one command under a time budget:

    python benchmarks/gpu_check.py                  # a CUDA machine: under 5 minutes (--budget 280)
    python benchmarks/gpu_check.py --dry            # the same code on the CPU at tiny sizes (a minute or two)

1. **precision**: each fused kernel in float32 against a float64 run of the same formula, beside the
   plain float32 path (the torch backends, float32 matmuls without TF32) on the same particles, for
   every precision (``kernels.PRECISIONS``): the Langevin kernel (``mixture_langevin``; noise off, 3
   levels x 3 steps, 20,000 particles) at D = 2, 10, 64 and K = 6, 100; the SVGD kernel sums and
   direction (``kernel_sums``, ``svgd_direction``; N = 4096, median-heuristic bandwidth) at D = 2, 10,
   64. Error = max |x32 - x64| / max |x64|; ``within_10x`` says whether it is within 10 times the
   plain float32 path's, which the default precision must be.
2. **law**: the texts' annealed Langevin (the registry's ``annealed-langevin``: 10 levels x 100 steps,
   EDM, from N(0, 10^2 I)) on 10^6 float32 particles of mog6, through the fused kernel and through the
   plain path (``backend="eager"``), each scored against the exact mode weights (``mode_tv_exact``, with
   its floor). The recipe itself is biased (its mode weights are those of the level where the modes
   split: ``benchmarks/particle_exact.py``), so the check is that the two runs agree with each other
   to Monte-Carlo error (their mode weights' TV within 3 sqrt(2) floors).
3. **bench**: ``scoredyn bench --device cuda`` one part at a time, each a child process given what is
   left of the budget; a part that does not fit is stopped or skipped and the summary says which
   (``scoredyn bench --device cuda --part NAME`` runs it alone).

``--dry`` runs the same code on the CPU: kernels through Triton's interpreter (``TRITON_INTERPRET=1``),
tiny sizes, ``scoredyn bench --quick`` (the ``langevin`` part unless ``--parts`` says otherwise), records
to a temporary folder unless ``--out`` names one. Writes ``gpu_check.json`` (DESIGN.md's records, with
the GPU's name and the torch / Triton versions) and the bench's own files to ``--out`` (default
``benchmarks/results``), after each part. Exit status 1 if a part failed or a check did not pass.
"""

from __future__ import annotations

import os
import sys

if "--dry" in sys.argv:
    os.environ["TRITON_INTERPRET"] = "1"  # before anything imports triton

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import RESULTS, record, write  # noqa: E402

from scoredyn.app.bench.suite import PARTS  # noqa: E402
from scoredyn.app.sampling import sample  # noqa: E402
from scoredyn.core.processes import EDM  # noqa: E402
from scoredyn.core.targets import mog6, random_mixture  # noqa: E402
from scoredyn.kernels import PRECISIONS, kernel_sums, mixture_langevin  # noqa: E402
from scoredyn.metrics import evaluate  # noqa: E402
from scoredyn.samplers import geometric_sigma_grid, svgd_direction  # noqa: E402
from scoredyn.samplers.svgd import median_bandwidth  # noqa: E402


@dataclass(frozen=True)
class Sizes:
    langevin_n: int
    langevin_cases: tuple[tuple[int, int], ...]  # (D, K)
    levels: int
    steps: int
    svgd_n: int
    svgd_dims: tuple[int, ...]
    law_n: int
    law_steps: int  # per level; 10 levels


FULL = Sizes(20_000, ((2, 6), (10, 6), (64, 6), (2, 100), (10, 100), (64, 100)), 3, 3, 4096, (2, 10, 64),
             1_000_000, 100)  # fmt: skip
DRY = Sizes(40, ((2, 6), (10, 6), (64, 6), (2, 100), (10, 100), (64, 100)), 2, 2, 150, (2, 10, 64), 512, 2)

FILENAME = "gpu_check.json"


class Clock:
    """Seconds since the start, and what is left of the budget."""

    def __init__(self, budget: float):
        self.t0, self.budget = time.perf_counter(), budget

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def left(self) -> float:
        return self.budget - self.elapsed()

    def say(self, line: str) -> None:
        print(f"[{self.elapsed():6.1f} s] {line}", flush=True)


def _rel_err(y: torch.Tensor, ref: torch.Tensor) -> float:
    return float((y.double() - ref).abs().max() / ref.abs().max())


def _typical_err(y: torch.Tensor, ref: torch.Tensor) -> float:
    """The median over particles of ``max_d |y - ref|``, over ``max |ref|``."""
    return float((y.double() - ref).abs().amax(1).median() / ref.abs().max())


def _error_record(name, fused, eager, settings, device) -> dict:
    """One precision row: the kernel's error beside the plain float32 path's (``ratio`` = eager / fused,
    so at least 0.1 is within 10x)."""
    settings = {**settings, "within_10x": fused <= 10 * eager}
    return record(name, fused, "max |x32 - x64| / max |x64|", "plain float32 path (torch backend)", eager, settings,
                  device=device)  # fmt: skip


# --- 1. precision ----------------------------------------------------------------------------------


def langevin_precision(sizes: Sizes, device: str, clock: Clock) -> list[dict]:
    """``mixture_langevin`` in float32, every precision, and the torch backend in float32, against the
    torch backend in float64; noise off, ``eta = sigma^2 / 2`` (annealed Langevin's default rule)."""
    process = EDM()
    grid = geometric_sigma_grid(process, sizes.levels)
    levels = [(process.sigma(t).item(), t) for t in grid]
    out = []
    for dim, k in sizes.langevin_cases:
        if clock.left() <= 0:
            clock.say(f"langevin D={dim} K={k}: skipped (budget spent)")
            continue
        target = mog6() if (dim, k) == (2, 6) else random_mixture(dim, k, seed=0)
        terms = [target.noised(process, t).precision_terms() for _, t in levels]
        g = torch.Generator().manual_seed(dim * 1000 + k)
        x64 = (4.0 * torch.randn(sizes.langevin_n, dim, generator=g, dtype=torch.float64)).to(device)

        def run(x, backend, precision="ieee", terms=terms):
            for (sigma, _), tm in zip(levels, terms, strict=True):
                x = mixture_langevin(x, tm, 0.5 * sigma**2, sizes.steps, noise=False, backend=backend,
                                     precision=precision)  # fmt: skip
            return x

        ref = run(x64, "torch")
        eager = run(x64.float(), "torch")
        e_max, e_typ = _rel_err(eager, ref), _typical_err(eager, ref)
        settings = {"kernel": "mixture_langevin", "n": sizes.langevin_n, "dim": dim, "components": k,
                    "levels": sizes.levels, "steps": sizes.steps, "noise": False, "process": "edm",
                    "target": target.name, "dtype": "float32", "eager_typical_err": e_typ}  # fmt: skip
        for precision in PRECISIONS:
            t0 = time.perf_counter()
            y = run(x64.float(), "triton", precision)
            f_max, f_typ = _rel_err(y, ref), _typical_err(y, ref)
            rec = _error_record(f"gpu_check/langevin/d{dim}_k{k}/{precision}", f_max, e_max,
                                {**settings, "precision": precision, "typical_err": f_typ,
                                 "seconds_with_compile": time.perf_counter() - t0}, device)  # fmt: skip
            out.append(rec)
            clock.say(
                f"langevin D={dim:2d} K={k:3d} {precision:6s}: {f_max:.2e} (typical {f_typ:.1e}); plain "
                f"float32 {e_max:.2e} (typical {e_typ:.1e}){'' if rec['settings']['within_10x'] else '  > 10x'}"
            )
    return out


def svgd_precision(sizes: Sizes, device: str, clock: Clock) -> list[dict]:
    """The SVGD kernel sums and direction in float32, every precision, and the chunked torch path in
    float32, against the chunked torch path in float64 (particles N(0, 9 I), score -x / 9)."""
    out = []
    for dim in sizes.svgd_dims:
        if clock.left() <= 0:
            clock.say(f"svgd D={dim}: skipped (budget spent)")
            continue
        g = torch.Generator().manual_seed(dim)
        x64 = (3.0 * torch.randn(sizes.svgd_n, dim, generator=g, dtype=torch.float64)).to(device)
        s64 = -x64 / 9.0
        h = median_bandwidth(x64)
        xc = x64 - x64.mean(0)
        v64 = torch.cat([s64, xc, torch.ones(sizes.svgd_n, 1, dtype=torch.float64, device=device)], 1)
        x32, s32, xc32, v32 = x64.float(), s64.float(), xc.float(), v64.float()
        refs = {"sums": kernel_sums(xc, v64, h, backend="torch"),
                "direction": svgd_direction(x64, s64, h, backend="torch")}  # fmt: skip
        eager = {"sums": kernel_sums(xc32, v32, h, backend="torch"),
                 "direction": svgd_direction(x32, s32, h, backend="torch")}  # fmt: skip
        settings = {"kernel": "kernel_sums", "n": sizes.svgd_n, "dim": dim, "h": h, "bandwidth": "median heuristic",
                    "dtype": "float32", "values": "[s | x - mean | 1]"}  # fmt: skip
        for precision in PRECISIONS:
            fused = {"sums": kernel_sums(xc32, v32, h, backend="triton", precision=precision),
                     "direction": svgd_direction(x32, s32, h, backend="triton", precision=precision)}  # fmt: skip
            line = []
            for what in ("sums", "direction"):
                f, e = _rel_err(fused[what], refs[what]), _rel_err(eager[what], refs[what])
                rec = _error_record(f"gpu_check/svgd_{what}/d{dim}/{precision}", f, e,
                                    {**settings, "precision": precision, "quantity": what,
                                     "norm_err": float((fused[what].double() - refs[what]).norm() / refs[what].norm()),
                                     "eager_norm_err": float((eager[what].double() - refs[what]).norm()
                                                             / refs[what].norm())}, device)  # fmt: skip
                out.append(rec)
                line.append(f"{what} {f:.2e} (plain {e:.2e}){'' if rec['settings']['within_10x'] else ' > 10x'}")
            clock.say(f"svgd D={dim:2d} N={sizes.svgd_n} {precision:6s}: " + ", ".join(line))
    return out


# --- 2. law ----------------------------------------------------------------------------------------------


def law_check(sizes: Sizes, device: str, clock: Clock) -> list[dict]:
    """The registry's annealed Langevin on ``law_n`` float32 particles, fused and plain, against the exact
    mode weights."""
    target = mog6()
    runs = {}
    for backend in ("triton", "eager"):
        t0 = time.perf_counter()
        res, settings = sample(target, "annealed-langevin", steps=sizes.law_steps, n=sizes.law_n, seed=0, levels=10,
                               dtype=torch.float32, device=device, backend=backend)  # fmt: skip
        wall = time.perf_counter() - t0
        ev = evaluate(res.x.detach().cpu().double(), target, seed=1, metrics=("mode_tv_exact",))
        runs[backend] = {"wall_s": wall, "kernel": settings["kernel"], "nfe": res.nfe,
                         "mode_weights": ev["mode_weights"],
                         **{k: ev["mode_tv_exact"][k] for k in ("value", "floor", "ratio", "ratio_ci")}}  # fmt: skip
        clock.say(
            f"law, {backend:6s}: mode TV {ev['mode_tv_exact']['value']:.2e} = "
            f"{ev['mode_tv_exact']['ratio']:.1f} x floor ({ev['mode_tv_exact']['floor']:.1e}), {wall:.1f} s"
        )
    fused, plain = runs["triton"], runs["eager"]
    between = 0.5 * sum(abs(a - b) for a, b in zip(fused["mode_weights"], plain["mode_weights"], strict=True))
    agree = between <= 3 * math.sqrt(2) * fused["floor"]
    clock.say(
        f"law: the two runs' mode weights differ by TV {between:.2e} "
        f"({'within' if agree else 'ABOVE'} 3 sqrt(2) floors = {3 * math.sqrt(2) * fused['floor']:.1e})"
    )
    settings = {"sampler": "annealed-langevin", "target": "mog6", "n": sizes.law_n, "levels": 10,
                "steps_per_level": sizes.law_steps, "dtype": "float32", "exact_weights": target.weights.tolist(),
                "fused": fused, "plain": plain, "tv_between_runs": between, "agree": agree}  # fmt: skip
    return [record("gpu_check/law/annealed-langevin/mode_tv_exact", fused["value"], "TV to the exact mode weights",
                   "plain path (backend eager), same recipe and seed", plain["value"], settings,
                   device=device)]  # fmt: skip


# --- 3. bench ---------------------------------------------------------------------------------------------


def bench(parts: list[str], quick: bool, device: str, out: Path, clock: Clock, min_seconds: float) -> list[dict]:
    """``scoredyn bench`` one part at a time, each a child process (its own process group, stopped when
    the budget runs out); their records are the files the suite writes to ``out``."""
    done = []
    for part in PARTS:
        if part.name not in parts:
            continue
        left = clock.left()
        if left < min_seconds:
            clock.say(f"bench {part.name}: skipped ({left:.0f} s left)")
            done.append({"part": part.name, "status": "skipped", "seconds": 0.0})
            continue
        cmd = [sys.executable, "-m", "scoredyn", "bench", "--device", device, "--part", part.name]
        cmd += ["--results", str(out)] + (["--quick"] if quick else [])
        clock.say(f"bench {part.name} ({part.about}), {left:.0f} s left: {' '.join(cmd[1:])}")
        t0 = time.perf_counter()
        child = subprocess.Popen(cmd, start_new_session=True, env={**os.environ, "COLUMNS": "160"})
        try:
            status = "ok" if child.wait(timeout=left) == 0 else f"failed (exit {child.returncode})"
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
            status = "stopped (budget spent)"
        filename = f"quick_{part.filename}" if quick else part.filename
        records = len(json.loads((out / filename).read_text())) if status == "ok" else 0
        done.append({"part": part.name, "status": status, "seconds": time.perf_counter() - t0, "file": filename,
                     "records": records})  # fmt: skip
        clock.say(f"bench {part.name}: {status}, {records} records in {out / filename}")
    return done


# --- the run ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry", action="store_true", help="the CPU, tiny sizes, kernels through Triton's interpreter")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for the records (default benchmarks/results; --dry: a temporary folder)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds for the whole check (280: start-up and a stopped part fit 5 minutes; --dry 150)",
    )
    parser.add_argument(
        "--parts", nargs="*", default=None, help="bench parts to run (default: all; --dry: langevin); none: no bench"
    )
    args = parser.parse_args(argv)
    dry = args.dry
    if not dry and not torch.cuda.is_available():
        print("gpu_check needs a CUDA device; --dry runs it on the CPU", file=sys.stderr)
        return 2
    device = "cpu" if dry else "cuda"
    sizes = DRY if dry else FULL
    out = args.out or (Path(tempfile.mkdtemp(prefix="gpu_check_dry_")) if dry else RESULTS)
    out.mkdir(parents=True, exist_ok=True)
    parts = args.parts if args.parts is not None else (["langevin"] if dry else [p.name for p in PARTS])
    unknown = sorted(set(parts) - {p.name for p in PARTS})
    if unknown:
        print(f"unknown bench part(s) {', '.join(unknown)}: use {', '.join(p.name for p in PARTS)}", file=sys.stderr)
        return 2
    clock = Clock(args.budget if args.budget is not None else (150.0 if dry else 280.0))
    torch.set_float32_matmul_precision("highest")  # the plain float32 path: float32 matmuls, no TF32

    about = {"torch": torch.__version__, "cuda": torch.version.cuda, "interpreter": dry, "budget_s": clock.budget,
             "matmul_precision": torch.get_float32_matmul_precision()}  # fmt: skip
    if not dry:
        about |= {"gpu": torch.cuda.get_device_name(), "capability": list(torch.cuda.get_device_capability())}
    clock.say(f"gpu_check on {about.get('gpu', 'the CPU (Triton interpreter)')}; records to {out}")
    records, failed = [], []

    def save(summary_extra: dict) -> None:
        summary = record("gpu_check/summary", clock.elapsed(), "s", "budget", clock.budget,
                         {**about, **summary_extra, "failed": failed}, device=device)  # fmt: skip
        write(FILENAME, [*records, summary], out)

    for name, fn in (("precision: langevin", langevin_precision), ("precision: svgd", svgd_precision),
                     ("law", law_check)):  # fmt: skip
        try:
            records += fn(sizes, device, clock)
        except Exception:  # one part failing must not cost the others their device time
            traceback.print_exc()
            failed.append(name)
            clock.say(f"{name}: FAILED")
        save({})
    if not dry:
        torch.cuda.empty_cache()  # the bench's children size their runs by the GPU memory left free
    bench_runs = bench(parts, dry, device, out, clock, 20.0 if not dry else 5.0) if parts else []
    failed += [f"bench {b['part']}" for b in bench_runs if b["status"].startswith("failed")]
    save({"bench": bench_runs})

    not_within = [r["name"] for r in records if r["settings"].get("within_10x") is False]
    default_not_within = [n for n in not_within if n.endswith("/ieee")]
    disagree = [r["name"] for r in records if r["settings"].get("agree") is False]
    clock.say(f"wrote {len(records) + 1} records to {out / FILENAME}")
    if not_within:
        clock.say(f"beyond 10x the plain float32 error: {', '.join(not_within)}")
    for b in bench_runs:
        if b["status"] != "ok":
            clock.say(f"bench {b['part']}: {b['status']} (alone: scoredyn bench --device {device} --part {b['part']})")
    # the interpreter's float32 is NumPy's and its sizes are tiny: --dry checks that the code runs
    ok = not failed and (dry or (not default_not_within and not disagree))
    clock.say(
        "gpu_check: "
        + (
            "passed"
            if ok
            else f"NOT passed (failed: {failed}, default precision beyond 10x: {default_not_within}, law: {disagree})"
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
