"""Data loading: shapes, normalisation, split determinism, caching, and every way of finding the files —
exercised on small IDX / CIFAR files the tests write. No test touches the internet: the Debian folder and
torchvision's data folder point at empty temp dirs, and every call that could download passes download=False."""

import math
import pickle
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import distill_core.data.registry as registry
from data_files import write_cifar, write_idx, write_idx_set
from distill_core.data import DatasetNotFoundError, list_datasets, load_dataset, read_cifar_batches, read_idx

REAL_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def no_fallbacks(monkeypatch, tmp_path):
    """Point the Debian folder and torchvision's data folder at empty temp dirs; no env vars; empty cache."""
    monkeypatch.setattr(registry, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian")
    monkeypatch.setenv("DISTILL_GYM_DATA", str(tmp_path / "tv-data"))
    for var in ("DISTILL_GYM_FASHION_MNIST", "DISTILL_GYM_MNIST", "DISTILL_GYM_CIFAR10"):
        monkeypatch.delenv(var, raising=False)
    registry._read_cached.cache_clear()
    yield
    registry._read_cached.cache_clear()


# ----------------------------------------------------------------------------------------------- digits
def test_digits_shapes_normalisation_and_denormalize():
    data = load_dataset("digits", seed=0)
    assert data.input_shape == (1, 8, 8) and data.num_classes == 10 and data.classes[3] == "3"
    for x, y in ((data.x_train, data.y_train), (data.x_val, data.y_val), (data.x_test, data.y_test)):
        assert x.dtype == torch.float32 and y.dtype == torch.int64 and len(x) == len(y) and x.shape[1:] == (1, 8, 8)
    assert abs(data.x_train.mean().item()) < 0.05 and abs(data.x_train.std().item() - 1) < 0.05
    pixels = data.denormalize(data.x_test)
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    assert torch.allclose(pixels * 16, (pixels * 16).round(), atol=1e-4)  # back to the original 0..16 grid
    assert torch.allclose(data.normalize(pixels), data.x_test, atol=1e-5)
    assert data.mean == (0.3053,) and data.std == (0.3760,)
    line = data.describe()
    assert "\n" not in line and "digits" in line and "(1, 8, 8)" in line and "load_digits" in line


def test_digits_split_sizes_fixed_test_split_and_seeded_validation():
    a, b, c = (load_dataset("digits", seed=s) for s in (0, 0, 1))
    assert len(a.x_train) + len(a.x_val) + len(a.x_test) == 1797
    assert 0.19 < len(a.x_test) / 1797 < 0.21 and 0.09 < len(a.x_val) / (1797 - len(a.x_test)) < 0.11
    assert torch.equal(a.x_test, c.x_test) and torch.equal(a.y_test, c.y_test)  # independent of the seed
    assert torch.equal(a.x_val, b.x_val) and torch.equal(a.x_train, b.x_train) and torch.equal(a.y_train, b.y_train)
    assert not torch.equal(a.x_val, c.x_val)
    assert set(a.y_val.tolist()) == set(range(10)) and set(a.y_test.tolist()) == set(range(10))  # stratified
    rows = [{tuple(r) for r in x.flatten(1).tolist()} for x in (a.x_train, a.x_val, a.x_test)]
    assert not rows[0] & rows[1] and not rows[0] & rows[2] and not rows[1] & rows[2]  # disjoint


def test_validation_indices_are_a_disjoint_seeded_partition():
    y = np.arange(1000) % 7
    for stratify in (False, True):
        train, val = registry._split(y, 0.25, 3, stratify)
        assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(1000)) and 240 < len(val) < 260
        again, _ = registry._split(y, 0.25, 3, stratify)
        other, _ = registry._split(y, 0.25, 4, stratify)
        assert np.array_equal(train, again) and not np.array_equal(train, other)


def test_val_fraction_zero_and_bad_values():
    data = load_dataset("digits", val_fraction=0.0)
    assert len(data.x_val) == 0 and data.x_val.shape[1:] == (1, 8, 8)
    for bad in (1.0, -0.1, math.nan):
        with pytest.raises(ValueError, match="val_fraction must be in"):
            load_dataset("digits", val_fraction=bad)


def test_unknown_name_lists_the_known_ones():
    assert {"digits", "mnist1d", "fashion_mnist", "mnist", "cifar10"} <= set(list_datasets())
    with pytest.raises(ValueError, match="unknown data set 'imagenet'.*cifar10.*digits.*fashion_mnist.*mnist1d"):
        load_dataset("imagenet")


def test_returned_tensors_are_fresh_and_the_cache_is_reused(monkeypatch):
    calls = []
    read = registry._SOURCES["digits"].read
    monkeypatch.setitem(registry._SOURCES, "digits", registry._Source(lambda f: calls.append(1) or read(f), None))
    first = load_dataset("digits")
    first.x_train.zero_()
    first.y_test.fill_(-1)
    second = load_dataset("digits")
    assert len(calls) == 1  # decoded once
    assert second.x_train.abs().sum() > 0 and second.y_test.min() >= 0


