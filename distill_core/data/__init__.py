"""Data sets by name (``digits``, ``mnist1d``, ``fashion_mnist``, ``mnist``, ``cifar10``).

    data = load_dataset("fashion_mnist", seed=0)
    data.x_train.shape  # (54000, 1, 28, 28), normalised
"""

from distill_core.data.readers import DatasetNotFoundError, read_cifar10, read_idx, read_idx_set
from distill_core.data.registry import DEBIAN_FASHION_MNIST, DatasetSplits, list_datasets, load_dataset, register_dataset

__all__ = ["DEBIAN_FASHION_MNIST", "DatasetNotFoundError", "DatasetSplits", "list_datasets", "load_dataset",
           "read_cifar10", "read_idx", "read_idx_set", "register_dataset"]
