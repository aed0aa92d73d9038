"""The seam between algorithms and environments: a *process* is an algorithm run one step at a time.

    process.reset(seed) -> Stats          # a fresh run (fresh student / synthetic set / buffer)
    process.step(knobs) -> Stats          # one round (or outer update) under these knob settings
    process.score() -> float              # the quantity whose gain is the reward
    process.done                          # budget spent, or the run diverged

:class:`StepwiseProcess` owns that lifecycle once for every method: the guards, the knob checks, grad
mode, timing, the telescoping gain, the progress statistics and the observation layout. A method fills in
how a run starts (``_start``), what one step does (``_update``), what it scores (``score``) and what it
observes (``_observe``); ``final_metrics`` and ``render_samples`` are optional hooks.

Knobs are a dataclass whose fields declare their range (see :func:`knob`); the defaults are the paper's
setting, so running an algorithm as published is ``while not p.done: p.step(p.Knobs())``. A knob declared
``per_class=True`` is one value per class (a tuple; ``None`` means every class at the default). Nothing
here knows about Gymnasium: ``envs`` maps a ``[-1, 1]^k`` action onto the knobs through these ranges.
"""

from __future__ import annotations

import dataclasses
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch


def knob(default: float, low: float, high: float, scale: str = "linear", doc: str = "", *, per_class: bool = False) -> Any:
    """Declare a controllable setting: a dataclass field with its range and scale.

    :param default: the paper-style value (what a non-learning run uses).
    :param low: smallest value an agent may set.
    :param high: largest value.
    :param scale: ``"linear"`` or ``"log"`` (log needs ``low > 0``): how ``[-1, 1]`` maps onto the range.
    :param doc: one line shown in env docs and traces.
    :param per_class: one value per class: the field holds a tuple (or ``None``: every class at ``default``).
    """
    if scale not in ("linear", "log"):
        raise ValueError(f"knob scale must be 'linear' or 'log', got {scale!r}")
    if not low <= default <= high:
        raise ValueError(f"knob default {default} outside its range [{low}, {high}]")
    if scale == "log" and low <= 0:
        raise ValueError(f"a log-scale knob needs low > 0, got {low}")
    metadata = {"low": low, "high": high, "scale": scale, "doc": doc, "default": default, "per_class": per_class}
    return field(default=None if per_class else default, metadata=metadata)


@dataclass(frozen=True)
class KnobSpec:
    """Range and scale of one knob, read from the knob dataclass.

    :param size: how many action entries the knob takes: 1, or the number of classes for a per-class knob.
    """

    name: str
    low: float
    high: float
    scale: str
    default: float
    doc: str = ""
    per_class: bool = False
    size: int = 1

    @property
    def entry_names(self) -> tuple[str, ...]:
        """The knob's action entries: ``("alpha",)`` or ``("class_weights/0", ..., "class_weights/9")``."""
        return tuple(f"{self.name}/{i}" for i in range(self.size)) if self.per_class else (self.name,)

    def from_unit(self, a: float) -> float:
        """Map ``a ∈ [-1, 1]`` onto the knob's range (clipped), with ``a = 0`` at the default.

        ``[-1, 0]`` spans ``[low, default]`` and ``[0, 1]`` spans ``[default, high]``, each evenly in the
        knob's scale, so the zero action is the published method and a Gaussian policy that starts at
        mean 0 (PPO, SAC) starts from the paper, not from the middle of the box. A default on a bound
        makes that half of the range constant. The ends map exactly onto the bounds and everything
        between stays inside them: in floating point ``exp(log(0.1) + log(100))`` is
        10.000000000000007, and agents that clip their actions send exactly ±1 all the time.
        """
        a = min(max(float(a), -1.0), 1.0)
        if a in (-1.0, 0.0, 1.0):
            return self.low if a < 0 else self.high if a > 0 else self.default
        end = self.low if a < 0 else self.high
        if self.scale == "log":
            value = math.exp(math.log(self.default) + abs(a) * (math.log(end) - math.log(self.default)))
        else:
            value = self.default + abs(a) * (end - self.default)
        return min(max(value, self.low), self.high)

    def to_unit(self, value: float) -> float:
        """The inverse of :meth:`from_unit` (values outside the range are clipped; on a constant half of
        the range, the value's action is the half's end nearest 0)."""
        value = min(max(float(value), self.low), self.high)
        end = self.low if value < self.default else self.high
        if value == self.default or end == self.default:
            return 0.0
        transform = math.log if self.scale == "log" else float
        t = (transform(value) - transform(self.default)) / (transform(end) - transform(self.default))
        return -t if value < self.default else t

    def values(self, knobs: Any) -> tuple[float, ...]:
        """The knob's value(s) in ``knobs`` as a tuple of ``size`` floats (a per-class ``None``: the default)."""
        value = getattr(knobs, self.name)
        if not self.per_class:
            return (float(value),)
        return (self.default,) * self.size if value is None else tuple(float(v) for v in value)


