"""Data sets by name (``digits``, ``mnist1d``, ``mnist1d_large``, ``fashion_mnist``, ``mnist``, ``cifar10``).

    data = load_dataset("fashion_mnist", seed=0)
    data.x_train.shape  # (54000, 1, 28, 28), normalised
    data.describe()

Where each data set's files are looked for is documented in :mod:`distill_core.data.registry`
(and in the :class:`DatasetNotFoundError` raised when they are found nowhere).
"""

from distill_core.data.readers import DatasetNotFoundError, read_cifar_batches, read_idx, read_idx_set
from distill_core.data.registry import DatasetSplits, list_datasets, load_dataset, register_dataset

__all__ = [
    "DatasetNotFoundError",
    "DatasetSplits",
    "list_datasets",
    "load_dataset",
    "read_cifar_batches",
    "read_idx",
    "read_idx_set",
    "register_dataset",
]
