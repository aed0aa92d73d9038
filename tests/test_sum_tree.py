"""SumTree / MinTree: sums stay exact-consistent under updates, the vectorised prefix search agrees with a
brute-force search, zero leaves are never returned, and bad input is refused."""

import numpy as np
import pytest

from distill_core.ssdkd.sum_tree import MinTree, SumTree


def assert_consistent(tree) -> None:
    """Every internal node equals op(left, right) exactly (not approximately)."""
    t, size = tree._tree, tree._size
    nodes = np.arange(1, size)
    assert np.array_equal(t[nodes], tree._op(t[2 * nodes], t[2 * nodes + 1]))


@pytest.mark.parametrize("capacity", [1, 2, 7, 64, 1000])
def test_total_is_the_sum_of_leaves_after_random_updates(capacity):
    rng = np.random.default_rng(capacity)
    tree = SumTree(capacity)
    reference = np.zeros(capacity)
    for _ in range(50):
        k = int(rng.integers(1, 2 * capacity + 1))
        idx = rng.integers(0, capacity, size=k)  # duplicates on purpose
        vals = rng.random(k) * rng.choice([0.0, 1.0, 1e-8, 1e4], size=k)
        tree.update(idx, vals)
        for i, v in zip(idx, vals):  # sequential reference: the last write wins
            reference[i] = v
        assert np.array_equal(tree.leaves, reference)
        assert tree.total == pytest.approx(reference.sum(), rel=1e-12, abs=1e-300)
        assert_consistent(tree)
    assert len(tree) == capacity


def test_rebuild_equals_incremental_updates_bit_for_bit():
    rng = np.random.default_rng(0)
    values = rng.random(300)
    a, b = SumTree(300), SumTree(300)
    a.rebuild(values)
    for chunk in np.array_split(rng.permutation(300), 7):
        b.update(chunk, values[chunk])
    assert np.array_equal(a._tree, b._tree)


@pytest.mark.parametrize("capacity", [1, 5, 100, 1023, 4096])
def test_find_prefix_matches_brute_force_and_skips_zero_leaves(capacity):
    rng = np.random.default_rng(capacity)
    values = rng.random(capacity) * (rng.random(capacity) < 0.7)  # ~30 % zero leaves
    values[rng.integers(capacity)] = 0.5  # at least one positive leaf
    tree = SumTree(capacity)
    tree.update(np.arange(capacity), values)
    u = rng.random(20_000) * tree.total
    expected = np.searchsorted(np.cumsum(values), u, side="right")
    found = tree.find_prefix(u)
    assert found.dtype == np.int64 and found.shape == u.shape
    assert np.array_equal(found, expected)
    assert (values[found] > 0).all()


def test_find_prefix_at_exact_boundaries_and_at_or_beyond_the_total():
    # Integer leaves make every prefix exact, so boundaries can be hit on purpose.
    values = np.array([0.0, 3.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.0])
    tree = SumTree(len(values))
    tree.update(np.arange(8), values)
    assert tree.total == 6.0
    assert tree.find_prefix(np.array([0.0, 2.999, 3.0, 3.5, 4.0, 5.999])).tolist() == [1, 1, 4, 4, 5, 5]
    # A query pushed to (or past) the total by rounding still lands on the last non-zero leaf.
    beyond = np.array([6.0, np.nextafter(6.0, np.inf), 6.0 + 1e-9])
    assert tree.find_prefix(beyond).tolist() == [5, 5, 5]


def test_sampling_follows_leaf_values_and_is_reproducible():
    values = np.array([1.0, 0.0, 2.0, 0.0, 4.0, 1.0])
    tree = SumTree(6)
    tree.update(np.arange(6), values)
    draws = np.concatenate([tree.sample(50, np.random.default_rng(s)) for s in range(400)])
    freq = np.bincount(draws, minlength=6) / draws.size
    assert np.abs(freq - values / values.sum()).max() < 0.01
    assert freq[1] == 0 and freq[3] == 0
    a = tree.sample(32, np.random.default_rng(7))
    b = tree.sample(32, np.random.default_rng(7))
    assert np.array_equal(a, b)
    c = tree.sample(32, np.random.default_rng(7), stratified=False)
    assert c.shape == (32,) and (values[c] > 0).all()


def test_invalid_values_and_empty_trees_are_refused():
    tree = SumTree(4)
    with pytest.raises(ValueError, match="non-negative"):
        tree.update([0], [-1.0])
    with pytest.raises(ValueError, match="NaN"):
        tree.update([0, 1], [1.0, float("nan")])
    with pytest.raises(ValueError, match="finite"):
        tree.update([0], [float("inf")])
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        tree.update([4], [1.0])
    with pytest.raises(ValueError, match="2 indices but 1 values"):
        tree.update([0, 1], [1.0])
    assert tree.total == 0.0  # nothing was written by the refused updates
    with pytest.raises(ValueError, match="empty sum-tree"):
        tree.sample(3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="empty sum-tree"):
        tree.find_prefix(np.array([0.0]))
    with pytest.raises(ValueError, match="positive integer"):
        SumTree(0)


def test_min_tree_tracks_the_minimum():
    rng = np.random.default_rng(1)
    tree = MinTree(37)
    assert tree.min == np.inf
    reference = np.full(37, np.inf)
    for _ in range(30):
        idx = rng.integers(0, 37, size=10)
        vals = rng.random(10)
        tree.update(idx, vals)
        for i, v in zip(idx, vals):
            reference[i] = v
        assert tree.min == reference.min()
        assert_consistent(tree)
    tree.update([int(np.argmin(reference))], [np.inf])  # emptying a slot
    reference[np.argmin(reference)] = np.inf
    assert tree.min == reference.min()
