"""Data sets by name: ``load_dataset("digits")`` → normalised train / validation / test tensors + metadata.

Each source returns raw arrays (decoded once per process and cached); the registry turns them into
:class:`DatasetSplits` with a validation split that depends only on the seed.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from distill_core.common.paths import data_dir
from distill_core.data.readers import DatasetNotFoundError, read_cifar10, read_idx_set

#: Where Debian's ``dataset-fashion-mnist`` package puts the IDX files.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DIGIT_CLASSES = tuple(str(i) for i in range(10))


@dataclass(frozen=True)
class DatasetSplits:
    """A loaded data set: normalised float32 inputs ``(N, *input_shape)`` and int64 labels per split.

    :param name: registry name.
    :param classes: class names, index = label.
    :param mean: per-channel mean used to normalise (``x = (pixel − mean) / std``).
    :param std: per-channel std used to normalise.
    :param source: where the data came from.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def _channel_view(self, values: tuple[float, ...], like: torch.Tensor) -> torch.Tensor:
        return torch.tensor(values, dtype=like.dtype, device=like.device).view(1, -1, *[1] * (like.dim() - 2))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Pixel values (``[0, 1]``) → the normalised space the tensors live in."""
        return (x - self._channel_view(self.mean, x)) / self._channel_view(self.std, x)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised inputs ``(N, C, ...)`` → pixel values (``[0, 1]`` for images)."""
        return x * self._channel_view(self.std, x) + self._channel_view(self.mean, x)

    def describe(self) -> str:
        return (f"{self.name}: {len(self.x_train)} train / {len(self.x_val)} val / {len(self.x_test)} test, "
                f"shape {self.input_shape}, {self.num_classes} classes, from {self.source}")


@dataclass(frozen=True)
class RawData:
    """What a source returns: inputs scaled to ``[0, 1]`` (images) or raw (signals), labels, test split."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str
    stratify: bool = False


_SOURCES: dict[str, Callable[[str | None, bool], RawData]] = {}


def register_dataset(name: str) -> Callable:
    """Decorator adding a source ``fn(root, download) -> RawData`` under ``name``."""

    def wrap(fn: Callable[[str | None, bool], RawData]) -> Callable[[str | None, bool], RawData]:
        _SOURCES[name] = fn
        return fn

    return wrap


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    return sorted(_SOURCES)


def load_dataset(name: str, *, root: str | os.PathLike | None = None, val_fraction: float = 0.1, seed: int = 0,
                 download: bool = True) -> DatasetSplits:
    """Load data set ``name`` with a validation split drawn from the training set with ``seed``.

    :param name: one of :func:`list_datasets`.
    :param root: a folder with the data set's files (overrides the environment variable and defaults).
    :param val_fraction: share of the training set held out for validation, in ``[0, 1)``.
    :param seed: selects the validation split (the test split is fixed).
    :param download: allow torchvision to download where nothing local is found.
    :raises ValueError: unknown name or bad fraction.
    :raises DatasetNotFoundError: the files are nowhere; the message lists the ways to provide them.
    """
    if name not in _SOURCES:
        raise ValueError(f"unknown data set {name!r}: use one of {', '.join(list_datasets())}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    raw = _load_raw(name, str(root) if root is not None else None, download)
    train_idx, val_idx = _split(raw.y_train, val_fraction, seed, raw.stratify)

    def tensor(x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        view = (1, -1) + (1,) * (t.dim() - 2)
        return (t - torch.tensor(raw.mean).view(view)) / torch.tensor(raw.std).view(view)

    def labels(y: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(y, dtype=np.int64).copy())

    return DatasetSplits(
        name=name,
        x_train=tensor(raw.x_train[train_idx]), y_train=labels(raw.y_train[train_idx]),
        x_val=tensor(raw.x_train[val_idx]), y_val=labels(raw.y_train[val_idx]),
        x_test=tensor(raw.x_test), y_test=labels(raw.y_test),
        classes=raw.classes, mean=raw.mean, std=raw.std, source=raw.source,
    )


@functools.lru_cache(maxsize=8)
def _load_raw(name: str, root: str | None, download: bool) -> RawData:
    return _SOURCES[name](root, download)


def _split(y: np.ndarray, fraction: float, seed: int, stratify: bool) -> tuple[np.ndarray, np.ndarray]:
    """Train / validation indices; a seeded permutation (per class when ``stratify``)."""
    rng = np.random.default_rng(seed)
    if fraction == 0:
        return np.arange(len(y)), np.arange(0)
    if not stratify:
        order = rng.permutation(len(y))
        n_val = int(round(fraction * len(y)))
        return np.sort(order[n_val:]), np.sort(order[:n_val])
    val = []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        val.append(members[: int(round(fraction * len(members)))])
    val_idx = np.sort(np.concatenate(val))
    return np.setdiff1d(np.arange(len(y)), val_idx), val_idx


def _images(x: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W) or (N, C, H, W) → float32 (N, C, H, W) in [0, 1]."""
    x = x.astype(np.float32) / 255.0
    return x[:, None] if x.ndim == 3 else x


