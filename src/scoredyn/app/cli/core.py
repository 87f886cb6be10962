"""``scoredyn sample | evaluate | scaling | demo``: particles from a target or a checkpoint, and their scores."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import typer
from rich.table import Table

from ...core.registry import PROCESSES, TARGETS
from ...metrics import METRICS, PAIR_BUDGET
from ...metrics import evaluate as evaluate_samples
from ...samplers import START_KINDS
from ...util.files import atomic_savez, atomic_write_json, atomic_write_text, check_writable, load_samples
from ...util.versions import versions
from ..blocks import blocks_within_budget
from ..registry import GRIDS, SAMPLERS, resolve_sampler
from ..sampling import check_memory
from ..sampling import sample as run_sampler
from ..scaling import SCALING_METRICS, at_floor, check_sizes
from ..scaling import scaling as run_scaling
from ..sources import as_source
from ..tuning import load_grid_file
from ._common import app, check_device, err, fail, out, progress, resolve_source, seed_option


@app.command()
def sample(
    sampler: Annotated[str, typer.Option(help=f"one of: {', '.join(SAMPLERS)}")],
    n: Annotated[int, typer.Option(help="number of particles")],
    out_path: Annotated[Path, typer.Option("--out", help="output .npz")],
    steps: Annotated[
        int | None, typer.Option(help="sampler steps (per noise level for the annealed particle samplers); "
                                      "with a grid file, its own")  # fmt: skip
    ] = None,
    target: Annotated[str | None, typer.Option(help=f"built-in ({', '.join(TARGETS)}) or a mixture .json")] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="a run folder of `scoredyn train`")] = None,
    seed: Annotated[int, seed_option("seed of the run's one generator")] = 0,
    levels: Annotated[int, typer.Option(help="noise levels of the annealing ladder")] = 10,
    process: Annotated[str | None, typer.Option(help=f"override the process: {', '.join(PROCESSES)}")] = None,
    grid: Annotated[
        str | None, typer.Option(help=f"override the grid: {', '.join(GRIDS)}, or a grid.json of `scoredyn tune-grid`")
    ] = None,
    start: Annotated[str | None, typer.Option(help=f"override the start: {', '.join(START_KINDS)}")] = None,
    ema: Annotated[bool, typer.Option(help="with --checkpoint: the EMA weights (default) or the raw ones")] = True,
    label: Annotated[str | None, typer.Option("--class", help="draw this class (guided; see --guidance)")] = None,
    guidance: Annotated[float, typer.Option(help="guidance weight w (1: the conditional law)")] = 1.0,
    device: Annotated[str, typer.Option(help="cpu or cuda")] = "cpu",
    float32: Annotated[bool, typer.Option("--float32", help="particles in float32 (default float64)")] = False,
    block_size: Annotated[
        int | None,
        typer.Option(help="draw in blocks of this many particles, each with its own seed (the layout torchrun uses)"),
    ] = None,
    memory_gib: Annotated[
        float, typer.Option(help="the memory budget: a larger run is drawn in blocks that fit, or refused")
    ] = 8.0,
) -> None:
    """Draw samples with a named sampler and the exact field of a target, or the field of a trained
    checkpoint (read on the sampler's process at equal SNR); write an .npz. Under `torchrun` the
    particles are drawn in blocks shared out across the processes, and rank 0 writes the file: the
    same samples for any number of processes."""
    tuned = None
    if grid is not None and grid.endswith(".json"):
        tuned = load_grid_file(grid)  # run_sampler checks it against the sampler and the process
        if steps is not None and steps != tuned.steps:
            fail(f"--steps {steps} disagrees with the grid file's {tuned.steps} steps (leave --steps out)")
        steps = tuned.steps
    if steps is None:
        fail("--steps is needed (or a grid file as --grid)")
    for name, value in (("--steps", steps), ("--n", n), ("--levels", levels)):
        if value < 1:
            fail(f"{name} must be a positive integer, got {value}")
    if out_path.suffix != ".npz":
        fail(f"--out must end in .npz, got {out_path}")
    check_writable(out_path)
    dev = check_device(device)
    if label is not None and not label.lstrip("-").isdigit():
        fail(f"--class must be an integer, got {label!r}")
    if not guidance >= 0:
        fail(f"--guidance must be >= 0, got {guidance}")
    klass = None if label is None else int(label)
    if block_size is not None and block_size < 1:
        fail(f"--block-size must be a positive integer, got {block_size}")
    if not 0 < memory_gib < float("inf"):
        fail(f"--memory-gib must be a positive number, got {memory_gib}")
    source, source_name = resolve_source(target, checkpoint, ema=ema, device=dev)
    recipe = resolve_sampler(sampler)
    dim, level_count = as_source(source).dim, levels if recipe.per_level else 1
    if block_size is not None:
        check_memory(min(n, block_size), dim, steps, level_count, budget_gib=memory_gib)
    else:  # above the budget, a run is drawn in the blocks that fit it
        block_size = blocks_within_budget(n, dim, steps, level_count, sampler, memory_gib)
        if block_size is not None:
            err.print(f"{n:,} particles exceed the {memory_gib:g} GiB budget in one pass: "
                      f"drawing them in blocks of {block_size:,}, each with its own seed")  # fmt: skip
    options = {"steps": steps, "levels": levels, "process": process, "grid": tuned or grid, "start": start,
               "dtype": torch.float32 if float32 else torch.float64, "label": klass, "guidance": guidance}  # fmt: skip
    if block_size is not None or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return _sample_in_blocks(source, sampler, n, seed, block_size, dev, out_path, options)
    total = 1000 if recipe.adaptive else levels if recipe.per_level else steps
    times: list[float] = []

    def advance(info) -> None:  # an adaptive ladder's length is unknown: its progress is in time
        if not recipe.adaptive:
            return bar.update(task, completed=info.i + 1)
        times.append(info.t)
        span = times[0] - min(times) if len(times) > 1 else 0.0
        bar.update(task, completed=int(1000 * span / max(times[0], 1e-12)))

    t0 = time.perf_counter()
    with progress() as bar:
        task = bar.add_task(f"{sampler} on {source_name}", total=total)
        result, settings = run_sampler(source, sampler, n=n, seed=seed, device=dev, callback=advance, **options)
    wall = time.perf_counter() - t0
    x = _write_samples(out_path, sampler, result.x, result.nfe, settings, wall)
    err.print(f"wrote {out_path}: {x.shape[0]} samples in {x.shape[1]}-D, nfe {result.nfe}, {wall:.2f}s")
    for line in diagnostic_lines(result.info):
        err.print(line)


def _sample_in_blocks(source, sampler: str, n: int, seed: int, block_size, device: str, out_path: Path, options):
    """``sample`` in particle blocks (``app.blocks``), shared out across the processes of ``torchrun``
    (each on its own GPU under CUDA); rank 0 writes the file."""
    from ...learning.distributed import finish, init_distributed
    from ..blocks import BLOCK_SIZE, sample_blocks

    ranks, dev = init_distributed(device)
    t0 = time.perf_counter()
    x, settings = sample_blocks(source, sampler, n=n, seed=seed, block_size=block_size or BLOCK_SIZE, ranks=ranks,
                                device=str(dev), **options)  # fmt: skip
    finish(ranks)
    if not ranks.main:
        return
    wall = time.perf_counter() - t0
    nfe = settings["nfe"]
    x = _write_samples(out_path, sampler, x, nfe, settings, wall)
    err.print(f"wrote {out_path}: {x.shape[0]} samples in {x.shape[1]}-D, nfe {nfe}, {settings['blocks']} blocks "
              f"over {ranks.world} process{'es' * (ranks.world > 1)}, {wall:.2f}s")  # fmt: skip


def _write_samples(out_path: Path, sampler: str, x: torch.Tensor, nfe: int, settings: dict, wall: float) -> np.ndarray:
    """The samples as float64, checked finite, written atomically with their NFE and the run's settings."""
    x = x.detach().cpu().double().numpy()
    if not np.isfinite(x).all():
        fail(f"{sampler} produced NaN or inf; nothing written")
    settings.update(wall_s=wall, versions=versions())
    atomic_savez(out_path, samples=x, nfe=np.int64(nfe), settings=np.array(json.dumps(settings)))
    return x


def diagnostic_lines(info: dict | None) -> list[str]:
    """What a sampler reported beyond its particles, in a line or two (acceptance, ESS, log Z)."""
    if not info:
        return []
    lines = []
    if "log_z" in info:
        lines.append(
            f"log Z = {info['log_z']:.4f} ± {info['log_z_se']:.4f} (1 se; 0 for a normalized density) over "
            f"{info['levels']} levels, lowest ESS {min(info['ess']):.2f} N, resampled {sum(info['resampled'])} times"
        )
    if "acceptance" in info:
        rates = info["acceptance"]
        lines.append(f"MALA acceptance per level: {min(rates):.2f}-{max(rates):.2f} (adapted to 0.574)")
    return lines


def _ratio_cell(entry: dict) -> str:
    return "" if entry.get("ratio") is None else f"{entry['ratio']:.2f}"


def _interval_cell(entry: dict) -> str:
    ci = entry.get("ratio_ci")
    return "" if ci is None else f"[{ci[0]:.2f}, {ci[1]:.2f}]"


def _metric_names(metrics: str | None) -> tuple[str, ...] | None:
    if metrics is None:
        return None
    names = tuple(m.strip() for m in metrics.split(",") if m.strip())
    unknown = [m for m in names if m not in METRICS]
    if not names or unknown:
        fail(f"--metrics must name metrics from: {', '.join(METRICS)} (got {metrics!r})")
    return names


@app.command()
def evaluate(
    samples: Annotated[Path, typer.Option(help=".npz from `scoredyn sample` (its 'samples'), or .npy")],
    target: Annotated[str | None, typer.Option(help=f"built-in ({', '.join(TARGETS)}) or a mixture .json")] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="judge against a trained run's data")] = None,
    reference: Annotated[
        Path | None, typer.Option(help="judge against the points of a .csv/.npy/.npz file (floor: between its halves)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    seed: Annotated[int, seed_option("seed of the fresh exact reference samples")] = 0,
    metrics: Annotated[str | None, typer.Option(help=f"comma-separated, from: {', '.join(METRICS)}")] = None,
    pair_budget: Annotated[
        int, typer.Option(help="kernel evaluations per pair term before the block estimator takes over")
    ] = PAIR_BUDGET,
) -> None:
    """Score samples against a target: two-sample metrics against fresh exact samples, one-sample
    metrics against the exact law (mode_tv_exact, energy_exact, mmd_exact, ksd), each beside its
    floor with a 95% interval for the ratio. A checkpoint's samples are judged against the data it
    was trained on (its exact mixture, fresh toy points, held-out digits or held-out points of its data file);
    with --reference, against the points of a data file, the floor measured between two halves of it.
    Under `torchrun` rank 0 scores and prints (the same report for any number of processes)."""
    if int(os.environ.get("RANK", "0")) != 0:
        return  # the metrics' pair sums are bounded by the block estimator: one process scores them
    if pair_budget < 1:
        fail(f"--pair-budget must be >= 1, got {pair_budget}")
    names = _metric_names(metrics)
    x = load_samples(samples)
    if reference is not None:
        from ..quality import judge_against_file

        if target is not None or checkpoint is not None:
            fail("give one of --target, --checkpoint and --reference")
        report = judge_against_file(torch.from_numpy(x), str(reference), seed=seed)
    elif checkpoint is not None and target is None:
        from ...learning import read_run
        from ..quality import judge_samples

        data = read_run(checkpoint)[2].data  # the run's data set; its weights are not needed
        report = judge_samples(torch.from_numpy(x), data.name, n_train=data.n, data_seed=data.seed, seed=seed)
    else:
        tg, _ = resolve_source(target, checkpoint)
        if x.shape[1] != tg.dim:
            fail(f"samples are {x.shape[1]}-D but target {tg.name} is {tg.dim}-D")
        chosen = {} if names is None else {"metrics": names}
        report = evaluate_samples(torch.from_numpy(x), tg, seed=seed, pair_budget=pair_budget, **chosen)
    if as_json:
        print(json.dumps(report))
        return
    table = Table(title=f"{samples} (N = {x.shape[0]})")
    for col in ("metric", "value", "floor", "ratio", "95% interval", "blocks"):
        table.add_column(col, justify="right" if col != "metric" else "left")
    for key, val in report.items():
        if isinstance(val, dict) and "value" in val:
            floor = "" if val.get("floor") is None else f"{val['floor']:.4g}"
            blocks = str(val.get("blocks", 1))
            table.add_row(key, f"{val['value']:.4g}", floor, _ratio_cell(val), _interval_cell(val), blocks)
    out.print(table)


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(float(part)) if float(part) == int(float(part)) else -1 for part in text.split(","))
    except ValueError:
        fail(f"--sizes must be comma-separated integers, e.g. 1000,10000,100000 (got {text!r})")
    try:
        return check_sizes(sizes)
    except ValueError as e:
        fail(f"--sizes: {e}")


