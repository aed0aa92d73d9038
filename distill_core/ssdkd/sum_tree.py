"""Segment trees over a fixed number of slots, with vectorised numpy operations.

:class:`SumTree` is the structure behind proportional prioritised sampling (Schaul et al., "Prioritized
Experience Replay", 2016): leaves hold non-negative weights, each internal node the sum of its two
children, so drawing a leaf with probability proportional to its weight is a descent from the root —
O(log N) per draw. :class:`MinTree` keeps the minimum the same way (the importance-sampling weights of
PER need the smallest probability in the buffer).

Layout: the number of leaves is padded to a power of two ``P``; node ``1`` is the root, node ``i`` has
children ``2i`` and ``2i + 1``, leaf ``j`` sits at node ``P + j``. Padding keeps every leaf at the same
depth and the leaves in left-to-right order, so one descent step is one numpy operation over all queries.

Every internal node is always recomputed as ``op(left, right)`` from its children (never patched with a
delta), so the tree is an exact function of its leaves: no rounding drift however many updates, and two
trees with equal leaves are equal bit for bit whatever order the updates came in.
"""

from __future__ import annotations

import numpy as np


def _as_indices(indices: np.ndarray | list[int], capacity: int) -> np.ndarray:
    """Check leaf indices: integers in ``[0, capacity)``; returns a 1-D int64 array."""
    idx = np.asarray(indices)
    if idx.ndim != 1:
        idx = idx.reshape(-1)
    if idx.size and not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"leaf indices must be integers, got dtype {idx.dtype}")
    idx = idx.astype(np.int64, copy=False)
    if idx.size and (idx.min() < 0 or idx.max() >= capacity):
        raise ValueError(f"leaf indices must lie in [0, {capacity}), got range [{idx.min()}, {idx.max()}]")
    return idx


