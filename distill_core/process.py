"""The seam between algorithms and environments: a *process* is an algorithm run one round at a time.

    process.reset(seed) -> Stats          # a fresh run (fresh student / synthetic set / buffer)
    process.step(knobs) -> Stats          # one round under these knob settings
    process.score() -> float              # the quantity whose gain is the reward
    process.done                          # budget spent

Knobs are a dataclass whose fields declare their range (see :func:`knob`); the defaults are the paper's
setting, so running an algorithm as published is ``while not p.done: p.step(Knobs())``. Nothing here
knows about Gymnasium: ``envs`` maps a ``[-1, 1]^k`` action onto the knobs through these ranges.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


def knob(default: float, low: float, high: float, scale: str = "linear", doc: str = "") -> Any:
    """Declare a controllable setting: a dataclass field with its range and scale.

    :param default: the paper-style value (what a non-learning run uses).
    :param low: smallest value an agent may set.
    :param high: largest value.
    :param scale: ``"linear"`` or ``"log"`` (log needs ``low > 0``): how ``[-1, 1]`` maps onto the range.
    :param doc: one line shown in env docs and traces.
    """
    if scale not in ("linear", "log"):
        raise ValueError(f"knob scale must be 'linear' or 'log', got {scale!r}")
    if not low <= default <= high:
        raise ValueError(f"knob default {default} outside its range [{low}, {high}]")
    if scale == "log" and low <= 0:
        raise ValueError(f"a log-scale knob needs low > 0, got {low}")
    return field(default=default, metadata={"low": low, "high": high, "scale": scale, "doc": doc})


@dataclass(frozen=True)
class KnobSpec:
    """Range and scale of one knob, read from the knob dataclass."""

    name: str
    low: float
    high: float
    scale: str
    default: float
    doc: str = ""

    def from_unit(self, a: float) -> float:
        """Map ``a ∈ [-1, 1]`` onto the knob's range (clipped).

        The ends map exactly onto the bounds and everything between stays inside them: in floating point
        ``exp(log(0.1) + log(100))`` is 10.000000000000007, and agents that clip their actions (PPO, SAC)
        send exactly ±1 all the time.
        """
        a = min(max(float(a), -1.0), 1.0)
        if a in (-1.0, 1.0):
            return self.low if a < 0 else self.high
        t = (a + 1.0) / 2.0
        if self.scale == "log":
            value = math.exp(math.log(self.low) + t * (math.log(self.high) - math.log(self.low)))
        else:
            value = self.low + t * (self.high - self.low)
        return min(max(value, self.low), self.high)

    def to_unit(self, value: float) -> float:
        """The inverse of :meth:`from_unit` (values outside the range are clipped)."""
        value = min(max(float(value), self.low), self.high)
        if self.high == self.low:
            return 0.0
        if self.scale == "log":
            t = (math.log(value) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        else:
            t = (value - self.low) / (self.high - self.low)
        return 2.0 * t - 1.0


def knob_specs(knobs_cls: type) -> list[KnobSpec]:
    """The :class:`KnobSpec` of every field of a knob dataclass, in declaration order."""
    specs = []
    for f in dataclasses.fields(knobs_cls):
        if "low" not in f.metadata:
            raise TypeError(f"{knobs_cls.__name__}.{f.name} is not declared with knob(...)")
        specs.append(KnobSpec(f.name, f.metadata["low"], f.metadata["high"], f.metadata["scale"], f.default, f.metadata["doc"]))
    return specs


def check_knobs(knobs: Any, knobs_cls: type, specs: list[KnobSpec]) -> None:
    """Raise a clear error unless ``knobs`` is a ``knobs_cls`` whose every value is finite and in range."""
    if not isinstance(knobs, knobs_cls):
        raise TypeError(f"knobs must be a {knobs_cls.__name__}, got {type(knobs).__name__}")
    for spec in specs:
        value = getattr(knobs, spec.name)
        if not math.isfinite(value) or not spec.low <= value <= spec.high:
            raise ValueError(f"knob {spec.name}={value} is outside its range [{spec.low}, {spec.high}]")


@dataclass(frozen=True)
class Stats:
    """A fixed-length, named, bounded vector of statistics of a run, plus free-form extras.

    :param names: one name per entry of ``values``.
    :param values: float32 vector; every entry lies within ``[low, high]``.
    :param low: lower bounds (same length).
    :param high: upper bounds (same length).
    :param extras: raw numbers that are not part of the observation (timings, losses, flags).
    """

    names: tuple[str, ...]
    values: np.ndarray
    low: np.ndarray
    high: np.ndarray
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

    def build(self, extras: dict[str, Any] | None = None) -> Stats:
        low = np.asarray(self._low, dtype=np.float32)
        high = np.asarray(self._high, dtype=np.float32)
        raw = np.asarray(self._values, dtype=np.float32)
        values = np.where(np.isnan(raw), low, np.clip(raw, low, high)).astype(np.float32)
        return Stats(tuple(self._names), values, low, high, dict(extras or {}))


@runtime_checkable
class Process(Protocol):
    """What an algorithm must offer to become an environment (see the module docstring).

    ``Knobs`` is the knob dataclass (it may depend on the configuration, e.g. per-class weights, so it
    is an attribute of the process); ``knob_specs`` its ranges; ``observation_layout()`` gives the names
    and bounds of the statistics before any run starts; ``clone()`` a fresh process with the same
    configuration sharing the expensive parts (for reference runs such as reward normalisation).
    """

    Knobs: type
    knob_specs: list[KnobSpec]

    def observation_layout(self) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]: ...

    def reset(self, seed: int) -> Stats: ...

    def step(self, knobs: Any) -> Stats: ...

    def score(self) -> float: ...

    @property
    def done(self) -> bool: ...

    def clone(self) -> Process: ...