@app.command()
def scaling(
    sampler: Annotated[str, typer.Option(help=f"one of: {', '.join(SAMPLERS)}")],
    steps: Annotated[int, typer.Option(help="sampler steps (per noise level for the annealed particle samplers)")],
    target: Annotated[str, typer.Option(help="an exact target: mog6, mog10, ... or a mixture .json")] = "mog6",
    sizes: Annotated[str, typer.Option(help="strictly increasing particle counts")] = "1000,10000,100000",
    seed: Annotated[int, seed_option("seed of every run")] = 0,
    levels: Annotated[int, typer.Option(help="noise levels of the annealing ladder")] = 10,
    process: Annotated[str | None, typer.Option(help=f"override the process: {', '.join(PROCESSES)}")] = None,
    grid: Annotated[str | None, typer.Option(help=f"override the grid: {', '.join(GRIDS)}")] = None,
    metrics: Annotated[str, typer.Option(help="comma-separated metric names")] = ",".join(SCALING_METRICS),
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    out_path: Annotated[Path | None, typer.Option("--out", help="also write the rows to this .json")] = None,
) -> None:
    """Does a sampler stay at the floor as N grows? Runs it at each size on the exact field and prints
    value / floor per N with 95% intervals; a metric is at the floor only if its ratio stays <= 1.5
    at every N."""
    for name, value in (("--steps", steps), ("--levels", levels)):
        if value < 1:
            fail(f"{name} must be a positive integer, got {value}")
    if out_path is not None and out_path.suffix != ".json":
        fail(f"--out must end in .json, got {out_path}")
    resolve_sampler(sampler)
    names = _metric_names(metrics)
    counts = _sizes(sizes)
    source, _ = resolve_source(target, None)
    with progress() as bar:
        task = bar.add_task(f"{sampler} at N = {', '.join(f'{n:g}' for n in counts)}", total=len(counts))
        rows = run_scaling(
            source,
            sampler,
            counts,
            steps=steps,
            seed=seed,
            metrics=names,
            levels=levels,
            process=process,
            grid=grid,
            on_size=lambda _row: bar.advance(task),
        )
    verdict = {m: at_floor(rows, m) for m in names}
    doc = {"target": target, "sampler": sampler, "steps": steps, "seed": seed, "rows": rows, "at_floor": verdict}
    if out_path is not None:
        atomic_write_json(out_path, doc)
    if as_json:
        print(json.dumps(doc))
        return
    table = Table(title=f"{sampler} on {target}: value / floor as N grows (at the floor: ratio <= 1.5 at every N)")
    table.add_column("N", justify="right")
    for m in names:
        table.add_column(f"{m} ratio", justify="right")
        table.add_column("95% interval", justify="right")
    for row in rows:
        cells = [f"{row['n']:,}"]
        for m in names:
            cells += [_ratio_cell(row[m]), _interval_cell(row[m])] if m in row else ["", ""]
        table.add_row(*cells)
    out.print(table)
    out.print("at the floor: " + ", ".join(f"{m} {'yes' if ok else 'no'}" for m, ok in verdict.items()))


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="output folder")] = Path("scoredyn-demo"),
    n: Annotated[int, typer.Option(help="particles per run")] = 2000,
    seed: Annotated[int, seed_option("seed")] = 0,
    sweeps: Annotated[bool, typer.Option(help="also run the Langevin-steps and SVGD sweeps")] = False,
    large: Annotated[
        bool,
        typer.Option("--large", help=f"also run (A), (B) and its corrections at N = {LARGE_N:,}: small biases show"),
    ] = False,
    workers: Annotated[
        int, typer.Option(help="worker processes for the study's rows (0: one per core, at most 4; 1: none)")
    ] = 0,
) -> None:
    """The particle-dynamics study on mog6: score drift, annealed Langevin, SVGD, and every diffusion
    sampler on the exact field, plus each diffusion sampler's error against its number of field
    evaluations; prints the table, writes table.json, table.md, samples.npz and report.html."""
    from ...core.targets import mog6
    from ..report import SWEEP_KEY, build_report
    from ..study import (
        MAIN_RUNS,
        SWEEP_BUDGETS,
        SWEEP_METRICS,
        SWEEP_N,
        accuracy_sweep,
        default_workers,
        langevin_steps_sweep,
        svgd_sweep,
        sweep_points,
    )

    if n < 10:
        fail(f"--n must be at least 10, got {n}")
    if workers < 0:
        fail(f"--workers must be >= 0, got {workers}")
    target = mog6()
    sections = [("main", list(MAIN_RUNS))]
    if sweeps:
        sections += [("langevin_steps", langevin_steps_sweep()), ("svgd_sweep", svgd_sweep(n=min(n, 1000)))]
    if large:  # SVGD is O(N^2) per step: (C) stays at its own N; (B)'s corrections come along
        sections.append((LARGE_SECTION, [run for run in MAIN_RUNS if run.label.startswith(("(A)", "(B)"))]))
    sections.append((SWEEP_SECTION, accuracy_sweep(n=min(n, SWEEP_N))))  # last: its rows are the cheapest
    t0 = time.perf_counter()
    workers = workers or default_workers()
    if workers == 1:
        tables, all_samples = _demo_study(target, sections, n, seed)
        figures = None  # build_report renders them from the files
    else:
        tables, all_samples, figures = _demo_study_parallel(target, sections, n, seed, workers)
    wall = time.perf_counter() - t0
    sweep = {"n": min(n, SWEEP_N), "seed": seed, "budgets": list(SWEEP_BUDGETS), "metrics": list(SWEEP_METRICS),
             "points": sweep_points(tables.pop(SWEEP_SECTION))}  # fmt: skip
    for name, rows in tables.items():
        out.print(_rich_table(name, rows, n))
    doc = {"target": target.to_dict(), "n": n, "seed": seed, "wall_s": wall, "versions": versions(), "tables": tables,
           SWEEP_KEY: sweep}  # fmt: skip
    atomic_write_json(out_dir / "table.json", doc)
    atomic_write_text(out_dir / "table.md", _markdown(doc))
    atomic_savez(out_dir / "samples.npz", **{k: v.cpu().numpy() for k, v in all_samples.items()})
    if figures is not None:
        figures.insert(1, _accuracy_html(sweep))  # the rows it needs came in last
    build_report(out_dir, figures=figures)
    err.print(
        f"demo finished in {time.perf_counter() - t0:.1f}s; wrote {out_dir}/table.json, table.md, samples.npz, "
        "report.html"
    )