# ---------------------------------------------------------------------------------------------- mnist1d
def test_mnist1d_is_generated_locally_and_leaves_global_rngs_alone():
    np.random.seed(123)
    random.seed(123)
    expected = (np.random.rand(), random.random())
    np.random.seed(123)
    random.seed(123)
    data = load_dataset("mnist1d", seed=0)
    assert (np.random.rand(), random.random()) == expected
    assert data.input_shape == (1, 40) and data.num_classes == 10
    assert (len(data.x_train) + len(data.x_val), len(data.x_test)) == (4000, 1000)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert abs(data.x_train.mean().item()) < 0.05 and abs(data.x_train.std().item() - 1) < 0.05


def test_mnist1d_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"pip install 'distill-gym\[mnist1d\]'"):
        load_dataset("mnist1d")


# --------------------------------------------------------------------------------------- Fashion-MNIST
@pytest.mark.parametrize("gz", [False, True])
def test_fashion_mnist_from_a_folder_argument(tmp_path, gz):
    folder = write_idx_set(tmp_path / "fm", gz=gz)
    data = load_dataset("fashion_mnist", root=folder, download=False, val_fraction=0.2)
    assert data.input_shape == (1, 28, 28) and data.classes[0] == "T-shirt/top" and str(folder) in data.source
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (40, 10, 20)
    assert data.mean == (0.2860,) and data.std == (0.3530,)
    pixels = data.denormalize(data.x_test)
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    raw = read_idx(next(folder.glob("t10k-images*")))
    assert torch.allclose(pixels[:, 0] * 255, torch.from_numpy(raw).float(), atol=1e-3)
    assert torch.equal(data.y_test, torch.arange(20) % 10)


def test_fashion_mnist_search_order_root_env_debian_torchvision_folder(tmp_path, monkeypatch):
    def n_train(**kwargs):
        return len(load_dataset("fashion_mnist", download=False, val_fraction=0, **kwargs).x_train)

    monkeypatch.setattr(registry, "DEBIAN_FASHION_MNIST", write_idx_set(tmp_path / "debian", n_train=40, gz=True))
    write_idx_set(tmp_path / "tv-data" / "FashionMNIST" / "raw", n_train=12)
    assert n_train() == 40  # Debian before torchvision's folder
    monkeypatch.setenv("DISTILL_GYM_FASHION_MNIST", str(write_idx_set(tmp_path / "env", n_train=30)))
    assert n_train() == 30  # env var before Debian (and the cache does not hide the change)
    assert n_train(root=write_idx_set(tmp_path / "arg", n_train=20)) == 20  # argument before env var
    monkeypatch.delenv("DISTILL_GYM_FASHION_MNIST")
    monkeypatch.setattr(registry, "DEBIAN_FASHION_MNIST", tmp_path / "gone")
    assert n_train() == 12  # torchvision's raw folder, read without downloading
    assert n_train(root=tmp_path / "tv-data") == 12  # a root in torchvision's layout works too


def test_an_explicit_folder_without_the_files_is_an_error_not_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "DEBIAN_FASHION_MNIST", write_idx_set(tmp_path / "debian"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="empty .from the root argument. lacks train-images-idx3-ubyte"):
        load_dataset("fashion_mnist", root=tmp_path / "empty", download=False)
    monkeypatch.setenv("DISTILL_GYM_FASHION_MNIST", str(tmp_path / "empty"))
    with pytest.raises(DatasetNotFoundError, match=r"from \$DISTILL_GYM_FASHION_MNIST"):
        load_dataset("fashion_mnist", download=False)


def test_missing_fashion_mnist_names_all_three_ways():
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("fashion_mnist", download=False)
    message = str(info.value)
    assert "root=" in message and "DISTILL_GYM_FASHION_MNIST" in message
    assert "apt-get install dataset-fashion-mnist" in message and "make fashion-mnist" in message
    assert "torchvision download" in message and "network" in message
    assert isinstance(info.value, FileNotFoundError)


def test_file_replaced_on_disk_is_read_again(tmp_path):
    folder = write_idx_set(tmp_path / "fm", n_train=30)
    assert len(load_dataset("fashion_mnist", root=folder, download=False, val_fraction=0).x_train) == 30
    write_idx_set(folder, n_train=35)
    assert len(load_dataset("fashion_mnist", root=folder, download=False, val_fraction=0).x_train) == 35


# ----------------------------------------------------------------------------------------- corrupt IDX
@pytest.mark.parametrize("gz", [False, True])
def test_truncated_idx_file_is_named_with_the_fix(tmp_path, gz):
    folder = write_idx_set(tmp_path / "bad", gz=gz)
    path = folder / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.*(truncated|corrupt).*delete .* download it again"):
        load_dataset("fashion_mnist", root=folder, download=False)


