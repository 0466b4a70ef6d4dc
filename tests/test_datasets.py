"""Synthetic datasets: shapes, dtypes, balance, seeding, splits, standardization, errors."""

import math

import pytest
import torch

from sgdtui.mlp.datasets import DATASETS, Dataset, DatasetError, make_dataset

CLASSIFICATION = ["moons", "circles", "spirals", "xor", "blobs"]


def test_registry_lists_every_dataset_with_a_description():
    assert set(DATASETS) == {"moons", "circles", "spirals", "xor", "blobs", "sine"}
    assert all(isinstance(text, str) and text for text in DATASETS.values())


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_classification_shapes_dtypes_and_split_sizes(name):
    data = make_dataset(name, n=500, seed=3)
    assert isinstance(data, Dataset)
    assert data.task == "classification"
    assert data.x_train.shape == (400, 2) and data.x_val.shape == (100, 2)
    assert data.y_train.shape == (400,) and data.y_val.shape == (100,)
    assert data.x_train.dtype == torch.float32 and data.x_val.dtype == torch.float32
    assert data.y_train.dtype == torch.int64 and data.y_val.dtype == torch.int64
    labels = torch.cat([data.y_train, data.y_val])
    assert set(labels.tolist()) == set(range(data.n_classes))
    assert data.in_dim == 2 and data.out_dim == data.n_classes


@pytest.mark.parametrize("name,classes", [("moons", 2), ("circles", 2), ("xor", 2), ("spirals", 2), ("blobs", 3)])
def test_default_class_counts_are_balanced(name, classes):
    data = make_dataset(name, n=1001, seed=0)
    assert data.n_classes == classes
    counts = torch.bincount(torch.cat([data.y_train, data.y_val]), minlength=classes)
    assert counts.sum() == 1001
    assert counts.max() - counts.min() <= 1


@pytest.mark.parametrize("name,k", [("spirals", 4), ("blobs", 5)])
def test_n_classes_is_configurable_for_spirals_and_blobs(name, k):
    data = make_dataset(name, n=600, n_classes=k)
    assert data.n_classes == k
    assert torch.bincount(torch.cat([data.y_train, data.y_val])).tolist() == [600 // k] * k


def test_sine_is_one_dimensional_regression_following_sin():
    data = make_dataset("sine", n=1000, noise=0.0, seed=1)
    assert data.task == "regression" and data.n_classes == 0
    assert data.x_train.shape == (800, 1) and data.y_train.shape == (800, 1)
    assert data.y_train.dtype == torch.float32
    assert data.out_dim == 1
    # Standardization rescales x only; y = sin(x) keeps its range and is ~0 at the ends (x = -pi).
    x_all = torch.cat([data.x_train, data.x_val])
    y_all = torch.cat([data.y_train, data.y_val])
    order = x_all[:, 0].argsort()
    x_sorted, y_sorted = x_all[order, 0], y_all[order, 0]
    assert y_sorted.max() == pytest.approx(1.0, abs=1e-3)
    assert y_sorted.min() == pytest.approx(-1.0, abs=1e-3)
    assert (y_sorted[x_sorted < x_sorted.quantile(0.05)].abs() < 0.35).all()  # near x = -pi


def test_noise_is_added_to_the_sine_target():
    clean = make_dataset("sine", noise=0.0, seed=2)
    noisy = make_dataset("sine", noise=0.3, seed=2)
    residual = noisy.y_train - clean.y_train
    assert 0.2 < residual.std().item() < 0.4


@pytest.mark.parametrize("name", list(DATASETS))
def test_same_seed_gives_bit_identical_tensors_and_different_seed_differs(name):
    first, again, other = make_dataset(name, seed=7), make_dataset(name, seed=7), make_dataset(name, seed=8)
    for field in ("x_train", "y_train", "x_val", "y_val"):
        assert torch.equal(getattr(first, field), getattr(again, field))
    assert not torch.equal(first.x_train, other.x_train)


def test_generation_does_not_touch_the_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    make_dataset("spirals", seed=5)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("name", list(DATASETS))
def test_inputs_are_standardized_on_the_train_split(name):
    data = make_dataset(name, n=800)
    assert torch.allclose(data.x_train.mean(dim=0), torch.zeros(data.in_dim), atol=1e-5)
    assert torch.allclose(data.x_train.std(dim=0), torch.ones(data.in_dim), atol=1e-5)
    assert data.x_val.abs().max() < 6


def test_val_fraction_controls_the_split_and_the_split_is_a_partition():
    data = make_dataset("moons", n=200, val_fraction=0.25, noise=0.0, seed=4)
    assert data.n_train == 150 and data.n_val == 50
    rows = torch.cat([data.x_train, data.x_val])
    assert torch.unique(rows, dim=0).shape[0] == 200  # no point is in both splits


def test_noise_controls_class_overlap_for_blobs():
    tight = make_dataset("blobs", noise=0.05)
    # Nearest-center classification in standardized space is perfect when blobs are tight.
    centers = torch.stack([tight.x_train[tight.y_train == k].mean(dim=0) for k in range(3)])
    predicted = torch.cdist(tight.x_val, centers).argmin(dim=1)
    assert torch.equal(predicted, tight.y_val)
    loose = make_dataset("blobs", noise=1.0)
    centers = torch.stack([loose.x_train[loose.y_train == k].mean(dim=0) for k in range(3)])
    assert (torch.cdist(loose.x_val, centers).argmin(dim=1) != loose.y_val).any()


def test_xor_labels_follow_the_quadrants_without_noise():
    data = make_dataset("xor", noise=0.0)
    # The sign of x1 * x2 is the label, up to the small shift the standardization adds.
    product = data.x_train[:, 0] * data.x_train[:, 1]
    agree = ((product > 0) == (data.y_train == 1)).float().mean()
    assert agree > 0.97


def test_unknown_name_suggests_the_closest():
    with pytest.raises(DatasetError, match=r"did you mean 'moons'"):
        make_dataset("moon")
    assert issubclass(DatasetError, ValueError)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"name": "moons", "n_classes": 3}, "n_classes"),
        ({"name": "spirals", "n_classes": 1}, "n_classes"),
        ({"name": "moons", "noise": -0.1}, "noise"),
        ({"name": "moons", "noise": math.nan}, "noise"),
        ({"name": "moons", "val_fraction": 1.0}, "val_fraction"),
        ({"name": "moons", "n": 1}, "too small"),
        ({"name": "moons", "n": 10.5}, "n must be an int"),
        ({"name": "sine", "n_classes": 2}, "n_classes"),
    ],
)
def test_bad_arguments_raise_a_clear_error(kwargs, match):
    name = kwargs.pop("name")
    with pytest.raises(DatasetError, match=match):
        make_dataset(name, **kwargs)