def _accuracy_html(sweep: dict) -> str:
    from ..report import accuracy_figure

    return accuracy_figure(sweep, "mog6")


def _section_n(name: str, n: int) -> int:
    return LARGE_N if name == LARGE_SECTION else n


def _demo_study(target, sections, n: int, seed: int, pool=None, order=None, on_samples=None, on_section=None):
    """Every section's rows (in this process, or in ``pool``): the tables and the samples by
    ``section/label`` (those of the main and sweep sections; the large runs and the accuracy sweep
    are scored, not kept). ``on_section(name, rows)`` is called as each section completes."""
    from ..study import SWEEP_METRICS, run_study

    tables, all_samples = {}, {}
    with progress() as bar:
        for name, runs in sections:
            task = bar.add_task(name, total=len(runs))
            rows, samples = run_study(
                target,
                runs,
                _section_n(name, n),
                seed,
                on_row=lambda _r, t=task: bar.advance(t),
                pool=pool,
                order=order,
                on_samples=on_samples if name == "main" else None,
                **({"metrics": SWEEP_METRICS} if name == SWEEP_SECTION else {}),
            )
            tables[name] = rows
            if name not in (LARGE_SECTION, SWEEP_SECTION):  # the large runs' samples are 1.6 MB each
                all_samples.update({f"{name}/{k}": v for k, v in samples.items()})
            if on_section is not None:
                on_section(name, rows)
    return tables, all_samples


