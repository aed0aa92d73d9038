"""Readers for the two on-disk formats the image data sets come in: IDX (MNIST, Fashion-MNIST) and
CIFAR's python pickles. Both check what they read, so a truncated download is named, not misread."""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DatasetNotFoundError(FileNotFoundError):
    """The data set's files are nowhere the loader looked; the message says every way to provide them."""


def find_idx(folder: str | os.PathLike, stem: str) -> Path | None:
    """``folder/stem`` or ``folder/stem.gz``, whichever exists."""
    for name in (stem, stem + ".gz"):
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    return None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (plain or gzip) into an array of the dtype and shape its header declares.

    :raises ValueError: bad magic number, or fewer / more bytes than the header promises.
    """
    path = Path(path)
    fix = f"delete {path} and download it again"
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as err:
        raise ValueError(f"{path} is not a readable IDX file ({err}); {fix}") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} does not start with an IDX magic number; {fix}")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path} is truncated inside its header; {fix}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path} has {len(raw)} bytes but its header {shape} needs {expected}: truncated or corrupt; {fix}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx_set(folder: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The four MNIST-layout files of ``folder``: train images / labels, test images / labels.

    :raises DatasetNotFoundError: a file is missing.
    """
    arrays = []
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        path = find_idx(folder, stem)
        if path is None:
            raise DatasetNotFoundError(f"{Path(folder) / stem}[.gz] is missing")
        arrays.append(read_idx(path))
    x_train, y_train, x_test, y_test = arrays
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise ValueError(f"image and label counts differ in {folder}: {len(x_train)}/{len(y_train)}, {len(x_test)}/{len(y_test)}")
    return x_train, y_train, x_test, y_test


def read_cifar10(folder: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """CIFAR-10's python version (``cifar-10-batches-py``): uint8 NCHW images, labels and class names.

    Only numpy arrays, lists and strings are unpickled: the files are checked to contain nothing else.
    :raises DatasetNotFoundError: a batch file is missing.
    """
    folder = Path(folder)

    def load(name: str) -> dict:
        path = folder / name
        if not path.is_file():
            raise DatasetNotFoundError(f"{path} is missing")
        with path.open("rb") as handle:
            return _NumpyOnlyUnpickler(handle, encoding="latin1").load()

    batches = [load(f"data_batch_{i}") for i in range(1, 6)]
    test = load("test_batch")
    meta = load("batches.meta")
    x_train = np.concatenate([b["data"] for b in batches]).reshape(-1, 3, 32, 32)
    y_train = np.concatenate([np.asarray(b["labels"]) for b in batches])
    x_test = np.asarray(test["data"]).reshape(-1, 3, 32, 32)
    return x_train, y_train, x_test, np.asarray(test["labels"]), tuple(meta["label_names"])


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Refuses every global but the few numpy needs to rebuild arrays (pickles can run code)."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar")}

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch file")