def test_idx_reader_rejects_foreign_files_and_inconsistent_sets(tmp_path):
    (tmp_path / "junk").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="IDX magic number"):
        read_idx(tmp_path / "junk")
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "ok", array)
    assert np.array_equal(read_idx(tmp_path / "ok"), array)
    folder = write_idx_set(tmp_path / "mixed")
    write_idx(folder / "train-labels-idx1-ubyte", np.arange(7) % 10)
    with pytest.raises(ValueError, match="image and label counts differ"):
        load_dataset("mnist", root=folder, download=False)
    write_idx(folder / "train-labels-idx1-ubyte", np.full(50, 12))
    with pytest.raises(ValueError, match="labels span 12..12 but there are 10 classes"):
        load_dataset("mnist", root=folder, download=False)


# ------------------------------------------------------------------------------------------------ MNIST
def test_mnist_from_a_folder_env_and_missing(tmp_path, monkeypatch):
    data = load_dataset("mnist", root=write_idx_set(tmp_path / "mnist", gz=True), download=False)
    assert data.mean == (0.1307,) and data.std == (0.3081,) and len(data.x_test) == 20 and data.classes[7] == "7"
    assert len(data.x_train) + len(data.x_val) == 50 and data.input_shape == (1, 28, 28)
    monkeypatch.setenv("DISTILL_GYM_MNIST", str(write_idx_set(tmp_path / "env", n_train=30)))
    assert len(load_dataset("mnist", download=False, val_fraction=0).x_train) == 30
    monkeypatch.delenv("DISTILL_GYM_MNIST")
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("mnist", download=False)
    assert "DISTILL_GYM_MNIST" in str(info.value) and "torchvision download" in str(info.value)


# --------------------------------------------------------------------------------------------- CIFAR-10
def test_cifar10_from_python_batches_parent_or_folder(tmp_path, monkeypatch):
    folder = write_cifar(tmp_path / "c" / "cifar-10-batches-py")
    monkeypatch.setenv("DISTILL_GYM_CIFAR10", str(tmp_path / "c"))
    data = load_dataset("cifar10", download=False, val_fraction=0)
    assert data.input_shape == (3, 32, 32) and len(data.x_train) == 30 and len(data.x_test) == 6
    assert data.classes[3] == "class3" and data.mean == (0.4914, 0.4822, 0.4465)
    x_train, y_train, x_test, y_test, classes = read_cifar_batches(folder)
    assert x_train.dtype == np.uint8 and x_train.shape == (30, 3, 32, 32) and y_test.tolist() == list(range(6))
    pixels = data.denormalize(data.x_test)
    assert torch.allclose(pixels * 255, torch.from_numpy(x_test).float(), atol=1e-3)
    monkeypatch.delenv("DISTILL_GYM_CIFAR10")
    assert len(load_dataset("cifar10", root=folder, download=False, val_fraction=0.5).x_val) == 15


def test_cifar10_from_the_data_folder_without_downloading(tmp_path):
    write_cifar(tmp_path / "tv-data" / "cifar-10-batches-py")
    assert len(load_dataset("cifar10", download=False).x_test) == 6


def test_cifar10_missing_file_missing_everything_and_malicious(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("cifar10", download=False)
    assert "DISTILL_GYM_CIFAR10" in str(info.value) and "root=" in str(info.value)
    assert "cifar-10-python.tar.gz" in str(info.value) and "torchvision download" in str(info.value)
    folder = write_cifar(tmp_path / "partial")
    (folder / "data_batch_3").unlink()
    with pytest.raises(DatasetNotFoundError, match="data_batch_3"):
        load_dataset("cifar10", root=folder, download=False)
    folder = write_cifar(tmp_path / "evil")
    (folder / "test_batch").write_bytes(pickle.dumps({"data": np.zeros(1), "labels": print}))
    with pytest.raises(ValueError, match="test_batch .*refusing to load the global builtins.print"):
        load_dataset("cifar10", root=folder, download=False)
    folder = write_cifar(tmp_path / "truncated")
    (folder / "data_batch_1").write_bytes((folder / "data_batch_1").read_bytes()[:-50])
    with pytest.raises(ValueError, match="data_batch_1 is truncated, corrupt .*download CIFAR-10 again"):
        load_dataset("cifar10", root=folder, download=False)


# ----------------------------------------------------------------------------- the real thing (local disk)
@pytest.mark.skipif(not REAL_FASHION_MNIST.is_dir(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist_from_the_debian_package(monkeypatch):
    monkeypatch.setattr(registry, "DEBIAN_FASHION_MNIST", REAL_FASHION_MNIST)
    data = load_dataset("fashion_mnist", download=False)
    assert len(data.x_train) + len(data.x_val) == 60000 and len(data.x_test) == 10000 and len(data.x_val) == 6000
    assert str(REAL_FASHION_MNIST) in data.source
    assert abs(data.x_train.mean().item()) < 0.05 and abs(data.x_train.std().item() - 1) < 0.05
    assert torch.bincount(data.y_test).tolist() == [1000] * 10
