"""Readers for the two on-disk formats the image data sets come in: IDX (MNIST, Fashion-MNIST) and
CIFAR-10's python pickles. Both check what they read, so a truncated or corrupt download is named and
the user is told to fetch it again, instead of being silently misread."""

from __future__ import annotations

import gzip
import os
import pickle
import zlib
from pathlib import Path

import numpy as np

#: IDX type byte (third byte of the magic number) -> element dtype (big-endian on disk).
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"

#: The four files of the MNIST layout, in the order :func:`read_idx_set` returns them.
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
#: The files of CIFAR-10's python version (folder ``cifar-10-batches-py``).
CIFAR10_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")


class DatasetNotFoundError(FileNotFoundError):
    """The data set's files are nowhere the loader looked; the message says every way to provide them."""


def find_idx(folder: str | os.PathLike, stem: str) -> Path | None:
    """``folder/stem`` or ``folder/stem.gz``, whichever exists (the plain file first).

    :param folder: folder to look in.
    :param stem: file name without ``.gz``, e.g. ``"train-images-idx3-ubyte"``.
    :return: the path, or ``None`` when neither exists.
    """
    for name in (stem, stem + ".gz"):
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    return None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, plain or gzip-compressed, into an array of the dtype and shape its header declares.

    Compression is recognised from the content (gzip's magic bytes), not the file name.

    :param path: the file.
    :return: a writable native-byte-order array of the header's shape.
    :raises FileNotFoundError: the file does not exist.
    :raises ValueError: unreadable gzip stream, bad magic number, or fewer / more bytes than the header
        promises; the message names the file and says to delete it and download it again.
    """
    path = Path(path)
    fix = f"delete {path} and download it again"
    data = path.read_bytes()
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise ValueError(f"{path} is a truncated or corrupt gzip file ({type(err).__name__}: {err}); {fix}") from err
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} does not start with an IDX magic number (corrupt, or not an IDX file); {fix}")
    dtype, ndim = np.dtype(_IDX_DTYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path} is truncated inside its header; {fix}")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(
            f"{path} has {len(data)} bytes (uncompressed) but its header {shape} needs {expected}: truncated or corrupt; {fix}"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx_set(folder: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The four MNIST-layout files of ``folder`` (each plain or ``.gz``).

    :param folder: folder holding :data:`IDX_FILES`.
    :return: ``(x_train, y_train, x_test, y_test)`` as stored (uint8 images ``(N, H, W)``, uint8 labels).
    :raises DatasetNotFoundError: a file is missing (the message names it).
    :raises ValueError: a file is corrupt, or image and label counts differ.
    """
    arrays = []
    for stem in IDX_FILES:
        path = find_idx(folder, stem)
        if path is None:
            raise DatasetNotFoundError(f"{Path(folder) / stem} (or {stem}.gz) is missing")
        arrays.append(read_idx(path))
    x_train, y_train, x_test, y_test = arrays
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise ValueError(
            f"image and label counts differ in {folder}: train {len(x_train)}/{len(y_train)}, test {len(x_test)}/{len(y_test)}; "
            "one of the files is from another data set or corrupt: delete them and download again"
        )
    return x_train, y_train, x_test, y_test


def read_cifar_batches(
    folder: str | os.PathLike,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """CIFAR-10's python version (the files of ``cifar-10-batches-py``), read without torchvision.

    Only numpy arrays, lists, dicts and strings are unpickled: pickles can run code, so any other global
    a file refers to is refused.

    :param folder: the folder holding ``data_batch_1`` ... ``data_batch_5``, ``test_batch`` and ``batches.meta``.
    :return: ``(x_train, y_train, x_test, y_test, classes)``: uint8 images ``(N, 3, 32, 32)``, int64 labels,
        and the class names.
    :raises DatasetNotFoundError: a file is missing (the message names it).
    :raises ValueError: a file is corrupt, refers to a foreign global, or does not hold CIFAR batches.
    """
    folder = Path(folder)
    missing = [name for name in CIFAR10_FILES if not (folder / name).is_file()]
    if missing:
        raise DatasetNotFoundError(f"{', '.join(str(folder / m) for m in missing)} missing from the CIFAR-10 folder")
    train = [_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = _cifar_batch(folder / "test_batch")
    meta = _unpickle(folder / "batches.meta")
    names = meta.get("label_names") if isinstance(meta, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{folder / 'batches.meta'} has no list of 'label_names'; delete it and download CIFAR-10 again")
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return x_train, y_train, x_test, y_test, tuple(names)


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file: ``{"data": uint8 (N, 3072), "labels": [N ints]}`` -> NCHW images and labels."""
    batch = _unpickle(path)
    fix = f"delete {path} and download CIFAR-10 again"
    if not isinstance(batch, dict) or "data" not in batch or "labels" not in batch:
        raise ValueError(f"{path} is not a CIFAR-10 batch (no 'data' / 'labels'); {fix}")
    data, labels = np.asarray(batch["data"]), np.asarray(batch["labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: 'data' is {data.dtype} {data.shape}, expected uint8 (N, 3072); {fix}")
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: {labels.shape} labels of type {labels.dtype} for {len(data)} images; {fix}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _unpickle(path: Path) -> object:
    try:
        with path.open("rb") as handle:
            return _NumpyOnlyUnpickler(handle, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as err:
        raise ValueError(
            f"{path} is truncated, corrupt or not a CIFAR-10 file ({type(err).__name__}: {str(err)[:200]}); "
            f"delete it and download CIFAR-10 again"
        ) from err


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Refuses every global but the few numpy needs to rebuild arrays."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load the global {module}.{name}")
