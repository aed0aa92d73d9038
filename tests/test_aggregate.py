"""rliable's aggregates as the leaderboard computes them (agents/evaluation/aggregate.py), checked on
hand-made score arrays against rliable itself and against values worked out by hand."""

import numpy as np
import pytest
from rliable import library, metrics

from agents.evaluation.aggregate import check_scores, iqm, iqm_intervals, performance_profiles, probability_of_improvement

RNG = np.random.default_rng(7)
SCORES = {"learner": RNG.normal(1.5, 1.0, (5, 12)), "oracle": RNG.normal(0.5, 1.0, (1, 12))}


def test_iqm_is_the_mean_of_the_middle_half():
    scores = np.array([[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 100.0]])  # the outlier is trimmed
    assert iqm(scores) == pytest.approx(np.mean([2.0, 3.0, 4.0, 5.0]))
    assert iqm(SCORES["learner"]) == pytest.approx(metrics.aggregate_iqm(SCORES["learner"]))


def test_iqm_intervals_are_rliables_stratified_bootstrap_and_seeded():
    ours = iqm_intervals(SCORES, reps=300, seed=3)
    assert ours == iqm_intervals(SCORES, reps=300, seed=3)  # the same seed, the same interval
    assert ours != iqm_intervals(SCORES, reps=300, seed=4)
    np.random.seed(3)  # rliable resamples from numpy's global generator
    points, cis = library.get_interval_estimates(SCORES, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=300,
                                                 task_bootstrap=True, random_state=np.random.RandomState(3))
    for name, (point, low, high) in ours.items():
        assert point == pytest.approx(points[name][0]) and (low, high) == pytest.approx(tuple(cis[name][:, 0]))
        assert low <= point <= high


def test_a_constant_score_has_a_zero_width_interval():
    point, low, high = iqm_intervals({"flat": np.full((3, 6), 2.5)}, reps=200)["flat"]
    assert point == low == high == 2.5


def test_probability_of_improvement_by_hand():
    reference = np.array([[0.5, 0.5, 0.5, 0.5]])  # one deterministic run, as the paper's constants
    better = np.array([[0.9, 0.9, 0.9, 0.9], [0.8, 0.6, 0.7, 0.9]])
    mixed = np.array([[0.9, 0.1, 0.5, 0.9], [0.9, 0.1, 0.5, 0.1]])  # per task: 1, 0, ties 0.5, 0.5
    result = probability_of_improvement({"better": better, "mixed": mixed}, reference, reps=200)
    assert result["better"][0] == pytest.approx(1.0)
    assert result["mixed"][0] == pytest.approx((1.0 + 0.0 + 0.5 + 0.5) / 4)
    assert result["mixed"][0] == pytest.approx(metrics.probability_of_improvement(mixed, reference))
    assert result["better"][1:] == pytest.approx((1.0, 1.0))


def test_performance_profile_is_the_share_above_each_threshold():
    scores = {"a": np.array([[-1.0, 0.5, 2.0, 3.0]])}
    profile, ci = performance_profiles(scores, [-2.0, 0.0, 2.5, 5.0], reps=100)["a"]
    assert profile.tolist() == pytest.approx([1.0, 0.75, 0.25, 0.0])
    assert ci.shape == (2, 4) and (ci[0] <= profile + 1e-12).all() and (profile <= ci[1] + 1e-12).all()


@pytest.mark.parametrize("scores, message", [
    ({}, "no scores"),
    ({"a": np.zeros(4)}, "shape"),
    ({"a": np.zeros((0, 4))}, "shape"),
    ({"a": np.array([[1.0, np.nan]])}, "non-finite"),
    ({"a": np.zeros((2, 3)), "b": np.zeros((2, 4))}, "same tasks"),
])
def test_bad_score_arrays_are_named(scores, message):
    with pytest.raises(ValueError, match=message):
        check_scores(scores)
