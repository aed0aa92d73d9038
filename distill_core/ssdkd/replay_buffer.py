"""SSD-KD's dynamic replay buffer: partial (class-balanced) updates and priority sampling.

Steps 4 and 5 of an SSD-KD round (docs/design.md), as reconstructed here (the paper has no code):

* **Partial update.** New synthetic samples enter with the current maximum raw priority (1.0 in an
  empty buffer), so each is drawn soon, as in PER. Once the buffer is full, exactly as many items are
  evicted as are inserted — never a full refresh. ``evict="balanced"`` (the SSD-KD setting) repeatedly
  takes the currently most over-represented *predicted* class and evicts its lowest-priority item;
  ``"fifo"`` evicts the oldest; ``"none"`` is append-only (the memory-bank baseline) and refuses to
  overflow.
* **Priority sampling.** ``P(i) = p_i^α / Σ_j p_j^α`` over the stored items, drawn with replacement by
  stratified sum-tree sampling (O(log N) per draw), with importance weights
  ``w_i = (N·P(i))^−β / max_j w_j`` (Schaul et al., 2016) where the max runs over the whole buffer, so
  ``w ≤ 1``. After a KD step the caller writes the fresh teacher–student discrepancy back with
  :meth:`ReplayBuffer.update_priorities`; ``p_i = |value| + eps``.

The teacher is frozen, so each item's teacher logits are computed once by the caller and cached here,
together with the predicted class (their argmax) and the teacher's confidence (max softmax probability)
that the buffer statistics are made of.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from distill_core.common.device import resolve_device
from distill_core.ssdkd.sum_tree import MinTree, SumTree, last_write_wins

FORMAT = "distill-gym/replay-buffer/v1"
EVICT_MODES = ("balanced", "fifo", "none")

# p^α is clipped into [_TINY, _HUGE / capacity] so that no stored item gets weight 0 by underflow (it
# must stay drawable and its IS weight finite) and the sum over the tree cannot overflow.
_TINY = float(np.finfo(np.float64).tiny)
_HUGE = 1e300


@dataclass(frozen=True)
class Batch:
    """Items drawn from a :class:`ReplayBuffer`.

    :param indices: ``(B,)`` int64 slot indices (pass them back to :meth:`ReplayBuffer.update_priorities`).
    :param x: ``(B, *sample_shape)`` samples, on the buffer's device.
    :param teacher_logits: ``(B, C)`` cached teacher logits, on the buffer's device.
    :param weights: ``(B,)`` float32 importance-sampling weights in ``(0, 1]``, on the buffer's device.
    :param probs: ``(B,)`` float64 sampling probabilities ``P(i)`` of the drawn items.
    """

    indices: np.ndarray
    x: torch.Tensor
    teacher_logits: torch.Tensor
    weights: torch.Tensor
    probs: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)


@dataclass(frozen=True)
class BufferStats:
    """Statistics of a :class:`ReplayBuffer` (the SSD-KD observation's buffer part).

    :param class_histogram: ``(C,)`` fraction of items per predicted class (sums to 1; zeros when empty).
    :param class_mean_priority: ``(C,)`` mean raw priority per class divided by the buffer's max priority
        (0 for empty classes).
    :param class_mean_confidence: ``(C,)`` mean teacher max-softmax probability per class (0 for empty classes).
    :param class_entropy: entropy of ``class_histogram`` divided by ``log C``, in ``[0, 1]``.
    :param fill_ratio: ``size / capacity``.
    :param mean_priority: mean raw priority (0 when empty).
    :param max_priority: max raw priority (0 when empty).
    :param size: number of stored items.
    :param min_priority: min raw priority (0 when empty).
    """

    class_histogram: np.ndarray
    class_mean_priority: np.ndarray
    class_mean_confidence: np.ndarray
    class_entropy: float
    fill_ratio: float
    mean_priority: float
    max_priority: float
    size: int
    min_priority: float = 0.0

    def as_vector(self) -> np.ndarray:
        """A float32 vector of length ``3C + 5``, every entry in ``[0, 1]`` (order as :meth:`names`).

        Raw priorities are unbounded (they are KL values), so the scalar part is normalised:
        ``prio_mean = mean / max`` and ``prio_min = min / max`` describe the spread that ``α`` acts on,
        ``prio_max = max / (1 + max)`` the scale. ``size`` is carried by ``fill``.
        """
        top = self.max_priority
        scalars = [
            self.class_entropy,
            self.fill_ratio,
            self.mean_priority / top if top > 0 else 0.0,
            self.min_priority / top if top > 0 else 0.0,
            top / (1.0 + top),
        ]
        return np.concatenate(
            [self.class_histogram, self.class_mean_priority, self.class_mean_confidence, scalars]
        ).astype(np.float32)

    @staticmethod
    def names(num_classes: int) -> list[str]:
        """Names of the entries of :meth:`as_vector`, in order.

        :param num_classes: ``C``.
        """
        per_class = [f"{prefix}/{c}" for prefix in ("hist", "prio", "conf") for c in range(num_classes)]
        return per_class + ["entropy", "fill", "prio_mean", "prio_min", "prio_max"]


class ReplayBuffer:
    """Fixed-capacity store of synthetic samples with cached teacher logits and sampling priorities.

    :param capacity: maximum number of items.
    :param sample_shape: shape of one sample, e.g. ``(1, 28, 28)``.
    :param num_classes: number of teacher classes ``C``.
    :param device: where samples and logits are kept (``"auto"`` picks a GPU when present).
    :param eps: added to ``|priority|`` so every item keeps a non-zero chance of being drawn.
    :param evict: ``"balanced"`` (most over-represented predicted class, lowest priority first),
        ``"fifo"`` (oldest first) or ``"none"`` (append-only; adding beyond capacity raises).
    """

    def __init__(
        self,
        capacity: int,
        sample_shape: Sequence[int] | int,
        num_classes: int,
        *,
        device: str | torch.device = "cpu",
        eps: float = 1e-6,
        evict: str = "balanced",
    ) -> None:
        if isinstance(capacity, bool) or int(capacity) != capacity or capacity < 1:
            raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
        if isinstance(num_classes, bool) or int(num_classes) != num_classes or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        shape = (sample_shape,) if isinstance(sample_shape, int) else tuple(sample_shape)
        if not all(int(s) == s and s >= 1 for s in shape):
            raise ValueError(f"sample_shape must be positive integers, got {sample_shape!r}")
        if not (math.isfinite(eps) and eps > 0):
            raise ValueError(f"eps must be a finite number > 0 (it keeps every item drawable), got {eps!r}")
        if evict not in EVICT_MODES:
            raise ValueError(f"unknown evict mode {evict!r}: use one of {EVICT_MODES}")
        self._capacity = int(capacity)
        self._sample_shape = tuple(int(s) for s in shape)
        self._num_classes = int(num_classes)
        self._device = resolve_device(device)
        self._eps = float(eps)
        self._evict = evict
        self._huge = _HUGE / self._capacity
        self._x: torch.Tensor | None = None  # allocated on the first add, grown geometrically (see _reserve)
        self._logits: torch.Tensor | None = None
        self._priority = np.zeros(self._capacity, dtype=np.float64)
        self._classes = np.full(self._capacity, -1, dtype=np.int64)
        self._confidence = np.zeros(self._capacity, dtype=np.float64)
        self._stamp = np.zeros(self._capacity, dtype=np.int64)  # insertion order: fifo and tie-breaks
        self._counts = np.zeros(self._num_classes, dtype=np.int64)
        self._size = 0
        self._next_stamp = 0
        self._sum_tree = SumTree(self._capacity)  # leaves p^α for the α in self._alpha
        # Raw priorities: min_i p_i^α = (min_i p_i)^α for any α ≥ 0 (x ↦ x^α is monotone), so this
        # tree never needs a rebuild when α changes. O(1) to read, O(log N) per update.
        self._min_tree = MinTree(self._capacity)
        self._alpha: float | None = None  # the α the sum-tree holds; None = must rebuild before sampling
        self._class_weights: np.ndarray | None = None  # per-class multipliers the sum-tree holds (None = all 1)

    # ------------------------------------------------------------------ properties
    def __len__(self) -> int:
        return self._size

    @property
    def capacity(self) -> int:
        """Maximum number of items."""
        return self._capacity

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample."""
        return self._sample_shape

    @property
    def num_classes(self) -> int:
        """Number of teacher classes."""
        return self._num_classes

    @property
    def device(self) -> torch.device:
        """Where samples and logits are stored."""
        return self._device

    @property
    def evict(self) -> str:
        """The eviction mode."""
        return self._evict

    @property
    def priorities(self) -> np.ndarray:
        """Raw priorities of the stored items, by slot (a copy)."""
        return self._priority[: self._size].copy()

    @property
    def predicted_classes(self) -> np.ndarray:
        """Teacher-predicted class (argmax of the cached logits) of the stored items, by slot (a copy)."""
        return self._classes[: self._size].copy()

    @property
    def stamps(self) -> np.ndarray:
        """Insertion counter of the stored items, by slot (smaller = older; a copy)."""
        return self._stamp[: self._size].copy()

    def class_counts(self) -> np.ndarray:
        """``(C,)`` number of stored items per predicted class (a copy)."""
        return self._counts.copy()

    def contents(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All stored samples ``(N, *sample_shape)`` (a view, on the device) and their predicted classes
        ``(N,)`` (int64, CPU), by slot."""
        if self._x is None:
            return torch.empty((0, *self._sample_shape), device=self._device), torch.empty(0, dtype=torch.int64)
        return self._x[: self._size], torch.from_numpy(self._classes[: self._size].copy())

    # ------------------------------------------------------------------ adding
    def add(self, x: torch.Tensor, teacher_logits: torch.Tensor) -> np.ndarray:
        """Insert samples with their teacher logits; evict as many old items as needed when full.

        New items get the buffer's current maximum raw priority (1.0 when empty), taken before any
        eviction of this call.

        :param x: ``(n, *sample_shape)`` samples (detached and copied onto the buffer's device).
        :param teacher_logits: ``(n, C)`` teacher logits of ``x``.
        :return: ``(n,)`` int64 slot indices, in the order of the inserted items.
        :raises ValueError: on wrong shapes or non-finite values, ``n > capacity``, or an append-only
            buffer (``evict="none"``) that would overflow.
        """
        self._check_inputs(x, teacher_logits)
        n = int(x.shape[0])
        if n == 0:
            return np.empty(0, dtype=np.int64)
        if n > self._capacity:
            raise ValueError(f"cannot add {n} items at once to a buffer of capacity {self._capacity}")
        free = self._capacity - self._size
        if self._evict == "none" and n > free:
            raise ValueError(
                f"the buffer is full: adding {n} items to {self._size}/{self._capacity} with evict='none' "
                "(append-only); give it a capacity of the whole sample budget or choose another evict mode"
            )
        new_priority = float(self._priority[: self._size].max()) if self._size else 1.0
        n_fill = min(n, free)
        fill_slots = np.arange(self._size, self._size + n_fill, dtype=np.int64)
        evicted = self._choose_evictions(n - n_fill)  # only among items stored before this call
        if evicted.size:
            self._counts -= np.bincount(self._classes[evicted], minlength=self._num_classes)
        slots = np.concatenate([fill_slots, evicted])

        self._reserve(self._size + n_fill, x.dtype, teacher_logits.dtype)
        assert self._x is not None and self._logits is not None
        slots_t = torch.from_numpy(slots).to(self._device)
        with torch.no_grad():
            self._x[slots_t] = x.detach().to(self._device, self._x.dtype)
            self._logits[slots_t] = teacher_logits.detach().to(self._device, self._logits.dtype)
            classes, confidence = _classes_and_confidence(self._logits[slots_t])
        self._classes[slots] = classes
        self._confidence[slots] = confidence
        self._counts += np.bincount(classes, minlength=self._num_classes)
        self._stamp[slots] = np.arange(self._next_stamp, self._next_stamp + n, dtype=np.int64)
        self._next_stamp += n
        self._size += n_fill
        self._set_priorities(slots, np.full(n, new_priority))
        return slots

    def _choose_evictions(self, k: int) -> np.ndarray:
        """Slots of the ``k`` stored items to evict (``k <= size``)."""
        if k <= 0:
            return np.empty(0, dtype=np.int64)
        size = self._size
        stamps = self._stamp[:size]
        if self._evict == "fifo":
            # Oldest first; freed slots are reused in age order, which makes this a ring buffer.
            return np.argsort(stamps, kind="stable")[:k].astype(np.int64)
        # Balanced: k times, the currently largest class (ties -> lower index: np.argmax) loses one item.
        counts = self._counts.copy()
        per_class = np.zeros(self._num_classes, dtype=np.int64)
        for _ in range(k):
            c = int(np.argmax(counts))
            counts[c] -= 1
            per_class[c] += 1
        classes = self._classes[:size]
        priorities = self._priority[:size]
        chosen = []
        for c in np.flatnonzero(per_class):
            members = np.flatnonzero(classes == c)
            # Lowest priority first, ties -> oldest (lexsort sorts by the last key first).
            order = np.lexsort((stamps[members], priorities[members]))
            chosen.append(members[order[: per_class[c]]])
        return np.sort(np.concatenate(chosen)).astype(np.int64)

    def _reserve(self, needed: int, x_dtype: torch.dtype, logits_dtype: torch.dtype) -> None:
        """Make storage for ``needed`` items. It grows by doubling up to the capacity, so an append-only
        memory bank sized to a whole budget only holds memory for what it has actually stored."""
        have = 0 if self._x is None else self._x.shape[0]
        if needed <= have:
            return
        new = min(self._capacity, max(needed, 2 * have, 64))
        x = torch.empty((new, *self._sample_shape), dtype=self._x.dtype if self._x is not None else x_dtype,
                        device=self._device)
        logits = torch.empty((new, self._num_classes), device=self._device,
                             dtype=self._logits.dtype if self._logits is not None else logits_dtype)
        if self._x is not None and self._logits is not None:
            x[:have] = self._x
            logits[:have] = self._logits
        self._x, self._logits = x, logits

    def _check_inputs(self, x: Any, teacher_logits: Any) -> None:
        for name, value in (("x", x), ("teacher_logits", teacher_logits)):
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        expected_x = ("n", *self._sample_shape)
        if x.dim() != len(self._sample_shape) + 1 or tuple(x.shape[1:]) != self._sample_shape:
            raise ValueError(f"x must have shape {expected_x}, got {tuple(x.shape)}")
        if teacher_logits.dim() != 2 or teacher_logits.shape[1] != self._num_classes:
            raise ValueError(
                f"teacher_logits must have shape ('n', {self._num_classes}), got {tuple(teacher_logits.shape)}"
            )
        if x.shape[0] != teacher_logits.shape[0]:
            raise ValueError(
                f"x and teacher_logits must hold the same number of items, got {x.shape[0]} and {teacher_logits.shape[0]}"
            )
        if not teacher_logits.is_floating_point():
            raise ValueError(f"teacher_logits must be floating point, got {teacher_logits.dtype}")
        if not bool(torch.isfinite(teacher_logits).all()):
            raise ValueError("teacher_logits contain NaN or inf")
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):
            raise ValueError("x contains NaN or inf")

    # ------------------------------------------------------------------ priorities and sampling
    def _scaled(self, p: np.ndarray, alpha: float) -> np.ndarray:
        """``p^α``, clipped so that it is never 0 (underflow) and the tree sum never overflows."""
        return np.clip(np.power(p, alpha), _TINY, self._huge)

    def _leaves(self, slots: np.ndarray, p: np.ndarray, alpha: float) -> np.ndarray:
        """Sum-tree leaves of ``slots``: ``w_c · p^α`` (``w_c = 1`` without class weights)."""
        leaves = self._scaled(p, alpha)
        return leaves if self._class_weights is None else leaves * self._class_weights[self._classes[slots]]

    def _set_priorities(self, slots: np.ndarray, p: np.ndarray) -> None:
        """Write raw priorities of stored slots into the array and both trees (incrementally)."""
        self._priority[slots] = p
        self._min_tree.update(slots, p)
        if self._alpha is not None:
            self._sum_tree.update(slots, self._leaves(slots, p, self._alpha))

    def _ensure_alpha(self, alpha: float, class_weights: np.ndarray | None = None) -> None:
        """Rebuild the sum-tree for a new α or new class weights: O(N), once per change."""
        same_weights = (class_weights is None and self._class_weights is None) or (
            class_weights is not None and self._class_weights is not None and np.array_equal(class_weights, self._class_weights))
        if self._alpha == alpha and same_weights:
            return
        self._class_weights = None if class_weights is None else np.array(class_weights, dtype=np.float64)
        leaves = np.zeros(self._capacity, dtype=np.float64)
        slots = np.arange(self._size)
        leaves[: self._size] = self._leaves(slots, self._priority[: self._size], alpha)
        self._sum_tree.rebuild(leaves)
        self._alpha = alpha

    def update_priorities(self, indices: np.ndarray | torch.Tensor, priorities: np.ndarray | torch.Tensor) -> None:
        """Set raw priorities ``p_i = |value| + eps`` (e.g. each sampled item's fresh KD loss).

        :param indices: slot indices (from :attr:`Batch.indices`); when one repeats, its last value wins.
        :param priorities: one value per index (numpy or torch, any device; detached here).
        :raises ValueError: on NaN or infinite values, a length mismatch, or indices of empty slots.
        """
        if isinstance(indices, torch.Tensor):
            indices = indices.detach().cpu().numpy()
        if isinstance(priorities, torch.Tensor):
            priorities = priorities.detach().to("cpu", torch.float64).numpy()
        idx = np.asarray(indices).reshape(-1)
        if idx.size and not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"indices must be integers, got dtype {idx.dtype}")
        idx = idx.astype(np.int64, copy=False)
        values = np.asarray(priorities, dtype=np.float64).reshape(-1)
        if values.size != idx.size:
            raise ValueError(f"got {idx.size} indices but {values.size} priorities")
        if idx.size == 0:
            return
        if idx.min() < 0 or idx.max() >= self._size:
            raise ValueError(
                f"indices must point at stored items, i.e. lie in [0, {self._size}), got range [{idx.min()}, {idx.max()}]"
            )
        finite = np.isfinite(values)
        if not finite.all():
            bad = values[~finite]
            raise ValueError(f"priorities must be finite, got {bad.size} non-finite value(s) (e.g. {bad[0]})")
        idx, values = last_write_wins(idx, values)
        self._set_priorities(idx, np.abs(values) + self._eps)

    def sample(self, batch_size: int, *, alpha: float, beta: float, rng: np.random.Generator,
               class_weights: np.ndarray | None = None) -> Batch:
        """Draw ``batch_size`` items with replacement, ``P(i) ∝ w_{c(i)} · p_i^α``, with importance weights.

        Stratified sum-tree sampling: O(log N) per draw. The sum-tree is rebuilt (O(N)) only when
        ``alpha`` or the class weights differ from the previous call. The weights' normaliser
        ``max_j w_j`` comes from the smallest ``P`` in the whole buffer: read from a min-tree of raw
        priorities without class weights, else from the leaves (O(N)).

        :param batch_size: number of draws (>= 1).
        :param alpha: priority exponent ``α >= 0`` (0 = uniform).
        :param beta: importance-sampling exponent ``β >= 0`` (0 = all weights 1).
        :param rng: the only source of randomness.
        :param class_weights: ``(C,)`` positive multipliers of the sampling probability by predicted class
            (replay priority per class; ``None`` = all 1, the paper's sampling).
        :raises ValueError: on an empty buffer, ``batch_size < 1`` or invalid ``alpha`` / ``beta`` / weights.
        """
        if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        alpha, beta = float(alpha), float(beta)
        if not (math.isfinite(alpha) and alpha >= 0):
            raise ValueError(f"alpha must be a finite number >= 0, got {alpha}")
        if not (math.isfinite(beta) and beta >= 0):
            raise ValueError(f"beta must be a finite number >= 0, got {beta}")
        if self._size == 0:
            raise ValueError("cannot sample from an empty replay buffer: add samples first")
        if class_weights is not None:
            class_weights = np.asarray(class_weights, dtype=np.float64)
            if class_weights.shape != (self._num_classes,) or not (np.isfinite(class_weights).all() and (class_weights > 0).all()):
                raise ValueError(f"class_weights must be {self._num_classes} finite numbers > 0, got {class_weights.tolist()}")
        self._ensure_alpha(alpha, class_weights)
        indices = self._sum_tree.sample(int(batch_size), rng)
        leaf = self._sum_tree.leaves[indices]
        probs = leaf / self._sum_tree.total
        if beta == 0.0:
            weights = np.ones(indices.size, dtype=np.float32)
        else:
            # (N·P_i)^−β / (N·P_min)^−β = (leaf_i / leaf_min)^−β; clipping at 1 only absorbs rounding.
            if self._class_weights is None:
                leaf_min = self._scaled(np.array([self._min_tree.min]), alpha)[0]
            else:
                leaf_min = float(self._sum_tree.leaves[: self._size].min())
            weights = np.minimum((leaf / leaf_min) ** (-beta), 1.0).astype(np.float32)
        assert self._x is not None and self._logits is not None
        index_t = torch.from_numpy(indices).to(self._device)
        return Batch(
            indices=indices,
            x=self._x[index_t],
            teacher_logits=self._logits[index_t],
            weights=torch.from_numpy(weights).to(self._device),
            probs=probs,
        )

    # ------------------------------------------------------------------ statistics
    def stats(self) -> BufferStats:
        """Per-class and global statistics of the stored items (see :class:`BufferStats`)."""
        c = self._num_classes
        if self._size == 0:
            zeros = np.zeros(c, dtype=np.float64)
            return BufferStats(zeros, zeros.copy(), zeros.copy(), 0.0, 0.0, 0.0, 0.0, 0, 0.0)
        size = self._size
        classes = self._classes[:size]
        priorities = self._priority[:size]
        counts = self._counts.astype(np.float64)
        histogram = counts / size
        top = float(priorities.max())
        occupied = counts > 0
        mean_priority = np.zeros(c)
        np.divide(np.bincount(classes, weights=priorities, minlength=c), counts, out=mean_priority, where=occupied)
        mean_confidence = np.zeros(c)
        np.divide(np.bincount(classes, weights=self._confidence[:size], minlength=c), counts,
                  out=mean_confidence, where=occupied)
        shares = histogram[occupied]
        entropy = float(-(shares * np.log(shares)).sum() / math.log(c)) if c > 1 else 0.0
        return BufferStats(
            class_histogram=histogram,
            class_mean_priority=mean_priority / top,
            class_mean_confidence=mean_confidence,
            class_entropy=min(max(entropy, 0.0), 1.0),
            fill_ratio=size / self._capacity,
            mean_priority=float(priorities.mean()),
            max_priority=top,
            size=size,
            min_priority=float(priorities.min()),
        )

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """The buffer's full state as tensors and plain values (loadable with ``weights_only=True``)."""
        size = self._size
        if self._x is None or self._logits is None:
            x = torch.empty((0, *self._sample_shape))
            logits = torch.empty((0, self._num_classes))
        else:
            # clone(): saving a slice would write the whole underlying storage
            x = self._x[:size].detach().cpu().clone()
            logits = self._logits[:size].detach().cpu().clone()
        return {
            "format": FORMAT,
            "capacity": self._capacity,
            "sample_shape": list(self._sample_shape),
            "num_classes": self._num_classes,
            "eps": self._eps,
            "evict": self._evict,
            "size": size,
            "next_stamp": self._next_stamp,
            "x": x,
            "teacher_logits": logits,
            "priorities": torch.from_numpy(self._priority[:size].copy()),
            "stamps": torch.from_numpy(self._stamp[:size].copy()),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` (eps and evict mode included).

        :raises ValueError: when the state is not a replay-buffer state or its capacity, sample shape or
            number of classes differ from this buffer's.
        """
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ValueError(f"not a replay-buffer state (expected format {FORMAT!r})")
        for key, mine in (("capacity", self._capacity), ("sample_shape", list(self._sample_shape)),
                          ("num_classes", self._num_classes)):
            theirs = list(state[key]) if key == "sample_shape" else state[key]
            if theirs != mine:
                raise ValueError(f"state has {key}={theirs}, this buffer has {key}={mine}")
        if state["evict"] not in EVICT_MODES:
            raise ValueError(f"state has unknown evict mode {state['evict']!r}")
        size = int(state["size"])
        x, logits = state["x"], state["teacher_logits"]
        priorities = state["priorities"].detach().cpu().numpy().astype(np.float64)
        stamps = state["stamps"].detach().cpu().numpy().astype(np.int64)
        if not 0 <= size <= self._capacity or not (len(x) == len(logits) == len(priorities) == len(stamps) == size):
            raise ValueError(f"inconsistent replay-buffer state: size {size} but {len(x)} samples, "
                             f"{len(logits)} logits, {len(priorities)} priorities, {len(stamps)} stamps")
        if size and not (np.isfinite(priorities).all() and (priorities > 0).all()):
            raise ValueError("replay-buffer state holds non-positive or non-finite priorities")

        self._eps = float(state["eps"])
        self._evict = state["evict"]
        self._x = self._logits = None
        self._priority.fill(0.0)
        self._classes.fill(-1)
        self._confidence.fill(0.0)
        self._stamp.fill(0)
        self._counts.fill(0)
        self._min_tree.clear()
        self._sum_tree.clear()
        self._alpha = None
        self._class_weights = None
        self._size = 0
        self._next_stamp = int(state["next_stamp"])
        if size == 0:
            return
        self._reserve(size, x.dtype, logits.dtype)
        assert self._x is not None and self._logits is not None
        with torch.no_grad():
            self._x[:size] = x.to(self._device)
            self._logits[:size] = logits.to(self._device)
            classes, confidence = _classes_and_confidence(self._logits[:size])
        self._classes[:size] = classes
        self._confidence[:size] = confidence
        self._counts = np.bincount(classes, minlength=self._num_classes).astype(np.int64)
        self._stamp[:size] = stamps
        self._size = size
        self._priority[:size] = priorities
        self._min_tree.update(np.arange(size), priorities)


def _classes_and_confidence(logits: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Predicted class (argmax; ties -> lowest index) and max softmax probability, as numpy arrays."""
    classes = logits.argmax(dim=1)
    confidence = torch.softmax(logits.float(), dim=1).amax(dim=1)
    return classes.cpu().numpy().astype(np.int64), confidence.cpu().numpy().astype(np.float64)