def knob_specs(knobs_cls: type, num_classes: int | None = None) -> list[KnobSpec]:
    """The :class:`KnobSpec` of every field of a knob dataclass, in declaration order.

    :param num_classes: the size of per-class knobs (required when the class has one).
    """
    specs = []
    for f in dataclasses.fields(knobs_cls):
        if "low" not in f.metadata:
            raise TypeError(f"{knobs_cls.__name__}.{f.name} is not declared with knob(...)")
        per_class = f.metadata["per_class"]
        if per_class and num_classes is None:
            raise ValueError(f"{knobs_cls.__name__}.{f.name} is per class: pass num_classes")
        specs.append(KnobSpec(f.name, f.metadata["low"], f.metadata["high"], f.metadata["scale"], f.metadata["default"],
                              f.metadata["doc"], per_class, int(num_classes) if per_class else 1))
    return specs


def check_knobs(knobs: Any, knobs_cls: type, specs: list[KnobSpec]) -> None:
    """Raise a clear error unless ``knobs`` is a ``knobs_cls`` whose every value is finite and in range
    (and every per-class knob has one value per class)."""
    if not isinstance(knobs, knobs_cls):
        raise TypeError(f"knobs must be a {knobs_cls.__name__}, got {type(knobs).__name__}")
    for spec in specs:
        raw = getattr(knobs, spec.name)
        if spec.per_class and raw is not None and len(raw) != spec.size:
            raise ValueError(f"knob {spec.name} needs {spec.size} values (one per class), got {len(raw)}")
        for value in spec.values(knobs):
            if not math.isfinite(value) or not spec.low <= value <= spec.high:
                raise ValueError(f"knob {spec.name}={raw} is outside its range [{spec.low}, {spec.high}]")


@dataclass(frozen=True)
class Stats:
    """What a process reports after ``reset`` or ``step``: a fixed-length, named, bounded vector (the
    observation) and the typed facts of the step.

    :param names: one name per entry of ``values``.
    :param values: float32 vector; every entry lies within ``[low, high]``.
    :param low: lower bounds (same length).
    :param high: upper bounds (same length).
    :param gain: the score's change over this step (0 after ``reset``): the reward.
    :param diverged: the run became non-finite and ended.
    :param scored: the score was computed after this step (else it, and the reward, carried over).
    :param timings: seconds spent so far in this run, by phase (machine measurements, never compared).
    :param extras: other numbers of the step that are not part of the observation (losses, counts, flags).
    """

    names: tuple[str, ...]
    values: np.ndarray
    low: np.ndarray
    high: np.ndarray
    gain: float = 0.0
    diverged: bool = False
    scored: bool = True
    timings: Mapping[str, float] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.names, self.values.tolist()))


class StatsBuilder:
    """Collect named, bounded entries in order and build :class:`Stats` (values clipped to bounds,
    NaN replaced by the lower bound, so an observation is always valid)."""

    def __init__(self) -> None:
        self._names: list[str] = []
        self._values: list[float] = []
        self._low: list[float] = []
        self._high: list[float] = []

    def add(self, name: str, value: float, low: float = 0.0, high: float = 1.0) -> StatsBuilder:
        self._names.append(name)
        self._values.append(float(value))
        self._low.append(low)
        self._high.append(high)
        return self

    def extend(self, prefix: str, values: np.ndarray, low: float = 0.0, high: float = 1.0) -> StatsBuilder:
        for i, v in enumerate(np.asarray(values, dtype=np.float64).ravel()):
            self.add(f"{prefix}/{i}", v, low, high)
        return self

    def build(self, **facts: Any) -> Stats:
        """The :class:`Stats` of the entries added, with ``facts`` (``gain``, ``diverged``, ``timings``,
        ``extras``) as given."""
        low = np.asarray(self._low, dtype=np.float32)
        high = np.asarray(self._high, dtype=np.float32)
        raw = np.asarray(self._values, dtype=np.float32)
        values = np.where(np.isnan(raw), low, np.clip(raw, low, high)).astype(np.float32)
        return Stats(tuple(self._names), values, low, high, **facts)


