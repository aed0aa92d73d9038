"""Data loading: shapes, normalisation, split determinism, and every way of finding the files —
exercised on small IDX / CIFAR files the tests write (no test touches the internet)."""

import gzip
import pickle

import numpy as np
import pytest
import torch

import distill_core.data.registry as registry
from distill_core.data import DatasetNotFoundError, list_datasets, load_dataset, read_idx


def write_idx(path, array, gz=False):
    codes = {np.dtype(np.uint8): 0x08}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


def write_idx_set(folder, n_train=50, n_test=20, gz=False, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8), gz)
    write_idx(folder / f"train-labels-idx1-ubyte{suffix}", (np.arange(n_train) % 10).astype(np.uint8), gz)
    write_idx(folder / f"t10k-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8), gz)
    write_idx(folder / f"t10k-labels-idx1-ubyte{suffix}", (np.arange(n_test) % 10).astype(np.uint8), gz)
    return folder


@pytest.fixture(autouse=True)
def no_fallbacks(monkeypatch, tmp_path):
    """Point the Debian path and torchvision's download folder at empty temp dirs; clear the cache."""
    monkeypatch.setattr(registry, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian")
    monkeypatch.setenv("DISTILL_GYM_DATA", str(tmp_path / "tv-data"))
    for var in ("DISTILL_GYM_FASHION_MNIST", "DISTILL_GYM_MNIST", "DISTILL_GYM_CIFAR10"):
        monkeypatch.delenv(var, raising=False)
    registry._load_raw.cache_clear()
    yield
    registry._load_raw.cache_clear()


def test_digits_shapes_normalisation_and_splits():
    data = load_dataset("digits", seed=0)
    assert data.input_shape == (1, 8, 8) and data.num_classes == 10
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 1797
    assert abs(data.x_train.mean().item()) < 0.05 and abs(data.x_train.std().item() - 1) < 0.05
    pixels = data.denormalize(data.x_test)
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    assert torch.allclose(data.normalize(pixels), data.x_test, atol=1e-5)
    assert set(data.y_val.tolist()) == set(range(10))  # stratified


def test_test_split_is_fixed_and_validation_follows_the_seed():
    a, b, c = (load_dataset("digits", seed=s) for s in (0, 0, 1))
    assert torch.equal(a.x_test, c.x_test)
    assert torch.equal(a.x_val, b.x_val) and torch.equal(a.y_train, b.y_train)
    assert not torch.equal(a.x_val, c.x_val)
    train_rows = {tuple(r) for r in a.x_train.flatten(1).tolist()}
    assert not any(tuple(r) in train_rows for r in a.x_val.flatten(1).tolist())  # disjoint


def test_val_fraction_zero_and_bad_values():
    assert len(load_dataset("digits", val_fraction=0.0).x_val) == 0
    with pytest.raises(ValueError, match="val_fraction must be in"):
        load_dataset("digits", val_fraction=1.0)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown data set 'imagenet'.*digits.*fashion_mnist"):
        load_dataset("imagenet")
    assert {"digits", "mnist1d", "fashion_mnist", "mnist", "cifar10"} <= set(list_datasets())


def test_mnist1d_is_generated_locally_and_leaves_numpy_alone():
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    data = load_dataset("mnist1d")
    assert np.random.rand() == expected
    assert data.input_shape == (1, 40) and len(data.x_test) == 1000


@pytest.mark.parametrize("gz", [False, True])
def test_fashion_mnist_from_a_folder_argument(tmp_path, gz):
    folder = write_idx_set(tmp_path / "fm", gz=gz)
    data = load_dataset("fashion_mnist", root=folder, download=False, val_fraction=0.2)
    assert data.input_shape == (1, 28, 28)
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (40, 10, 20)
    assert data.classes[0] == "T-shirt/top" and str(folder) in data.source


def test_fashion_mnist_from_the_environment_and_from_debian(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILL_GYM_FASHION_MNIST", str(write_idx_set(tmp_path / "env", n_train=30)))
    assert len(load_dataset("fashion_mnist", download=False, val_fraction=0).x_train) == 30
    monkeypatch.delenv("DISTILL_GYM_FASHION_MNIST")
    registry._load_raw.cache_clear()
    monkeypatch.setattr(registry, "DEBIAN_FASHION_MNIST", write_idx_set(tmp_path / "debian", n_train=40, gz=True))
    assert len(load_dataset("fashion_mnist", download=False, val_fraction=0).x_train) == 40


def test_missing_fashion_mnist_names_all_three_ways():
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("fashion_mnist", download=False)
    message = str(info.value)
    assert "DISTILL_GYM_FASHION_MNIST" in message and "apt-get install dataset-fashion-mnist" in message
    assert "torchvision download" in message


def test_mnist_from_a_folder_and_missing(tmp_path):
    data = load_dataset("mnist", root=write_idx_set(tmp_path / "mnist"), download=False)
    assert data.mean == (0.1307,) and len(data.x_test) == 20
    registry._load_raw.cache_clear()
    with pytest.raises(DatasetNotFoundError, match="DISTILL_GYM_MNIST"):
        load_dataset("mnist", root=tmp_path / "empty", download=False)


def test_truncated_idx_file_is_named(tmp_path):
    folder = write_idx_set(tmp_path / "bad")
    path = folder / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte has .* bytes .* truncated or corrupt; delete"):
        load_dataset("fashion_mnist", root=folder, download=False)
    (folder / "junk").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="IDX magic number"):
        read_idx(folder / "junk")


def write_cifar(folder, per_batch=6):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8), "labels": list(range(per_batch))}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"class{i}" for i in range(10)]}))


def test_cifar10_from_python_batches(tmp_path, monkeypatch):
    write_cifar(tmp_path / "c" / "cifar-10-batches-py")
    monkeypatch.setenv("DISTILL_GYM_CIFAR10", str(tmp_path / "c"))
    data = load_dataset("cifar10", download=False, val_fraction=0)
    assert data.input_shape == (3, 32, 32) and len(data.x_train) == 30 and len(data.x_test) == 6
    assert data.classes[3] == "class3"


def test_cifar10_missing_and_malicious(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="DISTILL_GYM_CIFAR10"):
        load_dataset("cifar10", root=tmp_path / "nothing", download=False)
    folder = tmp_path / "evil"
    write_cifar(folder)
    (folder / "test_batch").write_bytes(pickle.dumps({"data": np.zeros(1), "labels": print}))
    registry._load_raw.cache_clear()
    with pytest.raises(pickle.UnpicklingError, match="refusing to load builtins.print"):
        load_dataset("cifar10", root=folder, download=False)


@pytest.mark.skipif(not registry.Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist_from_the_debian_package(monkeypatch):
    monkeypatch.setattr(registry, "DEBIAN_FASHION_MNIST", registry.Path("/usr/share/datasets/fashion-mnist"))
    data = load_dataset("fashion_mnist", download=False)
    assert len(data.x_train) + len(data.x_val) == 60000 and len(data.x_test) == 10000