def last_write_wins(idx: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop repeated indices, keeping the value given last (numpy's fancy assignment does not promise an order)."""
    if idx.size < 2:
        return idx, values
    rev_idx = idx[::-1]
    unique, first_in_reversed = np.unique(rev_idx, return_index=True)
    if unique.size == idx.size:
        return idx, values
    return unique, values[::-1][first_in_reversed]


class _SegmentTree:
    """A complete binary tree whose internal nodes hold ``op(left, right)``; subclasses choose ``op``.

    :param capacity: number of leaves (slots), at least 1.
    """

    _op: np.ufunc
    _neutral: float
    _allow_inf: bool = False

    def __init__(self, capacity: int) -> None:
        if int(capacity) != capacity or capacity < 1:
            raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
        self._capacity = int(capacity)
        self._size = 1 << max(0, (self._capacity - 1).bit_length())  # padded leaf count P (a power of two)
        self._depth = self._size.bit_length() - 1  # number of descent steps from root to a leaf
        self._tree = np.full(2 * self._size, self._neutral, dtype=np.float64)

    def __len__(self) -> int:
        return self._capacity

    @property
    def capacity(self) -> int:
        """Number of leaves."""
        return self._capacity

    @property
    def leaves(self) -> np.ndarray:
        """The leaf values (a read-only view, length ``capacity``)."""
        view = self._tree[self._size : self._size + self._capacity]
        view.flags.writeable = False  # writes must go through update() so the sums stay consistent
        return view

    def _check_values(self, values: np.ndarray | list[float], n: int) -> np.ndarray:
        vals = np.asarray(values, dtype=np.float64).reshape(-1)
        if vals.size != n:
            raise ValueError(f"got {n} indices but {vals.size} values")
        if np.isnan(vals).any():
            raise ValueError("leaf values must not be NaN")
        if (vals < 0).any():
            raise ValueError(f"leaf values must be non-negative, got minimum {vals.min()}")
        if not self._allow_inf and np.isinf(vals).any():
            raise ValueError("leaf values must be finite (an infinite weight would swallow the whole sum)")
        return vals

    def update(self, indices: np.ndarray | list[int], values: np.ndarray | list[float]) -> None:
        """Set leaves and recompute their ancestors, level by level (O(k log N) for k leaves).

        :param indices: leaf indices in ``[0, capacity)``; when an index repeats, the last value wins.
        :param values: non-negative leaf values, one per index.
        :raises ValueError: on out-of-range indices, negative or NaN values, or a length mismatch.
        """
        idx = _as_indices(indices, self._capacity)
        vals = self._check_values(values, idx.size)
        if idx.size == 0:
            return
        idx, vals = last_write_wins(idx, vals)
        nodes = idx + self._size
        self._tree[nodes] = vals
        tree, op = self._tree, self._op
        for _ in range(self._depth):
            nodes = nodes >> 1
            # Repeated parents all receive the same value (computed from the finished child level), so
            # the duplicate writes are harmless and no per-level np.unique is needed.
            tree[nodes] = op(tree[2 * nodes], tree[2 * nodes + 1])

    def rebuild(self, values: np.ndarray) -> None:
        """Replace all leaves at once and rebuild every level: O(N), cheaper than N single updates.

        :param values: ``capacity`` non-negative values.
        """
        vals = self._check_values(values, self._capacity)
        tree = self._tree
        tree[self._size :] = self._neutral
        tree[self._size : self._size + self._capacity] = vals
        lo = self._size
        while lo > 1:
            half = lo >> 1
            tree[half:lo] = self._op(tree[lo : 2 * lo : 2], tree[lo + 1 : 2 * lo : 2])
            lo = half

    def clear(self) -> None:
        """Set every leaf to the neutral element (0 for sums, +inf for minima)."""
        self._tree.fill(self._neutral)


class SumTree(_SegmentTree):
    """Sum-tree over ``capacity`` non-negative float64 leaves, for sampling leaves in proportion to value.

    :param capacity: number of leaves.
    """

    _op = np.add
    _neutral = 0.0

    @property
    def total(self) -> float:
        """Sum of all leaves."""
        return float(self._tree[1])

    def find_prefix(self, values: np.ndarray | list[float]) -> np.ndarray:
        """For each cumulative value ``u`` the leaf ``i`` with ``prefix(i) <= u < prefix(i + 1)``.

        One vectorised descent over all queries: ``log2(P)`` numpy steps. Leaves of value 0 are never
        returned: the descent only enters a subtree whose sum is positive, which also guards against
        a ``u`` at or slightly above ``total`` through rounding (it ends on the last non-zero leaf).

        :param values: cumulative values in ``[0, total)``.
        :return: int64 leaf indices, same shape as ``values``.
        :raises ValueError: when the tree is all zeros or a value is NaN or negative.
        """
        u = np.array(values, dtype=np.float64)  # a copy: the descent subtracts in place
        shape = u.shape
        u = u.reshape(-1)
        if not self._tree[1] > 0:
            raise ValueError("cannot search an empty sum-tree (all leaves are 0)")
        if np.isnan(u).any() or (u < 0).any():
            raise ValueError("prefix values must be non-negative numbers")
        tree = self._tree
        node = np.ones(u.size, dtype=np.int64)
        for _ in range(self._depth):
            left_child = 2 * node
            left = tree[left_child]
            right = tree[left_child + 1]
            go_right = ((u >= left) & (right > 0)) | (left <= 0)
            u -= np.where(go_right, left, 0.0)
            node = left_child + go_right
        return (node - self._size).reshape(shape)

    def sample(self, n: int, rng: np.random.Generator, stratified: bool = True) -> np.ndarray:
        """Draw ``n`` leaves with replacement, ``P(i) = leaf_i / total``.

        Stratified (as in PER): ``[0, total)`` is cut into ``n`` equal segments and one uniform value is
        drawn in each, which lowers the variance of a batch's composition without biasing ``P(i)``.
        The result is therefore ordered by leaf position; shuffle it if order matters to the caller.

        :param n: number of draws (>= 1).
        :param rng: the only source of randomness.
        :param stratified: one draw per segment (True) or ``n`` independent draws over ``[0, total)``.
        :return: int64 leaf indices of shape ``(n,)``.
        :raises ValueError: when ``n < 1`` or every leaf is 0.
        """
        if int(n) != n or n < 1:
            raise ValueError(f"number of draws must be a positive integer, got {n!r}")
        total = self.total
        if not total > 0:
            raise ValueError("cannot sample from an empty sum-tree (all leaves are 0)")
        if stratified:
            u = (np.arange(n, dtype=np.float64) + rng.random(n)) * (total / n)
        else:
            u = rng.random(n) * total
        return self.find_prefix(u)


class MinTree(_SegmentTree):
    """Min-tree over ``capacity`` float64 leaves; empty slots hold ``+inf``.

    :param capacity: number of leaves.
    """

    _op = np.minimum
    _neutral = np.inf
    _allow_inf = True  # +inf marks an empty slot

    @property
    def min(self) -> float:
        """Smallest leaf (``inf`` when every slot is empty)."""
        return float(self._tree[1])