@dataclass
class Update:
    """What one step of a method reports to the lifecycle.

    :param diverged: the step became non-finite: the run ends (the env gives its divergence penalty).
    :param extras: the step's own numbers (losses, flags), passed on in :attr:`Stats.extras`.
    """

    diverged: bool = False
    extras: dict[str, Any] = field(default_factory=dict)


class StepwiseProcess(ABC):
    """The run lifecycle every method shares; a method implements one piece each.

    Required: the class attribute ``Knobs`` (the knob dataclass; its defaults are the published method),
    ``num_classes`` if a knob is per class (set in ``__init__``), :attr:`budget_field` (or :attr:`budget`), :meth:`_start`,
    :meth:`_update`, :meth:`score` and :meth:`_observe`. Optional: :meth:`exposed_knobs` (which knobs an
    agent sets; the rest stay at their default), :meth:`_scores_after_step` (skip scoring on some steps),
    :meth:`final_metrics`, :meth:`render_samples`, :meth:`clone` (share expensive parts).

        reset(seed) → _start(seed); score()
        step(knobs) → check knobs; _update(knobs) timed, with grad on; score() (if due and not diverged)
        stats()     → _observe(builder) + progress + tanh(last gain); gain, diverged, timings

    :param config: the run's configuration (a frozen dataclass), kept as ``self.config``.
    """

    Knobs: ClassVar[type]
    #: the configuration field that holds the budget in steps (``rounds``, ``iterations``)
    budget_field: ClassVar[str] = "steps"
    #: sizes per-class knobs (a method without classes leaves it ``None``)
    num_classes: int | None = None

    def __init__(self, config: Any) -> None:
        self.config = config
        self._seed: int | None = None
        self.steps_taken = 0
        self.diverged = False
        self.timings: dict[str, float] = {}
        self._score = float("nan")
        self._last_gain = 0.0
        self._specs: list[KnobSpec] | None = None
        self._all_specs: list[KnobSpec] | None = None

    # ------------------------------------------------------------------ what a method provides
    @property
    def budget(self) -> int:
        """Steps in one run: the configuration's :attr:`budget_field`."""
        return getattr(self.config, self.budget_field)

    @abstractmethod
    def _start(self, seed: int) -> None:
        """Build the run's state (models, sets, buffers, optimisers) from ``seed``; grad mode is on."""

    @abstractmethod
    def _update(self, knobs: Any) -> Update:
        """One step under ``knobs`` (already checked); grad mode is on. Must not raise on a non-finite
        loss: report ``Update(diverged=True)`` instead."""

    @abstractmethod
    def score(self) -> float:
        """The quantity whose gain is the reward, for the state after the last step."""

    @abstractmethod
    def _observe(self, builder: StatsBuilder) -> None:
        """Add the method's bounded statistics to the observation. Called before any run too (for the
        layout), so it must work on the state ``__init__`` leaves."""

    def exposed_knobs(self) -> tuple[str, ...] | None:
        """Names of the knobs an agent sets (``None``: all of them)."""
        return None

    def _scores_after_step(self) -> bool:
        """Whether this step is scored (otherwise the score, and so the reward, carries over)."""
        return True

    def final_metrics(self) -> dict[str, float]:
        """End-of-run metrics for reporting (may use real test data; never a reward)."""
        return {}

    def render_samples(self) -> np.ndarray:
        """An ``(H, W, 3)`` uint8 picture of the run. Default: the observation as grey bars, one column
        per entry scaled to its bounds, so every process renders; methods with samples show them."""
        stats = self.stats()
        span = np.where(stats.high > stats.low, stats.high - stats.low, 1.0)
        heights = np.round(31 * (stats.values - stats.low) / span).astype(int)
        frame = np.full((32, 4 * len(heights), 3), 255, np.uint8)
        for i, h in enumerate(heights):
            frame[31 - h :, 4 * i : 4 * i + 3] = 64
        return frame

    def clone(self) -> StepwiseProcess:
        """A fresh process with the same configuration (for reference runs); methods with expensive
        shared parts (data, teacher) override this to share them."""
        return type(self)(self.config)

    # ------------------------------------------------------------------ the lifecycle
    @property
    def knob_specs(self) -> list[KnobSpec]:
        """The specs of the knobs an agent sets, in declaration order."""
        if self._specs is None:
            exposed = self.exposed_knobs()
            self._specs = [s for s in self.all_knob_specs if exposed is None or s.name in exposed]
        return self._specs

    @property
    def all_knob_specs(self) -> list[KnobSpec]:
        """The specs of every knob, exposed or not (what a step's knobs are checked against)."""
        if self._all_specs is None:
            self._all_specs = knob_specs(self.Knobs, self.num_classes)
        return self._all_specs

    @property
    def seed(self) -> int | None:
        """The run's seed (``None`` before the first ``reset``)."""
        return self._seed

    @property
    def current_score(self) -> float:
        """The score as of the last step (or reset), without computing it again."""
        return self._score

    @property
    def done(self) -> bool:
        """The budget is spent, or the run diverged."""
        return self._seed is not None and (self.steps_taken >= self.budget or self.diverged)

    def reset(self, seed: int) -> Stats:
        """Start a fresh run whose every random choice follows from ``seed``."""
        self._seed = int(seed)
        self.steps_taken = 0
        self.diverged = False
        self.timings = {"start_seconds": 0.0, "update_seconds": 0.0, "score_seconds": 0.0}
        self._last_gain = 0.0
        with self.timed("start"), torch.enable_grad():  # callers may hold no_grad (SB3's ARS does); starting may invert
            self._start(self._seed)
        with self.timed("score"):
            self._score = self.score()
        return self.stats()

    def step(self, knobs: Any = None) -> Stats:
        """One step under ``knobs`` (default: the published method's constants)."""
        if self._seed is None:
            raise RuntimeError("call reset(seed) before step()")
        if self.done:
            raise RuntimeError("the run is over (budget spent or diverged): call reset(seed) to start another")
        knobs = knobs if knobs is not None else self.Knobs()
        check_knobs(knobs, self.Knobs, self.all_knob_specs)
        with self.timed("update"), torch.enable_grad():
            update = self._update(knobs)
        self.steps_taken += 1
        self.diverged = bool(update.diverged)
        previous = self._score
        scored = not self.diverged and (self._scores_after_step() or self.done)
        if scored:
            with self.timed("score"):
                self._score = self.score()
        self._last_gain = self._score - previous
        return self.stats(update.extras, scored=scored)

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the seconds spent inside to ``timings["<phase>_seconds"]`` of this run."""
        start = time.perf_counter()
        try:
            yield
        finally:
            key = f"{phase}_seconds"
            self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - start

    def stats(self, extras: dict[str, Any] | None = None, *, scored: bool = True) -> Stats:
        """The observation of the current state and the last step's facts."""
        return self._builder().build(gain=self._last_gain, diverged=self.diverged, scored=scored,
                                     timings=dict(self.timings), extras={"score": self._score, **(extras or {})})

    def observation_layout(self) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
        """Names and bounds of the observation, known before any run starts."""
        stats = self._builder().build()
        return stats.names, stats.low, stats.high

    def _builder(self) -> StatsBuilder:
        builder = StatsBuilder()
        self._observe(builder)
        add_progress(builder, self.steps_taken, self.budget, self._last_gain)
        return builder


def add_progress(builder: StatsBuilder, steps_taken: int, budget: int, last_gain: float) -> None:
    """The entries every process's observation ends with: the share of the budget spent and ``tanh`` of
    the last step's gain."""
    builder.add("progress", steps_taken / budget)
    builder.add("last_gain", math.tanh(last_gain), -1.0, 1.0)
