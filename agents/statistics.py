"""Statistics of policy comparisons: bootstrap and Student-t intervals of a mean, Spearman's ρ.

One home for them, so the ablation table (mean ± half-width) and the headroom benchmark (paired
differences' intervals) compute the same interval the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def bootstrap_ci(values: Sequence[float], *, resamples: int = 10_000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of ``values`` (resampled with replacement by a
    seeded numpy generator).

    :param values: e.g. the per-seed paired differences.
    :param resamples: bootstrap resamples.
    :param level: coverage.
    :param seed: the generator's seed.
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, arr.size, size=(resamples, arr.size))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def t_interval(values: Sequence[float], *, level: float = 0.95) -> tuple[float, float]:
    """Student-t confidence interval of the mean of ``values`` (``scipy.stats.t``; NaN for fewer than two).

    :param values: e.g. the per-seed paired differences.
    :param level: coverage.
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.size < 2:
        return float("nan"), float("nan")
    half = t_half_width(arr, level=level)
    return float(arr.mean() - half), float(arr.mean() + half)


def t_half_width(values: Sequence[float], *, level: float = 0.95) -> float:
    """Half-width of the Student-t confidence interval of the mean of ``values`` (0 for fewer than two:
    one value gives no spread to estimate).

    :param values: e.g. one policy's final accuracies over seeds.
    :param level: coverage.
    """
    from scipy import stats

    arr = np.asarray(values, dtype=np.float64)
    if arr.size < 2:
        return 0.0
    return float(stats.t.ppf((1 + level) / 2, arr.size - 1) * arr.std(ddof=1) / math.sqrt(arr.size))


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's ρ (``scipy.stats.spearmanr``); NaN for fewer than three pairs or a constant side."""
    from scipy import stats

    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(stats.spearmanr(a, b).statistic)
