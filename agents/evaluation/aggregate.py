"""Aggregates over training runs × tasks, computed by rliable (Agarwal et al., NeurIPS 2021): the
interquartile mean, stratified-bootstrap confidence intervals, the probability of improvement and
performance profiles. Pure functions over ``{name: scores[num_runs, num_tasks]}`` arrays.

Here a *run* is a training seed and a *task* a held-out evaluation seed (each picks a held-out
instance). Held-out seeds are themselves a sample, so the bootstrap resamples tasks as well as runs
within each task (rliable's ``task_bootstrap``): an interval then covers both the training seeds' luck
and the evaluation seeds'. A policy with no training seed (the constants, a searched oracle) is one run.

rliable's bootstrap draws from numpy's global-style ``RandomState``; every function here takes a seed
and builds its own, so the same scores give the same intervals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def _rliable() -> tuple:
    try:
        from rliable import library, metrics
    except ImportError as err:  # rliable 1.2 fails at import under pandas 3 (through arch 7.2)
        raise ImportError(f"the leaderboard's statistics need rliable ({err}): pip install 'distill-gym[eval]' "
                          "(rliable 1.2 with pandas < 3)") from err
    return library, metrics


def _estimates(score_dict: dict, func: object, *, reps: int, level: float, seed: int, task_bootstrap: bool) -> tuple:
    """rliable's stratified bootstrap, seeded. rliable draws its resampled indices from numpy's global
    generator whatever ``random_state`` says, so that generator is seeded here and restored afterwards
    (arch's warning that ``RandomState`` is deprecated is silenced: it is what rliable passes it)."""
    import warnings

    library, _ = _rliable()
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module="arch")
            return library.get_interval_estimates(score_dict, func, reps=reps, confidence_interval_size=level,
                                                  task_bootstrap=task_bootstrap, random_state=np.random.RandomState(seed))
    finally:
        np.random.set_state(saved)


def check_scores(scores: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The score arrays as float64 ``(runs, tasks)`` matrices, every one with the same tasks.

    :raises ValueError: an empty dict, a matrix that is not 2-D or has no run, task counts that differ,
        or a non-finite score (a diverged run's score must be set, not left NaN, before aggregating).
    """
    if not scores:
        raise ValueError("no scores to aggregate")
    out = {name: np.asarray(values, dtype=np.float64) for name, values in scores.items()}
    tasks = {name: m.shape[1] if m.ndim == 2 else None for name, m in out.items()}
    for name, m in out.items():
        if m.ndim != 2 or m.shape[0] == 0 or m.shape[1] == 0:
            raise ValueError(f"scores of {name!r} have shape {m.shape}: expected (runs, tasks) with at least one of each")
        if not np.isfinite(m).all():
            raise ValueError(f"scores of {name!r} have {int((~np.isfinite(m)).sum())} non-finite entries")
    if len(set(tasks.values())) != 1:
        raise ValueError(f"every policy must be scored on the same tasks; task counts differ: {tasks}")
    return out


def iqm(scores: np.ndarray) -> float:
    """The interquartile mean of every score of a ``(runs, tasks)`` matrix (rliable's ``aggregate_iqm``)."""
    _, metrics = _rliable()
    return float(metrics.aggregate_iqm(np.asarray(scores, dtype=np.float64)))


def iqm_intervals(scores: Mapping[str, np.ndarray], *, reps: int = 2000, level: float = 0.95, seed: int = 0,
                  task_bootstrap: bool = True) -> dict[str, tuple[float, float, float]]:
    """Per policy: its IQM and the stratified-bootstrap CI, ``(iqm, low, high)``.

    :param scores: ``{name: (runs, tasks)}``.
    :param reps: bootstrap replications.
    :param level: coverage.
    :param seed: the bootstrap's seed.
    :param task_bootstrap: resample tasks too (see the module).
    """
    _, metrics = _rliable()
    checked = check_scores(scores)
    points, intervals = _estimates(checked, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=reps, level=level,
                                   seed=seed, task_bootstrap=task_bootstrap)
    return {name: (float(points[name][0]), float(intervals[name][0, 0]), float(intervals[name][1, 0])) for name in checked}


def probability_of_improvement(scores: Mapping[str, np.ndarray], reference: np.ndarray, *, reps: int = 2000,
                               level: float = 0.95, seed: int = 0,
                               task_bootstrap: bool = True) -> dict[str, tuple[float, float, float]]:
    """Per policy: P(its score > the reference's on a task), averaged over tasks (Mann–Whitney over runs;
    ties count half), with rliable's CI, ``(p, low, high)``: runs resampled within each task,
    independently for the two (rliable does not resample tasks for a comparison, whatever
    ``task_bootstrap`` says). A reference with one run is a deterministic policy such as the paper's
    constants.

    :param scores: ``{name: (runs, tasks)}``.
    :param reference: ``(runs, tasks)`` of the policy compared with.
    """
    _, metrics = _rliable()
    checked = check_scores({**scores, "\0reference": reference})
    ref = checked.pop("\0reference")
    pairs = {name: [m, ref] for name, m in checked.items()}
    points, intervals = _estimates(pairs, metrics.probability_of_improvement, reps=reps, level=level, seed=seed,
                                   task_bootstrap=task_bootstrap)
    return {name: (float(np.ravel(points[name])[0]), *map(float, np.ravel(intervals[name])[:2])) for name in pairs}


def performance_profiles(scores: Mapping[str, np.ndarray], taus: Sequence[float], *, reps: int = 2000,
                         level: float = 0.95, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per policy: the share of its runs × tasks scoring above each threshold ``tau`` (the score
    distribution, rliable's ``create_performance_profile``) and its stratified-bootstrap CI ``(2, taus)``.

    :param taus: the thresholds, in the scores' unit.
    """
    library, _ = _rliable()
    checked = check_scores(scores)
    thresholds = np.asarray(taus, dtype=np.float64)
    # create_performance_profile takes no random_state: the same estimate through get_interval_estimates, seeded
    profiles, cis = _estimates(checked, lambda x: library.score_distributions(x, thresholds), reps=reps, level=level,
                               seed=seed, task_bootstrap=False)
    return {name: (np.asarray(profiles[name]), np.asarray(cis[name])) for name in checked}
