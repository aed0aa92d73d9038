"""Long-tailed training sets: what a teacher trained on class-imbalanced data has seen.

The usual exponential profile of CIFAR-LT: the ``k``-th most frequent class keeps
``n_max · ratio^(−k/(C−1))`` of its training examples, so the head class keeps all and the tail class
``1/ratio`` of them. Validation and test splits are left balanced: the student is judged on the same
classes as always.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from distill_core.data.registry import DatasetSplits


def long_tailed(data: DatasetSplits, ratio: float, seed: int) -> DatasetSplits:
    """``data`` with its training split subsampled to a long tail of imbalance ``ratio`` (head / tail).

    :param ratio: ``>= 1``; 1 returns ``data`` unchanged.
    :param seed: which classes are head and tail (a seeded order) and which examples are kept.
    :raises ValueError: for ``ratio < 1`` or non-finite.
    """
    if not (np.isfinite(ratio) and ratio >= 1.0):
        raise ValueError(f"imbalance ratio must be a finite number >= 1 (head / tail), got {ratio}")
    if ratio == 1.0:
        return data
    rng = np.random.default_rng(seed)
    y = data.y_train.numpy()
    order = rng.permutation(data.num_classes)  # order[k] is the k-th most frequent class
    n_max = int(np.bincount(y, minlength=data.num_classes).max())
    keep = []
    for k, c in enumerate(order):
        members = np.flatnonzero(y == c)
        n = max(1, int(round(n_max * ratio ** (-k / max(1, data.num_classes - 1)))))
        keep.append(rng.permutation(members)[: min(n, len(members))])
    index = torch.from_numpy(np.sort(np.concatenate(keep)))
    return dataclasses.replace(data, x_train=data.x_train[index].clone(), y_train=data.y_train[index].clone(),
                               source=f"{data.source}, long-tailed ×{ratio:g} (seed {seed})")
