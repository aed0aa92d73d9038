"""Paired statistics of policy comparisons on the same seeds: per-seed differences to the baseline, their
bootstrap and Student-t intervals, win rates, Spearman's ρ. (Aggregates over training runs × tasks —
IQM, stratified bootstrap, probability of improvement — are rliable's: :mod:`agents.evaluation.aggregate`.)
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.evaluation.episodes import BASELINE, METRIC, OBJECTIVE


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


def paired_differences(rows: Sequence[dict[str, Any]], policy: str, baseline: str = BASELINE,
                       metric: str = METRIC) -> tuple[tuple[int, ...], np.ndarray]:
    """``metric`` of ``policy`` minus that of ``baseline``, seed by seed.

    :returns: the seeds (sorted) and the differences.
    :raises ValueError: the two were not evaluated on the same seeds (a difference would not be paired).
    """
    by = {name: {row["seed"]: float(row.get(metric, float("nan"))) for row in rows if row["policy"] == name}
          for name in (policy, baseline)}
    if set(by[policy]) != set(by[baseline]):
        raise ValueError(f"{policy} and {baseline} were evaluated on different seeds "
                         f"({sorted(by[policy])} vs {sorted(by[baseline])}): the difference would not be paired")
    seeds = tuple(sorted(by[policy]))
    return seeds, np.array([by[policy][s] - by[baseline][s] for s in seeds])


@dataclass
class PolicySummary:
    """One policy on the held-out seeds (accuracies as fractions; differences to the baseline paired).

    :param wins: the share of seeds on which it beat the baseline (ties count half).
    :param objective_mean: the mean of the search objective (validation accuracy), NaN when not reported.
    """

    policy: str
    episodes: int
    metric_mean: float
    diff_mean: float
    diff_bootstrap: tuple[float, float]
    diff_t: tuple[float, float]
    wins: float
    objective_mean: float
    return_mean: float
    diverged: int
    seconds_per_episode: float


def summarise(rows: Sequence[dict[str, Any]], *, baseline: str = BASELINE, metric: str = METRIC,
              objective: str = OBJECTIVE, resamples: int = 10_000, seed: int = 0) -> list[PolicySummary]:
    """One :class:`PolicySummary` per policy, in the order the rows name them.

    :param rows: per (policy, seed) rows of :func:`run_cell`.
    :param baseline: the policy every other is compared with.
    :param metric: the compared final metric.
    :param objective: the search objective, reported beside it.
    :param resamples: bootstrap resamples.
    :param seed: the bootstrap's seed (the same for every policy).
    """
    by_policy: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_policy[row["policy"]].append(row)
    summaries = []
    for name, own in by_policy.items():
        _, diffs = paired_differences(rows, name, baseline, metric)
        summaries.append(PolicySummary(
            name, len(own), mean_of(r.get(metric) for r in own), float(diffs.mean()) if diffs.size else float("nan"),
            bootstrap_ci(diffs, resamples=resamples, seed=seed), t_interval(diffs),
            float(np.mean(np.sign(diffs) * 0.5 + 0.5)) if diffs.size else float("nan"),
            mean_of(r.get(objective) for r in own), mean_of(r["return"] for r in own),
            sum(bool(r.get("diverged")) for r in own), mean_of(r["seconds"] for r in own)))
    return summaries


def mean_of(values: Any) -> float:
    """The mean of ``values`` with ``None`` as NaN (NaN for none)."""
    arr = np.array([float("nan") if v is None else float(v) for v in values], dtype=np.float64)
    return float(arr.mean()) if arr.size else float("nan")


def rank_correlations(rows: Sequence[dict[str, Any]], metric: str = METRIC) -> dict[str, Any]:
    """Spearman's ρ between the (data-free) return and ``metric``: over the policies' means and over
    single episodes, with how many points each."""
    by_policy: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_policy[row["policy"]].append(row)
    means = [(mean_of(r["return"] for r in own), mean_of(r.get(metric) for r in own)) for own in by_policy.values()]
    return {
        "over_policies": spearman([m[0] for m in means], [m[1] for m in means]), "policies": len(means),
        "over_episodes": spearman([r["return"] for r in rows], [r.get(metric, float("nan")) for r in rows]),
        "episodes": len(rows),
    }
