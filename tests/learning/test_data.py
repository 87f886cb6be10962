import json

import pytest
import torch

from scoredyn.core.targets import mog6
from scoredyn.learning import DATASETS, Dataset, load_dataset


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits", seed=0)


@pytest.mark.parametrize("name", [d for d in DATASETS if d != "digits"])
def test_shapes_and_dtypes(name):
    ds = load_dataset(name, n=300, seed=1)
    assert ds.name == name and ds.x.dtype == torch.float32
    assert ds.x.shape == (300, 10 if name == "mog10" else 2)
    assert torch.isfinite(ds.x).all()
    ref = ds.reference(50, seed=0)
    assert ref.shape == (50, ds.dim) and ref.dtype == torch.float32
    mean, cov = ds.moments()
    assert mean.dtype == cov.dtype == torch.float64 and cov.shape == (ds.dim, ds.dim)
    assert ds.image_shape is None
    if name in ("figure8", "moons", "swissroll", "checkerboard"):
        assert ds.labels is None and ds.num_classes == 0 and ds.target is None
        assert ds.reference_labels(50, seed=0) is None
    else:
        assert ds.labels.dtype == torch.int64 and ds.labels.shape == (300,)
        assert ds.num_classes == ds.target.n_components
        assert 0 <= int(ds.labels.min()) and int(ds.labels.max()) < ds.num_classes
        assert ds.reference_labels(50, seed=0).shape == (50,)


def test_builtin_names():
    assert set(DATASETS) == {"mog6", "rings", "offcentre", "mog10", "figure8", "moons", "swissroll",
                             "checkerboard", "digits"}


def test_digits(digits):
    x, y = digits.x, digits.labels
    held_x, held_y = digits.held_out
    # 1797 images, 20% held out: sklearn takes ceil(0.2 * 1797) = 360 for the held-out split
    assert x.shape == (1437, 64) and held_x.shape == (360, 64) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and digits.num_classes == 10 and digits.image_shape == (1, 8, 8)
    # pixels take every value 0..16 somewhere, so the scaled range is exactly [-1, 1]
    both = torch.cat([x, held_x])
    assert float(both.min()) == -1.0 and float(both.max()) == 1.0
    assert torch.equal(torch.unique(both * 8 + 8), torch.arange(17, dtype=torch.float32))
    # stratified: each class's held-out share is 20% up to rounding (classes have 174..183 images)
    train_counts, held_counts = torch.bincount(y, minlength=10), torch.bincount(held_y, minlength=10)
    assert int(train_counts.sum() + held_counts.sum()) == 1797
    share = held_counts / (train_counts + held_counts)
    assert float((share - 0.2).abs().max()) < 1.5 / 174
    # training and held-out images are disjoint rows of the same 1797 (no image in both by index)
    assert digits.reference(10_000, seed=3).shape == (360, 64)
    assert torch.equal(digits.reference(10_000, seed=3), held_x)
    assert torch.equal(digits.reference_labels(10_000, seed=3), held_y)


def test_digits_reference_subset(digits):
    held_x, held_y = digits.held_out
    a, b = digits.reference(100, seed=0), digits.reference(100, seed=1)
    assert a.shape == (100, 64) and not torch.equal(a, b)
    assert torch.equal(a, digits.reference(100, seed=0))
    # the labels belong to the same rows: each reference row is a held-out row with that label
    la = digits.reference_labels(100, seed=0)
    same_image = (a[:, None, :] == held_x[None, :, :]).all(-1)  # (100, 360)
    same_label = la[:, None] == held_y[None, :]
    assert bool((same_image & same_label).any(1).all())


def test_digits_seeded_split(digits):
    again, other = load_dataset("digits", seed=0), load_dataset("digits", seed=1)
    assert torch.equal(again.x, digits.x) and torch.equal(again.labels, digits.labels)
    assert not torch.equal(other.x, digits.x)
    # n is ignored for digits
    assert load_dataset("digits", n=5, seed=0).x.shape == (1437, 64)


@pytest.mark.parametrize("name", ["mog6", "moons"])
def test_seeded(name):
    a, b, c = load_dataset(name, 500, seed=0), load_dataset(name, 500, seed=0), load_dataset(name, 500, seed=1)
    assert torch.equal(a.x, b.x) and not torch.equal(a.x, c.x)
    assert torch.equal(a.reference(100, seed=2), b.reference(100, seed=2))
    assert not torch.equal(a.reference(100, seed=2), a.reference(100, seed=3))


@pytest.mark.parametrize("name", ["mog6", "moons"])
def test_reference_is_not_training_data(name):
    ds = load_dataset(name, 1000, seed=0)
    ref = ds.reference(1000, seed=0)  # the same seed as training must still give other points
    assert ref.shape == ds.x.shape
    assert not torch.isin(ref[:, 0], ds.x[:, 0]).any()


def test_mixture_labels_are_the_components():
    ds = load_dataset("mog6", 4000, seed=0)
    # mog6's components are several standard deviations apart, so the most responsible component
    # is the one that drew the point for all but a few percent of the points
    best = ds.target.responsibilities(ds.x).argmax(1)
    agree = float((best == ds.labels).double().mean())
    assert agree > 0.95
    # the label frequencies are the weights: binomial standard error sqrt(w(1-w)/n) <= 0.008
    freq = torch.bincount(ds.labels, minlength=6).double() / 4000
    assert torch.allclose(freq, ds.target.weights, atol=4 * 0.008)
    # reference labels too
    ref, lab = ds.reference(4000, seed=0), ds.reference_labels(4000, seed=0)
    assert float((ds.target.responsibilities(ref).argmax(1) == lab).double().mean()) > 0.95


@pytest.mark.parametrize("name", ["mog6", "mog10"])
def test_mixture_mean(name):
    n = 20000
    ds = load_dataset(name, n, seed=5)
    mean, cov = ds.moments()
    exact_mean, exact_cov = ds.target.mean(), ds.target.covariance()
    # sample mean within 4 standard errors sqrt(diag C / n) per coordinate
    se = (torch.diagonal(exact_cov) / n).sqrt()
    assert bool(((mean - exact_mean).abs() < 4 * se).all())
    # sample covariance within 10% of the exact one on the diagonal (relative s.e. ~ sqrt(2/n) ~ 1%
    # for a Gaussian; a heavy mixture has larger kurtosis, still far below 10%)
    assert torch.allclose(torch.diagonal(cov), torch.diagonal(exact_cov), rtol=0.1)


def test_moments_match_torch():
    ds = load_dataset("moons", 200, seed=0)
    mean, cov = ds.moments()
    x = ds.x.double()
    assert torch.allclose(mean, x.mean(0))
    assert torch.allclose(cov, (x - x.mean(0)).T @ (x - x.mean(0)) / 199)


def test_json_mixture(tmp_path):
    path = tmp_path / "m.json"
    mog6().save(path)
    ds = load_dataset(str(path), 300, seed=0)
    ref = load_dataset("mog6", 300, seed=0)
    assert ds.name == "mog6" and ds.num_classes == 6
    assert torch.equal(ds.x, ref.x) and torch.equal(ds.labels, ref.labels)


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="mog6.*digits"):
        load_dataset("nope")
    with pytest.raises(ValueError, match="n must be >= 1"):
        load_dataset("mog6", n=0)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_dataset(str(bad))
    bad.write_text(json.dumps({"weights": [1.0]}))
    with pytest.raises(ValueError, match="missing means, covs"):
        load_dataset(str(bad))
    with pytest.raises(ValueError, match="n must be >= 1"):
        load_dataset("moons", 10).reference(0, seed=0)
