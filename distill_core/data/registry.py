"""Data sets by name: ``load_dataset("digits")`` -> normalised train / validation / test tensors + metadata.

A data set is registered as two steps: ``locate`` finds its files (cheap: looks at folders, downloads
only as a last resort) and ``read`` decodes them into a :class:`RawData`. Decoded data are cached per
process, keyed by the data set's name and the resolved folder (plus the files' sizes and modification
times, so a replaced file is read again); :func:`load_dataset` then builds fresh tensors from the cache
with a validation split that depends only on the seed.

Where the files are looked for, first hit wins:

* ``fashion_mnist``: ``root`` / ``$DISTILL_GYM_FASHION_MNIST`` (a folder of the four IDX files, plain or
  ``.gz``; an explicit folder without them is an error), then :data:`DEBIAN_FASHION_MNIST` (Debian's
  ``dataset-fashion-mnist``), then ``data_dir()/FashionMNIST/raw``, then torchvision's download into it.
* ``mnist``: ``root`` / ``$DISTILL_GYM_MNIST``, then ``data_dir()/MNIST/raw``, then torchvision's download.
* ``cifar10``: ``root`` / ``$DISTILL_GYM_CIFAR10`` (``cifar-10-batches-py`` or its parent), then
  ``data_dir()/cifar-10-batches-py``, then torchvision's download. Read by our reader either way:
  torchvision's class md5-checks every file and only fetches here.
* ``digits`` (scikit-learn's bundled copy), ``mnist1d`` and ``mnist1d_large`` (generated) need no files.
"""

from __future__ import annotations

import functools
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from distill_core.common.paths import data_dir
from distill_core.data.readers import (
    CIFAR10_FILES,
    IDX_FILES,
    DatasetNotFoundError,
    find_idx,
    read_cifar_batches,
    read_idx_set,
)

#: Where Debian's ``dataset-fashion-mnist`` package puts the IDX files (tests monkeypatch this module attribute).
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DIGIT_CLASSES = tuple(str(i) for i in range(10))


@dataclass(frozen=True, eq=False)
class DatasetSplits:
    """A loaded data set: normalised float32 inputs ``(N, *input_shape)`` and int64 labels per split.

    Every call of :func:`load_dataset` returns tensors of its own: changing them in place affects nothing else.

    :param name: registry name.
    :param x_train: training inputs, ``(x - mean) / std`` per channel.
    :param y_train: training labels.
    :param x_val: validation inputs (drawn from the official training set with the seed).
    :param y_val: validation labels.
    :param x_test: test inputs (the official test set, or a fixed split where there is none).
    :param y_test: test labels.
    :param classes: class names, index = label.
    :param mean: per-channel mean used to normalise (fixed constants, not recomputed per split).
    :param std: per-channel std used to normalise.
    :param source: where the data came from (a folder, ``"scikit-learn load_digits"``, ...).
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
        """Shape of one input, e.g. ``(1, 28, 28)`` or ``(1, 40)``."""
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    def _channel_view(self, values: tuple[float, ...], like: torch.Tensor) -> torch.Tensor:
        return torch.tensor(values, dtype=like.dtype, device=like.device).view(1, -1, *[1] * (like.dim() - 2))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Pixel values (``[0, 1]`` for images) -> the normalised space the tensors live in.

        :param x: a batch ``(N, C, ...)``.
        """
        return (x - self._channel_view(self.mean, x)) / self._channel_view(self.std, x)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised inputs -> pixel values (``[0, 1]`` for images; MNIST-1D signals are standardised already).

        :param x: a batch ``(N, C, ...)`` in the normalised space.
        """
        return x * self._channel_view(self.std, x) + self._channel_view(self.mean, x)

    def describe(self) -> str:
        """One line: name, split sizes, input shape, classes and source."""
        return (
            f"{self.name}: {len(self.x_train)} train / {len(self.x_val)} val / {len(self.x_test)} test, "
            f"shape {self.input_shape}, {self.num_classes} classes, from {self.source}"
        )


@dataclass(frozen=True, eq=False)
class RawData:
    """What a data set's reader returns; arrays are made read-only when cached.

    :param x_train: official training inputs ``(N, *input_shape)`` as stored (uint8 pixels, float signals).
    :param y_train: their labels.
    :param x_test: test inputs.
    :param y_test: test labels.
    :param classes: class names.
    :param mean: per-channel normalisation mean (of ``x / scale``).
    :param std: per-channel normalisation std.
    :param source: where the data came from.
    :param scale: stored values are divided by this to reach ``[0, 1]`` (255 for uint8 pixels).
    :param stratify: draw the validation split per class.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str
    scale: float = 1.0
    stratify: bool = False