def _demo_study_parallel(target, sections, n: int, seed: int, workers: int):
    """The study's rows in ``workers`` processes while a thread of this one renders the report's
    figures: those of the target at once, the sample clouds of every run as soon as the main rows
    are in (while the other sections run). The accuracy figure needs the sweep, which runs last:
    the caller renders it (``demo_figures``'s order, second)."""
    from concurrent.futures import ThreadPoolExecutor

    from ..report import clouds_figure, target_figures
    from ..study import study_pool

    threads = torch.get_num_threads()
    with study_pool(workers) as pool:  # forked before any thread of ours starts
        torch.set_num_threads(1)  # the cores are the workers'; the figures take what is left
        try:
            with ThreadPoolExecutor(1, thread_name_prefix="figures") as painter:
                static = painter.submit(target_figures, target, seed)
                clouds: dict = {}
                cloud_fig = None

                def on_samples(label: str, x: torch.Tensor) -> None:
                    clouds[label] = x

                def on_section(name: str, rows: list[dict]) -> None:
                    nonlocal cloud_fig
                    if name == "main":  # every main row is in: their clouds, in the table's order
                        ordered = {r["label"]: clouds[r["label"]] for r in rows}
                        titles = {r["label"]: r.get("short") or r["label"] for r in rows}
                        cloud_fig = painter.submit(clouds_figure, target, ordered, titles, n=n)

                tables, all_samples = _demo_study(target, sections, n, seed, pool, None, on_samples, on_section)
                figures = [cloud_fig.result() if cloud_fig is not None else ""] + static.result()
        finally:
            torch.set_num_threads(threads)
    return tables, all_samples, figures


