"""Adding a method is one file: a toy process (gradient descent on a 1-D quadratic, the step size as
its knob) becomes a Gymnasium env that passes both env checkers, with nothing registered. The same toy
measures what ``reward_normalization="constant"`` costs: one reference run per distinct run seed."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from distill_core.process import StatsBuilder, StepwiseProcess, Update, knob
from envs.process_env import ProcessEnv


@dataclass(frozen=True)
class QuadraticConfig:
    steps: int = 8


@dataclass(frozen=True)
class QuadraticKnobs:
    lr: float = knob(0.1, 0.01, 1.0, "log", "gradient-descent step size")


class QuadraticProcess(StepwiseProcess):
    """Minimise x² from a seeded start; the score is −x², so the return is the run's total gain."""

    Knobs = QuadraticKnobs
    budget_field = "steps"

    def __init__(self, config: QuadraticConfig = QuadraticConfig()) -> None:
        super().__init__(config)
        self.x = 0.0
        self.starts = 0

    def _start(self, seed: int) -> None:
        self.starts += 1
        self.x = float(np.random.default_rng(seed).normal(0.0, 2.0))

    def _update(self, knobs: QuadraticKnobs) -> Update:
        self.x -= knobs.lr * 2.0 * self.x
        return Update(diverged=not math.isfinite(self.x), extras={"x": self.x})

    def score(self) -> float:
        return -self.x**2

    def _observe(self, builder: StatsBuilder) -> None:
        builder.add("x", math.tanh(self.x), -1.0, 1.0)


class QuadraticEnv(ProcessEnv):
    process_cls = QuadraticProcess
    config_cls = QuadraticConfig


def test_a_toy_process_passes_both_env_checkers():
    env = QuadraticEnv(render_mode="rgb_array", steps=5)
    check_env(env)
    sb3_check_env(env, warn=True)
    env.reset(seed=0)
    assert env.render().dtype == np.uint8  # the default picture: the statistics as bars
    assert env.action_names == ("lr",) and env.observation_names == ("x", "progress", "last_gain")


def test_the_lifecycle_telescopes_and_guards():
    process = QuadraticProcess()
    with pytest.raises(RuntimeError, match=r"call reset\(seed\) before step\(\)"):
        process.step()
    start = process.reset(3).extras["score"]
    gains = [process.step(process.Knobs(lr=0.25)).gain for _ in range(process.budget)]
    assert process.done and sum(gains) == pytest.approx(process.score() - start)
    assert set(process.stats().timings) >= {"start_seconds", "update_seconds", "score_seconds"}
    with pytest.raises(RuntimeError, match="the run is over"):
        process.step()
    with pytest.raises(ValueError, match=r"lr=2.0 is outside its range \[0.01, 1.0\]"):
        process.reset(3)
        process.step(process.Knobs(lr=2.0))


def test_constant_normalisation_costs_one_reference_run_per_distinct_seed():
    env = QuadraticEnv(reward_normalization="constant", steps=3)
    counted = []
    for seed in (1, 2, 1, 2, 1):
        env.reset(seed=seed)
        total = 0.0
        for _ in range(3):
            _, reward, terminated, truncated, _ = env.step(np.zeros(1, np.float32))
            total += reward
        counted.append(env.reference_runs)
    assert counted == [1, 2, 2, 2, 2]
    env.reset(seed=1)
    assert env.reference_runs == 2  # resetting alone makes no reference run


def test_paired_reward_is_the_gain_over_the_paper_in_each_round():
    plain, paired = QuadraticEnv(steps=4), QuadraticEnv(reward_normalization="paired", steps=4)
    action = plain.action_from_knobs(QuadraticKnobs(lr=0.3))
    for env in (plain, paired):
        env.reset(seed=5)
    reference = QuadraticEnv(steps=4)
    reference.reset(seed=5)
    for _ in range(4):
        gain = plain.step(action)[1]
        _, reward, *_ = paired.step(action)
        paper_gain = reference.step(np.zeros(1, np.float32))[1]
        assert reward == pytest.approx(gain - paper_gain)
    # the paper's own action earns exactly zero in every round: the seed's luck cancels
    paired.reset(seed=6)
    assert all(paired.step(np.zeros(1, np.float32))[1] == pytest.approx(0.0, abs=1e-12) for _ in range(4))
    assert paired.reference_runs == 2


def test_a_seed_pool_reuses_a_few_runs_and_their_reference():
    env = QuadraticEnv(reward_normalization="paired", seed_pool=3, steps=2)
    run_seeds = set()
    env.reset(seed=0)
    for _ in range(30):
        run_seeds.add(env.reset()[1]["run_seed"])
        env.step(np.zeros(1, np.float32))
    assert run_seeds <= {0, 1, 2} and len(run_seeds) == 3
    assert env.reference_runs == 3  # once per pooled seed, however many episodes
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="seed_pool must be a positive int"):
            QuadraticEnv(seed_pool=bad)