# ---------------------------------------------------------------------------- sources
@register_dataset("digits")
def _digits(root: str | None, download: bool) -> RawData:
    """scikit-learn's bundled 8×8 digits; a fixed stratified 20 % test split (there is no official one)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]
    y = bunch.target.astype(np.int64)
    rng = np.random.default_rng(20240607)  # fixed: the test split never changes with the run's seed
    test = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == c))[: round(0.2 * np.sum(y == c))] for c in range(10)]))
    train = np.setdiff1d(np.arange(len(y)), test)
    return RawData(x[train], y[train], x[test], y[test], DIGIT_CLASSES, (0.3053,), (0.3760,), "scikit-learn load_digits",
                   stratify=True)


@register_dataset("mnist1d")
def _mnist1d(root: str | None, download: bool) -> RawData:
    """MNIST-1D generated locally by the ``mnist1d`` package (never its download URL)."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as err:
        raise ImportError("MNIST-1D needs the mnist1d package: pip install 'distill-gym[mnist1d]'") from err
    state = np.random.get_state()  # make_dataset seeds numpy's global generator: keep ours untouched
    try:
        generated = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(state)
    x_train = np.asarray(generated["x"], dtype=np.float32)[:, None]
    x_test = np.asarray(generated["x_test"], dtype=np.float32)[:, None]
    return RawData(x_train, np.asarray(generated["y"]), x_test, np.asarray(generated["y_test"]), DIGIT_CLASSES,
                   (-0.0003,), (0.9976,), "mnist1d generator (default arguments)", stratify=True)


def _idx_dataset(label: str, root: str | None, env_var: str, fallbacks: list[Path], torchvision_cls: str,
                 download: bool) -> tuple[tuple[np.ndarray, ...], str]:
    """Find an IDX data set: explicit root, then ``$env_var``, then ``fallbacks``, then torchvision."""
    tried = []
    for folder in ([Path(root)] if root else []) + ([Path(os.environ[env_var])] if os.environ.get(env_var) else []) + fallbacks:
        tried.append(str(folder))
        try:
            return read_idx_set(folder), str(folder)
        except DatasetNotFoundError:
            continue
    import torchvision

    tv_root = data_dir()
    raw_folder = tv_root / torchvision_cls / "raw"
    try:
        getattr(torchvision.datasets, torchvision_cls)(root=str(tv_root), train=True, download=download)
        return read_idx_set(raw_folder), str(raw_folder)
    except (RuntimeError, OSError, DatasetNotFoundError) as err:
        tv_error = f"{type(err).__name__}: {err}"
    raise DatasetNotFoundError(
        f"{label} not found. Looked in: {', '.join(tried) or '(no folder given)'} and {raw_folder}. Provide it one of three ways: "
        f"(1) pass root=<folder with the four IDX files> or set {env_var}=<folder>; "
        + ("(2) on Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist (or `make fashion-mnist`), which puts them in "
           f"{DEBIAN_FASHION_MNIST}; " if label == "Fashion-MNIST" else "(2) copy the IDX files into that folder; ")
        + f"(3) let torchvision download them (needs a network and download=True; it said: {tv_error[:200]})."
    )


@register_dataset("fashion_mnist")
def _fashion_mnist(root: str | None, download: bool) -> RawData:
    arrays, source = _idx_dataset("Fashion-MNIST", root, "DISTILL_GYM_FASHION_MNIST", [DEBIAN_FASHION_MNIST], "FashionMNIST", download)
    x_train, y_train, x_test, y_test = arrays
    return RawData(_images(x_train), y_train, _images(x_test), y_test, FASHION_CLASSES, (0.2860,), (0.3530,), source)


@register_dataset("mnist")
def _mnist(root: str | None, download: bool) -> RawData:
    arrays, source = _idx_dataset("MNIST", root, "DISTILL_GYM_MNIST", [], "MNIST", download)
    x_train, y_train, x_test, y_test = arrays
    return RawData(_images(x_train), y_train, _images(x_test), y_test, DIGIT_CLASSES, (0.1307,), (0.3081,), source)


@register_dataset("cifar10")
def _cifar10(root: str | None, download: bool) -> RawData:
    candidates = [Path(p) for p in (root, os.environ.get("DISTILL_GYM_CIFAR10")) if p]
    tried = []
    for folder in candidates + [data_dir()]:
        for sub in (folder, folder / "cifar-10-batches-py"):
            tried.append(str(sub))
            if (sub / "batches.meta").is_file():
                x_train, y_train, x_test, y_test, classes = read_cifar10(sub)
                return RawData(_images(x_train), y_train, _images(x_test), y_test, classes,
                               (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), str(sub))
    import torchvision

    try:
        torchvision.datasets.CIFAR10(root=str(data_dir()), train=True, download=download)
    except (RuntimeError, OSError) as err:
        raise DatasetNotFoundError(
            f"CIFAR-10 not found. Looked in: {', '.join(tried)}. Provide it one of three ways: (1) pass root=<folder> or set "
            f"DISTILL_GYM_CIFAR10=<folder> holding cifar-10-batches-py; (2) unpack cifar-10-python.tar.gz into "
            f"{data_dir()}; (3) let torchvision download it (needs a network and download=True; it said: {str(err)[:200]})."
        ) from err
    return _cifar10(str(data_dir()), False)
