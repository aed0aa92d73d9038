"""SSD-KD replay buffer: capacity and priorities, sampling frequencies P(i) ∝ p^α, importance weights,
class-balanced partial eviction, fifo / append-only modes, determinism, persistence, input checks, stats."""

import math

import numpy as np
import pytest
import torch

from distill_core.ssdkd.replay_buffer import BufferStats, ReplayBuffer

SHAPE = (1, 3, 3)
C = 4
EPS = 1e-6


def items(classes, start_id=0):
    """Samples whose pixels all equal a running id (to recognise them later) and logits predicting ``classes``."""
    classes = torch.as_tensor(classes, dtype=torch.int64)
    n = len(classes)
    ids = torch.arange(start_id, start_id + n, dtype=torch.float32)
    x = ids.view(n, 1, 1, 1).expand(n, *SHAPE).clone()
    logits = torch.nn.functional.one_hot(classes, C).float() * 4.0
    return x, logits


def ids_of(buffer):
    x, _ = buffer.contents()
    return x[:, 0, 0, 0].long().tolist()


def frequencies(buffer, n_draws, alpha, seed=0, batch=100):
    rng = np.random.default_rng(seed)
    counts = np.zeros(len(buffer))
    for _ in range(n_draws // batch):
        counts += np.bincount(buffer.sample(batch, alpha=alpha, beta=0.0, rng=rng).indices, minlength=len(buffer))
    return counts / counts.sum()


@pytest.fixture
def known():
    """A full 8-item buffer with known raw priorities."""
    buffer = ReplayBuffer(8, SHAPE, C)
    buffer.add(*items([0, 1, 2, 3, 0, 1, 2, 3]))
    values = np.array([0.1, 0.2, 0.4, 0.8, 1.6, 0.05, 1.0, 0.3])
    buffer.update_priorities(np.arange(8), values)
    return buffer, values + EPS


def test_capacity_is_never_exceeded_and_bookkeeping_stays_consistent():
    rng = np.random.default_rng(0)
    for evict in ("balanced", "fifo"):
        buffer = ReplayBuffer(50, SHAPE, C, evict=evict)
        next_id = 0
        for _ in range(60):
            n = int(rng.integers(1, 20))
            slots = buffer.add(*items(rng.integers(0, C, n), next_id))
            next_id += n
            assert len(slots) == n and len(np.unique(slots)) == n
            assert len(buffer) <= buffer.capacity == 50
            assert (buffer.priorities > 0).all()
            assert np.array_equal(buffer.class_counts(), np.bincount(buffer.predicted_classes, minlength=C))
            if rng.random() < 0.5:
                batch = buffer.sample(16, alpha=0.6, beta=0.4, rng=rng)
                buffer.update_priorities(batch.indices, rng.normal(size=16))
        assert len(buffer) == 50
        assert len(set(ids_of(buffer))) == 50  # each stored item is a distinct insertion


def test_new_items_get_the_current_max_priority():
    buffer = ReplayBuffer(10, SHAPE, C)
    slots = buffer.add(*items([0, 1, 2]))
    assert np.array_equal(buffer.priorities[slots], np.ones(3))  # empty buffer -> 1.0
    buffer.update_priorities(slots, torch.tensor([0.5, -3.0, 0.25]))  # |value| + eps
    assert buffer.priorities == pytest.approx([0.5 + EPS, 3.0 + EPS, 0.25 + EPS], abs=0)
    buffer.update_priorities(np.array([1, 1]), np.array([5.0, 3.0]))  # a repeated index: the last value wins
    new = buffer.add(*items([3, 3], 3))
    assert np.array_equal(buffer.priorities[new], np.full(2, 3.0 + EPS))
    # Max-priority items are drawn soon: with α = 1 they dominate the next batch.
    batch = buffer.sample(50, alpha=1.0, beta=0.0, rng=np.random.default_rng(0))
    assert np.isin(batch.indices, np.concatenate([new, [1]])).mean() > 0.8


def test_sampling_frequencies_match_priorities_to_the_alpha(known):
    buffer, p = known
    for alpha in (1.0, 0.5, 0.0):
        expected = p**alpha / (p**alpha).sum()
        freq = frequencies(buffer, 200_000, alpha, seed=int(alpha * 10))
        assert np.abs(freq - expected).max() < 0.01, (alpha, freq, expected)
        batch = buffer.sample(64, alpha=alpha, beta=0.0, rng=np.random.default_rng(1))
        np.testing.assert_allclose(batch.probs, expected[batch.indices], rtol=1e-12)
    assert np.allclose(frequencies(buffer, 50_000, 0.0), 1 / 8, atol=0.01)  # α = 0: uniform


def test_alpha_change_rebuilds_and_priority_updates_are_incremental(known):
    buffer, p = known
    buffer.sample(10, alpha=1.0, beta=0.0, rng=np.random.default_rng(0))
    freq = frequencies(buffer, 100_000, 2.0)  # a new α: the tree must follow it
    assert np.abs(freq - p**2 / (p**2).sum()).max() < 0.01
    # Same α, new priorities: the incremental tree update must be visible without a rebuild.
    new = np.array([2.0, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 1.0])
    buffer.update_priorities(np.arange(8), new)
    freq = frequencies(buffer, 100_000, 2.0, seed=3)
    q = (new + EPS) ** 2
    assert np.abs(freq - q / q.sum()).max() < 0.01


def test_importance_weights(known):
    buffer, p = known
    n, alpha, beta = len(buffer), 0.7, 0.4
    prob = p**alpha / (p**alpha).sum()
    w_all = (n * prob) ** -beta
    batch = buffer.sample(4000, alpha=alpha, beta=beta, rng=np.random.default_rng(0))
    assert batch.weights.dtype == torch.float32 and batch.weights.shape == (4000,)
    w = batch.weights.numpy()
    assert (w <= 1.0).all() and (w > 0).all()
    np.testing.assert_allclose(w, (w_all / w_all.max())[batch.indices], rtol=1e-6)
    rarest = int(np.argmin(prob))
    assert (w[batch.indices == rarest] == 1.0).all() and (batch.indices == rarest).any()
    # The normaliser is the whole buffer's max weight, not the batch's: every other item weighs < 1,
    # even in a batch without the rarest item.
    assert (w[batch.indices != rarest] < 1.0).all()
    ones = buffer.sample(100, alpha=alpha, beta=0.0, rng=np.random.default_rng(0)).weights
    assert torch.equal(ones, torch.ones(100))


def test_batch_carries_the_drawn_items(known):
    buffer, _ = known
    batch = buffer.sample(32, alpha=0.6, beta=0.4, rng=np.random.default_rng(0))
    x, _ = buffer.contents()
    assert batch.indices.dtype == np.int64 and len(batch) == 32
    assert batch.x.shape == (32, *SHAPE) and batch.teacher_logits.shape == (32, C)
    assert torch.equal(batch.x, x[torch.from_numpy(batch.indices)])
    assert np.array_equal(batch.teacher_logits.argmax(1).numpy(), buffer.predicted_classes[batch.indices])


def test_balanced_eviction_takes_the_lowest_priorities_of_the_crowded_class():
    buffer = ReplayBuffer(20, SHAPE, C)
    classes = [0] * 12 + [1] * 4 + [2] * 4  # class 0 crowded, class 3 absent
    buffer.add(*items(classes))
    prio = np.arange(20, dtype=np.float64)[::-1].copy()  # class-0 items get the highest priorities ...
    prio[[3, 7, 8, 11, 2]] = [0.01, 0.02, 0.03, 0.04, 0.05]  # ... except these five
    prio[12:] = 0.001  # the other classes' items are the lowest overall, yet must survive
    buffer.update_priorities(np.arange(20), prio)
    entropy_before = buffer.stats().class_entropy
    slots = buffer.add(*items([3, 3, 3, 3], 100))
    assert sorted(slots.tolist()) == [3, 7, 8, 11]  # the 4 lowest-priority class-0 items, and only those
    assert buffer.class_counts().tolist() == [8, 4, 4, 4]
    assert sorted(ids_of(buffer)) == sorted(set(range(20)) - {3, 7, 8, 11} | {100, 101, 102, 103})
    assert buffer.stats().class_entropy > entropy_before


def test_balanced_eviction_recounts_after_each_pick_and_breaks_ties():
    buffer = ReplayBuffer(12, SHAPE, C)
    buffer.add(*items([0] * 5 + [1] * 5 + [2] * 2))
    buffer.update_priorities(np.arange(12), np.full(12, 0.5))  # all equal: the oldest go first
    slots = buffer.add(*items([3, 3, 3], 100))
    # counts [5, 5, 2, 0] -> class 0 (tie, lower index) -> [4, 5] -> class 1 -> [4, 4] -> class 0
    assert buffer.class_counts().tolist() == [3, 4, 2, 3]
    assert sorted(slots.tolist()) == [0, 1, 5]  # the oldest two of class 0, the oldest of class 1


def test_fifo_evicts_the_oldest_and_none_is_append_only():
    fifo = ReplayBuffer(6, SHAPE, C, evict="fifo")
    fifo.add(*items([0, 1, 2, 3], 0))
    fifo.update_priorities(np.arange(4), [9.0, 0.1, 0.1, 0.1])  # priorities do not matter to fifo
    fifo.add(*items([0, 0, 0, 0], 10))
    assert sorted(ids_of(fifo)) == [2, 3, 10, 11, 12, 13]
    fifo.add(*items([1, 1], 20))
    assert sorted(ids_of(fifo)) == [10, 11, 12, 13, 20, 21]

    bank = ReplayBuffer(6, SHAPE, C, evict="none")
    bank.add(*items([0, 1, 2], 0))
    bank.add(*items([0, 1, 2], 3))
    assert len(bank) == 6 and sorted(ids_of(bank)) == list(range(6))
    with pytest.raises(ValueError, match="buffer is full"):
        bank.add(*items([3], 6))
    assert len(bank) == 6

    with pytest.raises(ValueError, match="cannot add 7 items at once to a buffer of capacity 6"):
        ReplayBuffer(6, SHAPE, C).add(*items([0] * 7))
    with pytest.raises(ValueError, match="unknown evict mode"):
        ReplayBuffer(6, SHAPE, C, evict="lru")


def test_same_seed_same_samples():
    def build():
        buffer = ReplayBuffer(40, SHAPE, C)
        buffer.add(*items(np.arange(40) % C))
        buffer.update_priorities(np.arange(40), np.linspace(0.01, 2.0, 40))
        return buffer

    a, b = build(), build()
    ba = a.sample(64, alpha=0.6, beta=0.4, rng=np.random.default_rng(11))
    bb = b.sample(64, alpha=0.6, beta=0.4, rng=np.random.default_rng(11))
    assert np.array_equal(ba.indices, bb.indices) and torch.equal(ba.weights, bb.weights)
    bc = a.sample(64, alpha=0.6, beta=0.4, rng=np.random.default_rng(12))
    assert not np.array_equal(ba.indices, bc.indices)


def test_state_dict_round_trip_reproduces_sampling(tmp_path):
    buffer = ReplayBuffer(30, SHAPE, C, evict="fifo", eps=1e-4)
    rng = np.random.default_rng(0)
    for start in range(0, 50, 10):
        buffer.add(*items(rng.integers(0, C, 10), start))
        batch = buffer.sample(16, alpha=0.8, beta=0.5, rng=rng)
        buffer.update_priorities(batch.indices, rng.random(16))
    torch.save(buffer.state_dict(), tmp_path / "buffer.pt")
    restored = ReplayBuffer(30, SHAPE, C)
    restored.load_state_dict(torch.load(tmp_path / "buffer.pt", weights_only=True))
    assert restored.evict == "fifo" and len(restored) == len(buffer)
    a, b = (buf.sample(32, alpha=0.3, beta=0.7, rng=np.random.default_rng(9)) for buf in (buffer, restored))
    assert np.array_equal(a.indices, b.indices)
    assert torch.equal(a.x, b.x) and torch.equal(a.weights, b.weights)
    assert np.array_equal(buffer.add(*items([1, 2, 3], 99)), restored.add(*items([1, 2, 3], 99)))
    assert ids_of(buffer) == ids_of(restored)
    assert np.array_equal(buffer.stats().as_vector(), restored.stats().as_vector())

    with pytest.raises(ValueError, match="capacity=30"):
        ReplayBuffer(31, SHAPE, C).load_state_dict(buffer.state_dict())
    empty = ReplayBuffer(30, SHAPE, C)
    empty.load_state_dict(ReplayBuffer(30, SHAPE, C).state_dict())
    assert len(empty) == 0


def test_bad_input_is_refused_with_a_clear_message():
    buffer = ReplayBuffer(10, SHAPE, C)
    x, logits = items([0, 1])
    with pytest.raises(ValueError, match=r"x must have shape \('n', 1, 3, 3\), got \(2, 3, 3\)"):
        buffer.add(x[:, 0], logits)
    with pytest.raises(ValueError, match=r"teacher_logits must have shape \('n', 4\), got \(2, 5\)"):
        buffer.add(x, torch.zeros(2, 5))
    with pytest.raises(ValueError, match="same number of items, got 2 and 1"):
        buffer.add(x, logits[:1])
    with pytest.raises(ValueError, match="teacher_logits contain NaN"):
        buffer.add(x, logits * float("nan"))
    with pytest.raises(ValueError, match="empty replay buffer"):
        buffer.sample(4, alpha=0.5, beta=0.5, rng=np.random.default_rng(0))
    buffer.add(x, logits)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        buffer.sample(0, alpha=0.5, beta=0.5, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="alpha must be"):
        buffer.sample(4, alpha=-1.0, beta=0.5, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="priorities must be finite"):
        buffer.update_priorities(np.array([0, 1]), torch.tensor([0.3, float("nan")]))
    with pytest.raises(ValueError, match="priorities must be finite"):
        buffer.update_priorities(np.array([0]), np.array([np.inf]))
    with pytest.raises(ValueError, match="stored items"):
        buffer.update_priorities(np.array([5]), np.array([1.0]))
    assert np.array_equal(buffer.priorities, np.ones(2))  # refused updates changed nothing


def test_stats():
    empty = ReplayBuffer(10, SHAPE, C).stats()
    assert empty.size == 0 and empty.fill_ratio == 0.0 and not empty.class_histogram.any()
    assert empty.as_vector().shape == (3 * C + 5,)

    buffer = ReplayBuffer(10, SHAPE, C)
    x, logits = items([0, 0, 0, 1, 1, 2])
    buffer.add(x, logits)
    buffer.update_priorities(np.arange(6), [1.0, 2.0, 3.0, 4.0, 4.0, 8.0])
    s = buffer.stats()
    for arr in (s.class_histogram, s.class_mean_priority, s.class_mean_confidence):
        assert arr.shape == (C,)
    assert s.class_histogram.sum() == pytest.approx(1.0)
    assert s.class_histogram.tolist() == pytest.approx([0.5, 1 / 3, 1 / 6, 0.0])
    assert s.class_mean_priority == pytest.approx(np.array([2.0, 4.0, 8.0, 0.0]) / 8.0, rel=1e-5)
    confidence = torch.softmax(logits[0], 0).max().item()
    assert s.class_mean_confidence == pytest.approx([confidence] * 3 + [0.0], rel=1e-6)
    assert 0.0 <= s.class_entropy <= 1.0
    h = np.array([0.5, 1 / 3, 1 / 6])
    assert s.class_entropy == pytest.approx(-(h * np.log(h)).sum() / math.log(C))
    assert s.fill_ratio == 0.6 and s.size == 6
    assert s.max_priority == pytest.approx(8.0) and s.mean_priority == pytest.approx(22 / 6)
    vec = s.as_vector()
    names = BufferStats.names(C)
    assert vec.dtype == np.float32 and len(vec) == len(names) == 3 * C + 5 and len(set(names)) == len(names)
    assert ((vec >= 0) & (vec <= 1)).all()
    assert names[:2] == ["hist/0", "hist/1"] and names[C] == "prio/0" and names[2 * C] == "conf/0"

    balanced = ReplayBuffer(8, SHAPE, C)
    balanced.add(*items([0, 1, 2, 3] * 2))
    assert balanced.stats().class_entropy == pytest.approx(1.0)


def test_class_weights_scale_the_sampling_probability_and_the_weights_normaliser(known):
    buffer, p = known
    classes = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    w_class = np.array([4.0, 1.0, 0.25, 2.0])
    alpha, beta = 0.5, 0.6
    leaf = w_class[classes] * p**alpha
    prob = leaf / leaf.sum()
    rng = np.random.default_rng(0)
    counts = np.zeros(8)
    for _ in range(1000):
        counts += np.bincount(buffer.sample(100, alpha=alpha, beta=0.0, rng=rng, class_weights=w_class).indices, minlength=8)
    assert np.abs(counts / counts.sum() - prob).max() < 0.01
    batch = buffer.sample(2000, alpha=alpha, beta=beta, rng=np.random.default_rng(1), class_weights=w_class)
    np.testing.assert_allclose(batch.probs, prob[batch.indices], rtol=1e-12)
    w_all = (8 * prob) ** -beta
    np.testing.assert_allclose(batch.weights.numpy(), (w_all / w_all.max())[batch.indices], rtol=1e-6)
    # back to no class weights: the paper's sampling again
    plain = buffer.sample(64, alpha=alpha, beta=0.0, rng=np.random.default_rng(2))
    np.testing.assert_allclose(plain.probs, (p**alpha / (p**alpha).sum())[plain.indices], rtol=1e-12)
    with pytest.raises(ValueError, match="class_weights must be 4 finite numbers > 0"):
        buffer.sample(4, alpha=alpha, beta=0.0, rng=rng, class_weights=np.zeros(C))
