"""Type and range checks of configuration dataclasses, and the size limit every process family shares.

A configuration declares each numeric field's range next to the field, and calls :func:`check_fields`
first in its ``__post_init__``::

    @dataclass(frozen=True)
    class Config:
        rounds: int = bounded(12, 1)             # >= 1
        lr: float = bounded(0.05, above=0.0)     # > 0 (and finite, as every float)
        mix_prob: float = bounded(0.5, 0.0, 1.0)
        arch: str | None = None

        def __post_init__(self) -> None:
            check_fields(self)

A wrong type raises ``TypeError`` and an out-of-range value ``ValueError``; both name the class, the
field, the value and what was expected (``"Config.rounds must be an int, got '12' (str)"``).

What a configuration alone cannot know (how large a data set's images are) is checked when a process is
built, before it allocates anything: :func:`check_memory` against :data:`MEMORY_LIMIT_BYTES` and
:func:`check_per_class` against the real data's smallest class.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: most samples any one buffer, batch or synthetic set may be configured to hold (a count, before the
#: data set's sample size is known); the bytes are checked against :data:`MEMORY_LIMIT_BYTES` later
MAX_SAMPLES = 1_000_000
#: widest layer or latent a configuration may ask for (the networks here use 16–128)
MAX_WIDTH = 1024
#: largest random shift in pixels (more than any image here is wide; the padding grows with it)
MAX_SHIFT = 64
#: most memory one synthetic set, replay buffer or generator may take, in bytes: a run that would need
#: more is refused before anything is allocated (the machines this runs on have a few GiB to spare)
MEMORY_LIMIT_BYTES = 2 * 1024**3
#: bytes of one float32 value: every synthetic set, buffer and parameter here is float32
FLOAT_BYTES = 4

_RANGE = "range"


@dataclass(frozen=True)
class Range:
    """The values a numeric field accepts.

    :param low: smallest value (inclusive), or ``None``.
    :param high: largest value (inclusive), or ``None``.
    :param above: exclusive lower bound (``> above``), or ``None``.
    :param below: exclusive upper bound (``< below``), or ``None``.
    :param finite: refuse NaN and ±Inf (floats only).
    """

    low: float | None = None
    high: float | None = None
    above: float | None = None
    below: float | None = None
    finite: bool = True

    def __post_init__(self) -> None:
        if self.low is not None and self.above is not None or self.high is not None and self.below is not None:
            raise ValueError("a range takes low or above, and high or below, not both")

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the range (NaN never does)."""
        if isinstance(value, float) and math.isnan(value):
            return False
        return ((self.low is None or value >= self.low) and (self.above is None or value > self.above)
                and (self.high is None or value <= self.high) and (self.below is None or value < self.below))

    def describe(self) -> str:
        """``">= 1"``, ``"in [0, 1]"``, ``"in (0, 1]"``, ``"> 0"`` ..."""
        lower = f"[{self.low}" if self.low is not None else f"({self.above}" if self.above is not None else None
        upper = f"{self.high}]" if self.high is not None else f"{self.below})" if self.below is not None else None
        if lower and upper:
            return f"in {lower}, {upper}"
        if lower:
            return f">= {self.low}" if self.low is not None else f"> {self.above}"
        if upper:
            return f"<= {self.high}" if self.high is not None else f"< {self.below}"
        return "any number"


def bounded(default: Any, low: float | None = None, high: float | None = None, *, above: float | None = None,
            below: float | None = None, finite: bool = True) -> Any:
    """A dataclass field with a default and the range :func:`check_fields` holds it to.

    :param default: the default value (must lie in the range, or be ``None`` for an optional field).
    :param low: smallest accepted value (inclusive).
    :param high: largest accepted value (inclusive).
    :param above: exclusive lower bound, instead of ``low`` (e.g. learning rates: ``above=0.0``).
    :param below: exclusive upper bound, instead of ``high``.
    :param finite: refuse NaN and ±Inf (default); ``False`` only for a field documented to take them.
    """
    spec = Range(low, high, above, below, finite)
    if default is not None and not spec.contains(default):
        raise ValueError(f"default {default!r} is outside its own range ({spec.describe()})")  # a definition bug
    return field(default=default, metadata={_RANGE: spec})


def field_range(f: dataclasses.Field) -> Range | None:
    """The :class:`Range` a field was declared with (``None`` if it has none)."""
    return f.metadata.get(_RANGE)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    # the modules use ``from __future__ import annotations``: field.type is a string until resolved
    return typing.get_type_hints(cls)