_COLS = (
    ("mode_tv_exact", "mode TV to p"),
    ("mode_tv", "mode TV"),
    ("energy", "energy dist."),
    ("sliced_w1", "sliced W1"),
)
LARGE_N = 100_000
LARGE_SECTION = f"large N = {LARGE_N:,}"
SWEEP_SECTION = "accuracy_vs_nfe"


def _rich_table(name: str, rows: list[dict], n: int) -> Table:
    """The terminal's table (140 columns when piped): each metric as value (value / floor), 3
    significant figures and ratios to 2 decimals, ✓ after the runs within the floor
    (``study.row_within_floor``)."""
    from ..study import row_within_floor, run_setup, section_title, significant

    table = Table(title=f"mog6 — {section_title(name, _section_n(name, n))}", caption=_FLOOR_NOTE)
    table.add_column("run", min_width=20)
    table.add_column("process, grid, steps", max_width=15)
    for head in ("N", "NFE"):
        table.add_column(head, justify="right")
    for _, head in _COLS:
        table.add_column(head, justify="right")
    table.add_column("wall s", justify="right")
    for r in rows:
        cells = [f"{significant(r[k]['value'])} ({r[k]['ratio']:.2f})" if k in r else "" for k, _ in _COLS]
        label = r["label"] + (" ✓" if row_within_floor(r) else "")
        setup = ", ".join(x for x in run_setup(r) if x)
        table.add_row(label, setup, f"{r['n']:,}", f"{r['nfe']:,}", *cells, f"{r['wall_s']:.2f}")
    return table


