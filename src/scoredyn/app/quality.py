"""How good a trained model's samples are, judged against the data it was trained on.

- an exact mixture (``mog6``, ``rings``, a JSON mixture): every metric of ``metrics.evaluate``
  against fresh exact samples, each beside its Monte-Carlo floor;
- a 2-D point cloud (``figure8``, ``moons``, ...): energy distance, sliced W1 and MMD against fresh
  points of the toy's generator; the floors are those of the toy's kernel density estimate (a
  mixture whose bandwidth is small against the toy's scale, so its floors are the toy's to within
  the bandwidth);
- a data file (``.csv``, ``.npy``, ``.npz``): energy distance and MMD against its held-out points, each
  beside the same metric between real training points and those held-out points (``judge_against_points``);
- digits: a classifier trained on the real training digits (scikit-learn's ``MLPClassifier``)
  labels the samples; the report gives its mean confidence on the samples and on real held-out
  digits, the class histogram of the samples and its total variation from uniform, and the energy
  distance to held-out digits beside the energy distance between two real sets of the same sizes.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from ..core.registry import resolve_target
from ..core.targets import POINT_CLOUDS
from ..learning import is_data_file, load_dataset
from ..metrics import energy_distance, evaluate, median_heuristic, mmd

__all__ = ["judge_samples", "judge_against_points", "judge_against_file", "digits_classifier", "classify_digits"]


def judge_samples(samples: Tensor, data: str, *, n_train: int = 20000, data_seed: int = 0, seed: int = 0) -> dict:
    """Judge ``samples`` (N, D) against the data set named ``data`` (see the module docstring)."""
    x = samples.detach().to(torch.float64).cpu()
    if data == "digits":
        return digits_report(x, data_seed=data_seed)
    if is_data_file(data):
        ds = load_dataset(data, seed=data_seed)
        if x.shape[1] != ds.dim:
            raise ValueError(f"samples are {x.shape[1]}-D but the data in {data} is {ds.dim}-D")
        real = ds.to_data(ds.x.to(torch.float64))
        return judge_against_points(x, ds.reference(10**12).to(torch.float64), real, seed=seed)
    if data in POINT_CLOUDS:
        if x.shape[1] != 2:
            raise ValueError(f"samples are {x.shape[1]}-D but {data} is 2-D")
        ref = POINT_CLOUDS[data].sample(x.shape[0], torch.Generator().manual_seed(10_000 + seed))
        kde = POINT_CLOUDS[data].as_mixture()
        report = evaluate(x, kde, reference=ref, seed=seed, metrics=("energy", "sliced_w1", "mmd"))
        report.pop("mode_weights"), report.pop("target_weights")
        return report
    target = resolve_target(data)
    if x.shape[1] != target.dim:
        raise ValueError(f"samples are {x.shape[1]}-D but {data} is {target.dim}-D")
    return evaluate(x, target, seed=seed)


def judge_against_points(samples: Tensor, reference: Tensor, real: Tensor, *, seed: int = 0) -> dict:
    """Energy distance and ``MMD_b^2`` of ``samples`` (n, D) against ``reference`` points of the data
    (m, D), each beside its floor: the same metric between ``real`` points of the data (others than the
    reference; n of them, drawn with ``seed``, or all when there are fewer) and the reference.

    Both are V-statistics whose mean between two exact sets of sizes ``n, m`` is ``(1/n + 1/m)`` times a
    constant of the law (``metrics.distances``), so a floor measured with ``n'`` real points is brought to
    the samples' ``n`` exactly: ``floor(n) = floor(n') (1/n + 1/m) / (1/n' + 1/m)``. The MMD bandwidth is
    the median heuristic of the reference, the same for the value and the floor."""
    x, ref, real = (v.detach().to(torch.float64).cpu() for v in (samples, reference, real))
    n, m = x.shape[0], ref.shape[0]
    if n < 2 or m < 2 or real.shape[0] < 2:
        raise ValueError(f"need at least 2 samples, reference and real points, got {n}, {m}, {real.shape[0]}")
    pick = torch.randperm(real.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
    real = real[pick]
    scale = (1 / n + 1 / m) / (1 / real.shape[0] + 1 / m)
    h = median_heuristic(ref)
    report: dict = {"n": n, "reference": m, "real": int(real.shape[0])}
    for name, fn in (("energy", energy_distance), ("mmd", lambda a, b: mmd(a, b, bandwidth=h))):
        value, floor = fn(x, ref), scale * fn(real, ref)
        report[name] = {"value": value, "floor": floor, "ratio": value / floor if floor > 0 else None}
    return report


def judge_against_file(samples: Tensor, path: str, *, seed: int = 0) -> dict:
    """``judge_against_points`` with the points of a data file (``learning.read_points``) cut in two halves
    by a permutation seeded with ``seed``: the samples against the first half, the floor between the
    halves."""
    from ..learning import read_points

    points = torch.from_numpy(read_points(path)[0])
    if samples.shape[1] != points.shape[1]:
        raise ValueError(f"samples are {samples.shape[1]}-D but the points in {path} are {points.shape[1]}-D")
    if points.shape[0] < 4:
        raise ValueError(f"{path} has {points.shape[0]} points: at least 4 are needed (two halves of 2)")
    order = torch.randperm(points.shape[0], generator=torch.Generator().manual_seed(seed))
    half = points.shape[0] // 2
    return judge_against_points(samples, points[order[:half]], points[order[half:]], seed=seed)


@lru_cache(maxsize=4)
def digits_classifier(data_seed: int = 0):
    """An MLP classifier fitted to the training digits of ``load_dataset('digits', seed=data_seed)``
    (held-out digits are never seen). Deterministic: ``random_state=0``."""
    from sklearn.neural_network import MLPClassifier

    ds = load_dataset("digits", seed=data_seed)
    clf = MLPClassifier(hidden_layer_sizes=(128,), max_iter=600, random_state=0)
    clf.fit(ds.x.numpy().astype(np.float64), ds.labels.numpy())
    return clf


def classify_digits(samples: Tensor, data_seed: int = 0) -> np.ndarray:
    """Class probabilities (N, 10) of digit images (N, 64) in [-1, 1]; samples are clipped to the
    pixel range first (a sampler may overshoot it slightly)."""
    x = samples.detach().to(torch.float64).cpu().clamp(-1.0, 1.0).numpy()
    return digits_classifier(data_seed).predict_proba(x)


def digits_report(samples: Tensor, *, data_seed: int = 0, labels: Tensor | None = None) -> dict:
    """The classifier check of digit samples (module docstring); with ``labels`` (the classes asked
    for), also the share of samples the classifier puts in the asked class."""
    if samples.shape[1] != 64:
        raise ValueError(f"digit samples must be (N, 64), got {tuple(samples.shape)}")
    ds = load_dataset("digits", seed=data_seed)
    held = ds.reference(10**9)
    p_samples, p_real = classify_digits(samples, data_seed), classify_digits(held, data_seed)
    hist = np.bincount(p_samples.argmax(1), minlength=10) / p_samples.shape[0]
    n = min(samples.shape[0], held.shape[0])
    g = torch.Generator().manual_seed(data_seed)
    real_a = ds.x[torch.randperm(ds.x.shape[0], generator=g)[:n]].to(torch.float64)
    report = {
        "n": int(samples.shape[0]),
        "confidence": {"value": float(p_samples.max(1).mean()), "real": float(p_real.max(1).mean())},
        "real_accuracy": float((p_real.argmax(1) == ds.reference_labels(10**9).numpy()).mean()),
        "class_histogram": hist.tolist(),
        "class_tv_uniform": float(0.5 * np.abs(hist - 0.1).sum()),
        "energy": {
            "value": energy_distance(samples[:n].to(torch.float64).cpu(), held[:n].to(torch.float64)),
            "floor": energy_distance(real_a, held[:n].to(torch.float64)),
        },
    }
    report["energy"]["ratio"] = report["energy"]["value"] / report["energy"]["floor"]
    report["confidence"]["gap"] = report["confidence"]["real"] - report["confidence"]["value"]
    if labels is not None:
        report["asked_class_agreement"] = float((p_samples.argmax(1) == labels.cpu().numpy()).mean())
    return report


def score_error_profile(
    field, target, sigma_hats: Tensor | list[float], *, n: int = 4000, seed: int = 0
) -> list[dict]:
    """Relative error of a field's score against the exact one of ``target``, per noise level:

    .. math:: \\frac{E_{p_t} \\|s_\\theta(x, t) - \\nabla \\log p_t(x)\\|^2}{E_{p_t} \\|\\nabla \\log p_t(x)\\|^2}

    at the times of ``field.process`` where ``sigma / alpha`` takes each value of ``sigma_hats``
    (points drawn from the exact ``p_t``). Also the relative error of the denoiser ``x0hat``
    against the exact posterior mean. Returns one dict per level.
    """
    from ..core.fields import AnalyticField

    exact = AnalyticField(target, field.process)
    g = torch.Generator().manual_seed(seed)
    rows = []
    for sh in torch.as_tensor(sigma_hats, dtype=torch.float64):
        t = field.process.sigma_hat_to_t(sh.reshape(1))[0]
        x = target.noised(field.process, t).sample(n, g)
        with torch.no_grad():
            s_hat, x0_hat = field.score_and_denoise(x, t)
            s, x0 = exact.score_and_denoise(x, t)
        rows.append(
            {
                "sigma_hat": float(sh),
                "t": float(t),
                "score_rel_err": float(((s_hat - s) ** 2).sum(1).mean() / (s**2).sum(1).mean()),
                "x0_rel_err": float(((x0_hat - x0) ** 2).sum(1).mean() / (x0**2).sum(1).mean()),
            }
        )
    return rows
