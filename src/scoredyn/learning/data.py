"""Training sets for learned score fields: exact mixtures, 2-D point clouds, 8x8 digits, and a user's
points from a file (``datafiles.py``: ``.csv``, ``.npy``, ``.npz``).

``load_dataset(name, n, seed)`` returns a ``Dataset``: the training points ``x`` (float32), labels
where the data has them, the exact target when the data is an exact Gaussian mixture, and a
``reference(n, seed)`` source of fresh (held-out) samples of the same distribution for evaluation.

Reference draws never reuse the training draws: for mixtures and point clouds they come from a
generator seeded with ``(seed + REFERENCE_SEED_OFFSET) mod 2^32`` (training uses ``seed`` itself), and
for digits and data files they come from the held-out split. (The offset is taken mod 2^32 because torch's CPU
generator only uses the low 32 bits of a seed: ``manual_seed(s)`` and ``manual_seed(s + 2**32)`` give
the same stream.)

A data file is split into training and held-out points (``FILE_HELD_OUT``, a permutation seeded by
``seed``), and standardized per coordinate with the training part's mean and standard deviation: a
network sees unit-scale inputs whatever the file's units. ``Dataset.x`` holds the standardized
training points; ``Dataset.to_data`` undoes the map, and ``reference`` returns points in the file's
own coordinates, as ``sampling.sample`` returns a trained model's samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from ..core.registry import EXACT_TARGETS
from ..core.targets import POINT_CLOUDS, GaussianMixture, PointCloud
from ..util.files import file_sha256
from .datafiles import DATA_SUFFIXES, is_data_file, read_points

__all__ = ["DATASETS", "Dataset", "load_dataset"]

DATASETS: tuple[str, ...] = (*EXACT_TARGETS, *POINT_CLOUDS, "digits")

# reference seeds are shifted so reference(n, s) never repeats the training draw of load_dataset(..., seed=s)
REFERENCE_SEED_OFFSET = 0x9E3779B9

DIGITS_HELD_OUT = 0.2
FILE_HELD_OUT = 0.2  # share of a data file's points held out for evaluation (at least 2 points)


@dataclass
class Dataset:
    """A training set and where to get fresh samples of its distribution.

    Attributes:
        x: ``(N, D)`` float32 training points.
        labels: ``(N,)`` int64 class labels, or ``None`` when unlabelled.
        num_classes: number of classes (0 when unlabelled).
        name: dataset name (the mixture's name for a JSON file).
        target: the exact ``GaussianMixture`` when the data is one, else ``None``.
        image_shape: ``(C, H, W)`` when the points are flattened images, else ``None``.
        cloud: the ``PointCloud`` the points were drawn from, else ``None``.
        held_out: the held-out ``(x, labels)`` split (digits, data files; in the coordinates of ``x``),
            else ``None``.
        standardization: ``(mean, std)`` (D,) float64 of a data file's map ``x = (raw - mean) / std``,
            else ``None``.
        source: a data file's path, SHA-256 and split sizes (recorded in ``run.json``), else ``None``.
    """

    x: Tensor
    labels: Tensor | None
    num_classes: int
    name: str
    target: GaussianMixture | None = None
    image_shape: tuple[int, int, int] | None = None
    cloud: PointCloud | None = field(default=None, repr=False)
    held_out: tuple[Tensor, Tensor | None] | None = field(default=None, repr=False)
    standardization: tuple[Tensor, Tensor] | None = field(default=None, repr=False)
    source: dict | None = field(default=None, repr=False)

    @property
    def dim(self) -> int:
        return self.x.shape[1]

    def to_data(self, x: Tensor) -> Tensor:
        """Points in the training coordinates of ``x`` mapped to the data's own (a data file's
        standardization undone: ``mean + std * x``); the identity for every other data set."""
        if self.standardization is None:
            return x
        mean, std = (v.to(dtype=x.dtype, device=x.device) for v in self.standardization)
        return mean + std * x

    def reference(self, n: int, seed: int = 0) -> Tensor:
        """``(n', D)`` float32 samples of the data distribution that are not training points, in the
        data's own coordinates (``to_data``).

        Mixtures: ``target.sample``; point clouds: ``PointCloud.sample``; both with a generator seeded
        ``(seed + REFERENCE_SEED_OFFSET) mod 2^32`` (``n' = n``). Digits and data files: the held-out
        split, all of it when ``n`` is at least its size, else the first ``n`` of a permutation seeded by
        ``seed``.
        """
        return self.to_data(self._draw(n, seed)[0])

    def reference_labels(self, n: int, seed: int = 0) -> Tensor | None:
        """The ``(n',)`` int64 labels of ``reference(n, seed)`` (mixture components, digit classes),
        or ``None`` for unlabelled data."""
        return self._draw(n, seed)[1]

    def _draw(self, n: int, seed: int) -> tuple[Tensor, Tensor | None]:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if self.held_out is not None:
            held_x, held_y = self.held_out
            if n >= held_x.shape[0]:
                return held_x, held_y
            pick = torch.randperm(held_x.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
            return held_x[pick], None if held_y is None else held_y[pick]
        g = torch.Generator().manual_seed((seed + REFERENCE_SEED_OFFSET) % 2**32)
        if self.target is not None:
            x, k = self.target.sample(n, g, return_labels=True)
            return x.float(), k
        if self.cloud is not None:
            return self.cloud.sample(n, g).float(), None
        raise ValueError(f"dataset {self.name!r} has no reference source")

    def moments(self) -> tuple[Tensor, Tensor]:
        """Mean ``(D,)`` and covariance ``(D, D)`` (unbiased, ``1/(N-1)``) of the training points, float64."""
        x = self.x.to(torch.float64)
        return x.mean(0), torch.atleast_2d(torch.cov(x.T, correction=1 if x.shape[0] > 1 else 0))


def load_dataset(name_or_json: str, n: int = 20000, seed: int = 0) -> Dataset:
    """The training set ``name_or_json`` with ``n`` points drawn with ``seed``.

    Args:
        name_or_json: one of ``DATASETS``, a path to a mixture ``.json`` file, or a data file
            (``.csv``, ``.npy``, ``.npz``; see the module docstring: split and standardized).
            Exact mixtures (``mog6``, ``rings``, ``offcentre``, ``mog10``, JSON files) are labelled
            by the component each point was drawn from; point clouds (``figure8``, ``moons``,
            ``swissroll``, ``checkerboard``) are unlabelled; ``digits`` is scikit-learn's 8x8 digits
            (1797 images), pixels ``0..16`` mapped to ``[-1, 1]`` by ``x / 8 - 1``, labels ``0..9``,
            split 80/20 into train / held-out, stratified by label.
        n: number of training points; ignored for ``digits`` (its training split is fixed at 1437) and
            for data files (every point of the file is used).
        seed: seed of the draw (of the split, for ``digits`` and data files).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if name_or_json == "digits":
        return _digits(seed)
    if is_data_file(name_or_json):
        return _file(Path(name_or_json), seed)
    if name_or_json in EXACT_TARGETS:
        return _mixture(EXACT_TARGETS[name_or_json](), name_or_json, n, seed)
    if name_or_json in POINT_CLOUDS:
        cloud = POINT_CLOUDS[name_or_json]
        x = cloud.sample(n, torch.Generator().manual_seed(seed)).float()
        return Dataset(x, None, 0, name_or_json, cloud=cloud)
    path = Path(name_or_json)
    if path.suffix.lower() == ".json" or path.exists():
        target = GaussianMixture.load(path)
        return _mixture(target, target.name, n, seed)
    raise ValueError(
        f"unknown dataset {name_or_json!r}: use one of {', '.join(DATASETS)}, a mixture .json file or a data file "
        f"({', '.join(DATA_SUFFIXES)})"
    )


def _mixture(target: GaussianMixture, name: str, n: int, seed: int) -> Dataset:
    x, labels = target.sample(n, torch.Generator().manual_seed(seed), return_labels=True)
    return Dataset(x.float(), labels, target.n_components, name, target=target)


def _digits(seed: int) -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    pixels = torch.as_tensor(bunch.data, dtype=torch.float32) / 8.0 - 1.0  # 0..16 -> [-1, 1]
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    idx_train, idx_held = train_test_split(
        torch.arange(len(labels)).numpy(), test_size=DIGITS_HELD_OUT, random_state=seed, stratify=labels.numpy()
    )
    idx_train, idx_held = torch.as_tensor(idx_train), torch.as_tensor(idx_held)
    return Dataset(
        pixels[idx_train],
        labels[idx_train],
        10,
        "digits",
        image_shape=(1, 8, 8),
        held_out=(pixels[idx_held], labels[idx_held]),
    )


def _file(path: Path, seed: int) -> Dataset:
    """A data file split ``1 - FILE_HELD_OUT : FILE_HELD_OUT`` by a permutation seeded with ``seed``, and
    standardized with the training part's mean and standard deviation (a constant column keeps scale 1)."""
    raw, labels = read_points(path)
    n = raw.shape[0]
    held = max(2, round(FILE_HELD_OUT * n))
    if n - held < 2:
        raise ValueError(f"{path} has {n} points: at least 4 are needed (2 to train on, 2 held out)")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    train_idx, held_idx = order[held:], order[:held]
    x = torch.from_numpy(raw)
    mean = x[train_idx].mean(0)
    std = x[train_idx].std(0, correction=1)
    std = torch.where(std > 0, std, torch.ones_like(std))
    z = ((x - mean) / std).float()
    y = None if labels is None else torch.from_numpy(labels)
    source = {"path": str(path), "sha256": file_sha256(path), "points": n, "train": n - held, "held_out": held,
              "standardize": {"mean": mean.tolist(), "std": std.tolist()}}  # fmt: skip
    return Dataset(
        z[train_idx], None if y is None else y[train_idx], 0 if y is None else int(y.max()) + 1, str(path),
        held_out=(z[held_idx], None if y is None else y[held_idx]), standardization=(mean, std), source=source,
    )  # fmt: skip