#: ``locate(root, download) -> folder``: finds (or downloads) the files; raises DatasetNotFoundError.
Locator = Callable[[Path | None, bool], Path]
#: ``read(folder) -> RawData``: decodes them (``folder`` is None for generated / bundled data sets).
Reader = Callable[[Path | None], RawData]


@dataclass(frozen=True)
class _Source:
    read: Reader
    locate: Locator | None


_SOURCES: dict[str, _Source] = {}


def register_dataset(name: str, *, locate: Locator | None = None) -> Callable[[Reader], Reader]:
    """Decorator registering a reader ``read(folder) -> RawData`` under ``name``.

    :param name: the name :func:`load_dataset` accepts.
    :param locate: finds the folder to read (``None`` for data sets that need no files).
    """

    def wrap(read: Reader) -> Reader:
        _SOURCES[name] = _Source(read, locate)
        return read

    return wrap


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`, sorted."""
    return sorted(_SOURCES)


def load_dataset(
    name: str,
    *,
    root: str | os.PathLike | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    download: bool = True,
) -> DatasetSplits:
    """Load data set ``name`` with a validation split drawn from the training set with ``seed``.

    :param name: one of :func:`list_datasets`.
    :param root: a folder with the data set's files; takes precedence over the environment variable
        (``DISTILL_GYM_FASHION_MNIST``, ``DISTILL_GYM_MNIST``, ``DISTILL_GYM_CIFAR10``) and the defaults.
        An explicit folder (argument or variable) that lacks the files is an error, not skipped.
        Ignored by ``digits`` and the generated MNIST-1D sets, which need no files.
    :param val_fraction: share of the training set held out for validation, in ``[0, 1)``.
    :param seed: selects the validation split (the test split never depends on it).
    :param download: let torchvision download the files when they are found nowhere locally.
    :return: the splits, as fresh tensors.
    :raises ValueError: unknown name, bad fraction, or corrupt files.
    :raises DatasetNotFoundError: the files are nowhere; the message lists every way to provide them.
    """
    if name not in _SOURCES:
        raise ValueError(f"unknown data set {name!r}: use one of {', '.join(list_datasets())}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    source = _SOURCES[name]
    folder = source.locate(Path(root) if root is not None else None, download) if source.locate else None
    if folder is None:
        raw = _read_cached(name, None, ())
    else:
        folder = folder.resolve()
        raw = _read_cached(name, str(folder), _fingerprint(folder))
    train_idx, val_idx = _split(raw.y_train, val_fraction, seed, raw.stratify)

    def inputs(x: np.ndarray) -> torch.Tensor:  # always a new array: never a view of the cache
        scaled = x.astype(np.float32)
        if raw.scale != 1.0:
            scaled /= np.float32(raw.scale)
        t = torch.from_numpy(scaled)
        view = (1, -1) + (1,) * (t.dim() - 2)
        return t.sub_(torch.tensor(raw.mean).view(view)).div_(torch.tensor(raw.std).view(view))

    def labels(y: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(y.astype(np.int64))

    return DatasetSplits(
        name=name,
        x_train=inputs(raw.x_train[train_idx]),
        y_train=labels(raw.y_train[train_idx]),
        x_val=inputs(raw.x_train[val_idx]),
        y_val=labels(raw.y_train[val_idx]),
        x_test=inputs(raw.x_test),
        y_test=labels(raw.y_test),
        classes=raw.classes,
        mean=raw.mean,
        std=raw.std,
        source=raw.source,
    )


def _fingerprint(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Name, size and modification time of every file in ``folder`` (part of the cache key)."""
    with os.scandir(folder) as entries:
        stats = [(e.name, e.stat()) for e in entries if e.is_file()]
    return tuple(sorted((n, s.st_size, s.st_mtime_ns) for n, s in stats))


@functools.lru_cache(maxsize=4)
def _read_cached(name: str, folder: str | None, fingerprint: tuple) -> RawData:
    """Decode once per (name, folder, file stamps); the arrays are returned read-only."""
    raw = _SOURCES[name].read(Path(folder) if folder is not None else None)
    for y in (raw.y_train, raw.y_test):
        if len(y) and (y.min() < 0 or y.max() >= len(raw.classes)):
            raise ValueError(
                f"{name} from {raw.source}: labels span {y.min()}..{y.max()} but there are {len(raw.classes)} classes; "
                "the files are corrupt or from another data set: delete them and download again"
            )
    for array in (raw.x_train, raw.y_train, raw.x_test, raw.y_test):
        array.flags.writeable = False
    return raw


def _split(y: np.ndarray, fraction: float, seed: int, stratify: bool) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train / validation indices from a generator seeded with ``seed`` (per class when ``stratify``)."""
    if fraction == 0:
        return np.arange(len(y)), np.arange(0)
    rng = np.random.default_rng(seed)
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


def _check_images(x: np.ndarray, shape: tuple[int, ...], path: Path, label: str) -> np.ndarray:
    """uint8 images ``(N, H, W)`` get a channel axis; anything but ``shape`` per image is an error."""
    if x.ndim == 3:
        x = x[:, None]
    if x.dtype != np.uint8 or tuple(x.shape[1:]) != shape:
        raise ValueError(f"{path} holds {x.dtype} images of shape {tuple(x.shape[1:])}, not {label}'s uint8 {shape}")
    return x


# ------------------------------------------------------------------------------------------------- digits
@register_dataset("digits")
def _digits(folder: Path | None) -> RawData:
    """scikit-learn's bundled 8x8 digits; a fixed stratified 20 % test split (there is no official one).

    Normalisation constants: mean / std of all 1 797 images scaled to [0, 1].
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.float32)[:, None]  # values 0..16
    y = bunch.target.astype(np.int64)
    rng = np.random.default_rng(20240607)  # fixed: the test split never changes with the run's seed
    test = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == c))[: round(0.2 * np.sum(y == c))] for c in range(10)]))
    train = np.setdiff1d(np.arange(len(y)), test)
    return RawData(x[train], y[train], x[test], y[test], DIGIT_CLASSES, (0.3053,), (0.3760,), "scikit-learn load_digits",
                   scale=16.0, stratify=True)


# ------------------------------------------------------------------------------------------------ mnist1d
#: samples of ``mnist1d_large`` (train and test together): a training set large enough that a replay buffer
#: of 5–10 % of it is tens of KD batches, as in the SSD-KD paper
MNIST1D_LARGE_SAMPLES = 40_000


def generate_mnist1d(num_samples: int | None, label: str) -> RawData:
    """MNIST-1D made by the ``mnist1d`` package: its default arguments, with ``num_samples`` samples (80 %
    train, 20 % test) when given. ``make_dataset`` seeds numpy's and Python's global generators; their
    states are restored afterwards.

    The generator standardises train and test together, so the whole set's mean / std are 0 / 1.
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as err:
        raise ImportError(f"MNIST-1D needs the mnist1d package: pip install 'distill-gym[mnist1d]' ({err})") from err
    args = get_dataset_args()
    if num_samples is not None:
        args.num_samples = num_samples
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        generated = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    x_train = np.asarray(generated["x"], dtype=np.float32)[:, None]
    x_test = np.asarray(generated["x_test"], dtype=np.float32)[:, None]
    return RawData(x_train, np.asarray(generated["y"], dtype=np.int64), x_test, np.asarray(generated["y_test"], dtype=np.int64),
                   DIGIT_CLASSES, (0.0,), (1.0,), label, stratify=True)


@register_dataset("mnist1d")
def _mnist1d(folder: Path | None) -> RawData:
    """MNIST-1D with the package's default arguments (5 000 samples: 4 000 train / 1 000 test)."""
    return generate_mnist1d(None, "mnist1d generator (default arguments)")


@register_dataset("mnist1d_large")
def _mnist1d_large(folder: Path | None) -> RawData:
    """MNIST-1D with :data:`MNIST1D_LARGE_SAMPLES` samples (32 000 train / 8 000 test), otherwise the defaults."""
    return generate_mnist1d(MNIST1D_LARGE_SAMPLES, f"mnist1d generator ({MNIST1D_LARGE_SAMPLES} samples)")


# ----------------------------------------------------------------------------------- IDX: (Fashion-)MNIST
def _idx_folder(folder: Path, torchvision_name: str) -> Path | None:
    """``folder`` itself or torchvision's layout under it (``folder/<Name>/raw``), if it holds all four files."""
    for candidate in (folder, folder / torchvision_name / "raw"):
        if all(find_idx(candidate, stem) for stem in IDX_FILES):
            return candidate
    return None


def _locate_idx(label: str, root: Path | None, env_var: str, system_dirs: list[Path], torchvision_name: str,
                download: bool, system_hint: str) -> Path:
    """Explicit root, else ``$env_var`` (either must hold the files), else ``system_dirs``, else torchvision."""
    tv_raw = data_dir() / torchvision_name / "raw"

    def ways(detail: str) -> str:
        return (
            f"{label} not found: {detail}. Provide it one of three ways: "
            f"(1) pass root=<folder with the four IDX files {', '.join(IDX_FILES)} (plain or .gz)> "
            f"or set the environment variable {env_var}=<that folder>; (2) {system_hint}; "
            f"(3) let the torchvision download fetch them into {tv_raw} (needs a network and download=True)."
        )

    if root is not None or os.environ.get(env_var):
        folder, what = (root, "the root argument") if root is not None else (Path(os.environ[env_var]), f"${env_var}")
        found = _idx_folder(folder, torchvision_name)
        if found is None:
            missing = [stem for stem in IDX_FILES if not find_idx(folder, stem)]
            raise DatasetNotFoundError(ways(f"{folder} (from {what}) lacks {', '.join(missing)}"))
        return found
    for folder in system_dirs + [tv_raw]:  # tv_raw itself: never data_dir(), where MNIST and Fashion-MNIST names clash
        if all(find_idx(folder, stem) for stem in IDX_FILES):
            return folder
    tv_error = "not tried (download=False)"
    if download:
        import torchvision

        try:
            getattr(torchvision.datasets, torchvision_name)(root=str(data_dir()), train=True, download=True)
        except Exception as err:  # no network, HTTP errors, md5 mismatch: all mean "not here"
            tv_error = f"{type(err).__name__}: {str(err)[:200]}"
        if all(find_idx(tv_raw, stem) for stem in IDX_FILES):
            return tv_raw
    looked = ", ".join(str(p) for p in system_dirs + [tv_raw])
    raise DatasetNotFoundError(ways(f"no root argument or ${env_var}, nothing in {looked}, torchvision download: {tv_error}"))


def _locate_fashion_mnist(root: Path | None, download: bool) -> Path:
    return _locate_idx(
        "Fashion-MNIST", root, "DISTILL_GYM_FASHION_MNIST", [DEBIAN_FASHION_MNIST], "FashionMNIST", download,
        f"on Debian / Ubuntu: sudo apt-get install dataset-fashion-mnist (or `make fashion-mnist`), "
        f"which puts them in {DEBIAN_FASHION_MNIST}",
    )


def _locate_mnist(root: Path | None, download: bool) -> Path:
    return _locate_idx("MNIST", root, "DISTILL_GYM_MNIST", [], "MNIST", download,
                       f"copy the four files into {data_dir() / 'MNIST' / 'raw'}")


def _read_idx_images(folder: Path, label: str, classes: tuple[str, ...], mean: float, std: float) -> RawData:
    x_train, y_train, x_test, y_test = read_idx_set(folder)
    x_train, x_test = (_check_images(x, (1, 28, 28), folder, label) for x in (x_train, x_test))
    return RawData(x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64), classes, (mean,), (std,),
                   str(folder), scale=255.0)


@register_dataset("fashion_mnist", locate=_locate_fashion_mnist)
def _fashion_mnist(folder: Path | None) -> RawData:
    """Fashion-MNIST (60 000 / 10 000 28x28 greyscale) from a folder of IDX files."""
    return _read_idx_images(folder, "Fashion-MNIST", FASHION_CLASSES, 0.2860, 0.3530)


@register_dataset("mnist", locate=_locate_mnist)
def _mnist(folder: Path | None) -> RawData:
    """MNIST (60 000 / 10 000 28x28 greyscale) from a folder of IDX files."""
    return _read_idx_images(folder, "MNIST", DIGIT_CLASSES, 0.1307, 0.3081)


# ------------------------------------------------------------------------------------------------ CIFAR-10
def _cifar_folder(folder: Path) -> Path | None:
    """``folder`` or ``folder/cifar-10-batches-py`` if it holds any CIFAR-10 file (the reader names missing ones)."""
    for candidate in (folder, folder / "cifar-10-batches-py"):
        if any((candidate / name).is_file() for name in CIFAR10_FILES):
            return candidate
    return None


def _locate_cifar10(root: Path | None, download: bool) -> Path:
    """Explicit root, else ``$DISTILL_GYM_CIFAR10`` (either must hold the files), else the data folder, else torchvision."""
    target = data_dir() / "cifar-10-batches-py"

    def ways(detail: str) -> str:
        return (
            f"CIFAR-10 not found: {detail}. Provide it one of three ways: (1) pass root=<folder> or set the environment "
            f"variable DISTILL_GYM_CIFAR10=<folder>, the folder being cifar-10-batches-py (python version) or its parent; "
            f"(2) unpack cifar-10-python.tar.gz into {data_dir()}; "
            f"(3) let the torchvision download fetch it into {target} (needs a network and download=True)."
        )

    env = os.environ.get("DISTILL_GYM_CIFAR10")
    explicit = root if root is not None else (Path(env) if env else None)
    if explicit is not None:
        found = _cifar_folder(explicit)
        if found is None:
            what = "the root argument" if root is not None else "$DISTILL_GYM_CIFAR10"
            raise DatasetNotFoundError(ways(f"{explicit} (from {what}) holds no CIFAR-10 batch files"))
        return found
    found = _cifar_folder(data_dir())
    if found is not None:
        return found
    tv_error = "not tried (download=False)"
    if download:
        import torchvision

        try:  # downloads, md5-checks and unpacks into data_dir()/cifar-10-batches-py
            torchvision.datasets.CIFAR10(root=str(data_dir()), train=True, download=True)
        except Exception as err:
            tv_error = f"{type(err).__name__}: {str(err)[:200]}"
        found = _cifar_folder(data_dir())
        if found is not None:
            return found
    raise DatasetNotFoundError(
        ways(f"no root argument or $DISTILL_GYM_CIFAR10, nothing in {target}, torchvision download: {tv_error}")
    )


@register_dataset("cifar10", locate=_locate_cifar10)
def _cifar10(folder: Path | None) -> RawData:
    """CIFAR-10 (50 000 / 10 000 32x32 colour) from the python-pickle batches, read by our reader."""
    x_train, y_train, x_test, y_test, classes = read_cifar_batches(folder)
    return RawData(x_train, y_train, x_test, y_test, classes, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
                   str(folder), scale=255.0)