def _split_optional(annotation: Any) -> tuple[Any, bool]:
    """``X | None`` → ``(X, True)``; anything else → ``(annotation, False)``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            return args[0], True
    return annotation, False


_NAMES = {int: "an int", float: "a float", bool: "True or False", str: "a str"}


def _coerce(value: Any, kind: Any) -> tuple[bool, Any]:
    """Whether ``value`` is of the declared ``kind``, and the value to store (numpy scalars become Python
    numbers, so ``dataclasses.asdict`` stays JSON-serialisable)."""
    if kind is bool:
        if isinstance(value, (bool, np.bool_)):
            return True, bool(value)
        return False, value
    if isinstance(value, (bool, np.bool_)):  # True is an int to Python, never a count or a rate here
        return False, value
    if kind is int:
        if isinstance(value, numbers.Integral):
            return True, value if type(value) is int else int(value)
        return False, value
    if kind is float:
        if isinstance(value, numbers.Real):  # an int is a fine float (lr=1); kept as given
            return True, value if type(value) in (int, float) else float(value)
        return False, value
    if isinstance(kind, type):
        return isinstance(value, kind), value
    raise TypeError(f"check_fields cannot check the annotation {kind!r}")  # a definition bug, not a user's


def check_fields(config: Any) -> None:
    """Check every field of the dataclass instance ``config`` against its declared type and range.

    Types: ``int`` (not bool, not 12.5, not ``"12"``), ``float`` (an int is accepted; not bool, not a
    str), ``bool`` (only True/False), ``str``, any other class (``isinstance``), and ``X | None`` of
    these. A float must be finite unless its range says ``finite=False``. Numpy scalars are accepted
    and stored as Python numbers.

    :param config: a dataclass instance (frozen or not).
    :raises TypeError: a value of the wrong type.
    :raises ValueError: a value outside its range, or NaN/Inf.
    """
    cls = type(config)
    hints = _hints(cls)
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        kind, optional = _split_optional(hints[f.name])
        where = f"{cls.__name__}.{f.name}"
        if value is None and optional:
            continue
        ok, stored = _coerce(value, kind)
        if not ok:
            expected = _NAMES.get(kind, f"a {getattr(kind, '__name__', kind)}") + (" or None" if optional else "")
            raise TypeError(f"{where} must be {expected}, got {value!r} ({type(value).__name__})")
        if stored is not value:
            object.__setattr__(config, f.name, stored)  # frozen dataclasses too: same value, plain type
        spec = field_range(f)
        if isinstance(stored, float) and not math.isfinite(stored) and (spec is None or spec.finite):
            raise ValueError(f"{where} must be a finite number, got {stored}")
        if spec is not None and not spec.contains(stored):
            raise ValueError(f"{where} must be {spec.describe()}{' or None' if optional else ''}, got {stored!r}")


def check_choice(config: Any, name: str, choices: tuple[str, ...]) -> None:
    """Refuse a choose-one string field whose value is not one of ``choices``.

    :param config: the configuration.
    :param name: the field.
    :param choices: the accepted values.
    """
    value = getattr(config, name)
    if value not in choices:
        raise ValueError(f"{type(config).__name__}.{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def check_memory(owner: str, what: str, count: int, values_per_item: int, fix: str) -> None:
    """Refuse ``count`` float32 items of ``values_per_item`` values each if they exceed
    :data:`MEMORY_LIMIT_BYTES` (call it before allocating them).

    :param owner: who asks, for the message (e.g. ``"SSDKDConfig"``).
    :param what: what would be allocated (``"the replay buffer"``).
    :param count: how many items.
    :param values_per_item: float32 values per item (e.g. pixels plus logits).
    :param fix: the fields to lower, for the message.
    :raises ValueError: too large.
    """
    needed = count * values_per_item * FLOAT_BYTES
    if needed > MEMORY_LIMIT_BYTES:
        raise ValueError(f"{owner}: {what} would take {needed / 1024**3:.1f} GiB ({count:,} × {values_per_item:,} "
                         f"float32 values), above the {MEMORY_LIMIT_BYTES / 1024**3:.0f} GiB limit: lower {fix}")


def check_per_class(owner: str, fields: str, per_class: int, data: Any) -> None:
    """Refuse a condensed set with more images of a class than the real data's smallest training class
    holds (then it condenses nothing, and an ``init="real"`` start cannot be drawn), then its memory.

    :param owner: the configuration's class name.
    :param fields: the fields that make ``per_class`` (``"images_per_class"``, ``"images_per_class × steps"``).
    :param per_class: synthetic images per class.
    :param data: the :class:`~distill_core.data.DatasetSplits` to condense.
    :raises ValueError: too many.
    """
    counts = np.bincount(np.asarray(data.y_train), minlength=data.num_classes)
    smallest = int(counts.min())
    if not 1 <= per_class <= smallest:
        raise ValueError(f"{owner}: {fields} = {per_class:,} images per class, but {data.name}'s smallest training "
                         f"class has {smallest}: {fields} must be in [1, {smallest}] for {data.name}")
    check_memory(owner, "the synthetic set", per_class * data.num_classes, math.prod(data.input_shape), fields)