_FLOOR_NOTE = (
    "Each metric: value (value / floor); floor: the metric between two exact sample sets of the same size. "
    "✓: within the floor (the 95% interval of value / floor reaches 1 for mode TV to p, mode TV and energy)."
)


def _markdown(doc: dict) -> str:
    from ..study import row_within_floor, run_setup, section_title, significant

    lines = [f"# scoredyn demo: mog6, N = {doc['n']}, seed {doc['seed']}", "", _FLOOR_NOTE, ""]
    for name, rows in doc["tables"].items():
        lines += [f"## {section_title(name, _section_n(name, doc['n']))}", ""]
        metric_heads = " | ".join(f"{h} | floor | ÷ floor" for _, h in _COLS)
        lines.append(f"| run | N | process | grid | steps | NFE | {metric_heads} | wall s | within floor |")
        lines.append("|---|---:|---|---|---:|---:|" + "---:|---:|---:|" * len(_COLS) + "---:|:---:|")
        for r in rows:
            cells = " | ".join(
                f"{significant(r[k]['value'])} | {significant(r[k]['floor'])} | {r[k]['ratio']:.2f}"
                if k in r else " | | " for k, _ in _COLS
            )  # fmt: skip
            process, grid, steps = run_setup(r)
            mark = "✓" if row_within_floor(r) else ""
            lines.append(f"| {r['label']} | {r['n']} | {process} | {grid} | {steps} | {r['nfe']} | {cells} | "
                         f"{r['wall_s']:.2f} | {mark} |")  # fmt: skip
        lines.append("")
    lines.append(f"Total wall time {doc['wall_s']:.1f} s; versions {doc['versions']}.")
    return "\n".join(lines) + "\n"
