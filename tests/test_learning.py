"""The agent tests show learning, not only that training runs: a tiny task on which each learner must beat
its untrained self.

The task is a one-step contextual bandit (episodes of one step, so every registry learner applies,
RecurrentPPO too): the observation is a context ``c`` drawn uniformly from ``[-1, 1]²``, the action a point
of ``[-1, 1]²`` and the reward ``−‖a − (W c + b)‖²``, best 0. Each learner is built by
:func:`agents.registry.make_agent` with small overrides, its deterministic policy scored on a fixed grid of
contexts before training (its untrained self, same seed) and after ``learn``, and it must

* recover at least half of the gap between its untrained self and the optimum (0), and
* lose less than half of what the best context-free action (``a = b``) loses, i.e. read its observation:
  a learner that found only the mean target would recover about half of the gap and fail here.

Measured on 10 seeds per learner (one thread, the overrides of :func:`budget`): every learner recovered
0.85-0.99 of the gap (TRPO and ARS the least) and ended at a loss of at most 0.043, against 0.16 for the
best context-free action (the threshold is 0.08) and 0.23-0.45 for the untrained policies; 0.4-2.2 s of
training each. A learner whose update is disabled (learning rate 0; TRPO's policy step is sized by
``target_kl``, so 0 there) stays where it started and fails the same check, on 3 seeds for every learner
(CrossQ's then drifts worse: its batch-renorm statistics still move).
"""

from __future__ import annotations

import importlib.util
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from agents.registry import LEARNING_AGENTS, make_agent

#: the target action of context c is W c + b (inside [-1, 1]² for every context)
W = np.array([[0.4, -0.2], [0.2, 0.4]], dtype=np.float32)
B = np.array([0.3, -0.2], dtype=np.float32)
#: evaluation contexts: an 11 × 11 grid over [-1, 1]² (its mean target is b)
EVAL_CONTEXTS = np.stack(np.meshgrid(np.linspace(-1, 1, 11), np.linspace(-1, 1, 11)), axis=-1).reshape(-1, 2)
EVAL_CONTEXTS = EVAL_CONTEXTS.astype(np.float32)


class ContextualTarget(gym.Env):
    """One step: observe a context ``c`` in ``[-1, 1]²``, act ``a`` in ``[-1, 1]²``, get ``−‖a − (W c + b)‖²``
    (the reward of the whole episode)."""

    def __init__(self) -> None:
        self.observation_space = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        self.context = np.zeros(2, dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.context = self.np_random.uniform(-1.0, 1.0, 2).astype(np.float32)
        return self.context.copy(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        reward = float(-loss(np.asarray(action, dtype=np.float32)[None], self.context[None])[0])
        return self.context.copy(), reward, True, False, {}


def loss(actions: np.ndarray, contexts: np.ndarray) -> np.ndarray:
    """``‖a − (W c + b)‖²`` per row, the action clipped to the action space first."""
    return np.sum((np.clip(actions, -1.0, 1.0) - (contexts @ W.T + B)) ** 2, axis=1)


def mean_loss(agent: Any) -> float:
    """The mean loss of ``agent``'s deterministic policy on :data:`EVAL_CONTEXTS` (0 is optimal)."""
    actions, _ = agent.predict(EVAL_CONTEXTS, deterministic=True)
    return float(np.mean(loss(np.asarray(actions, dtype=np.float32), EVAL_CONTEXTS)))


class _Oracle:
    """The optimal policy, to check the scoring."""

    @staticmethod
    def predict(observation: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
        return observation @ W.T + B, None


#: the best context-free action's loss (the mean target, b): E‖W c‖² on the grid
CONTEXT_FREE_LOSS = float(np.mean(loss(np.broadcast_to(B, EVAL_CONTEXTS.shape), EVAL_CONTEXTS)))


def budget(name: str) -> tuple[dict[str, Any], int]:
    """``(hyperparameter overrides, timesteps)`` that train ``name`` in about a second or two on one thread.

    On-policy learners start with a narrow Gaussian (std e^-1: the default std 1 is mostly noise against
    targets within ±0.9); off-policy ones update every step from step 64; TD3 and DDPG get Gaussian action
    noise (SB3 gives them none); CrossQ updates its actor every critic step and its batch-renorm statistics
    at momentum 0.1 (at the default 0.01 the evaluation-mode statistics lag the training ones and the
    deterministic policy recovered only 0.2-0.7 of the gap); ARS's linear policy gets a bias (the target has one).
    """
    from stable_baselines3.common.noise import NormalActionNoise

    on_policy = dict(learning_rate=3e-3, policy_kwargs=dict(net_arch=[32, 32], log_std_init=-1.0))
    off_policy = dict(learning_starts=64, batch_size=64, train_freq=1, gradient_steps=1, learning_rate=3e-3,
                      buffer_size=10_000, policy_kwargs=dict(net_arch=[32, 32]))
    noise = dict(action_noise=NormalActionNoise(np.zeros(2), np.full(2, 0.2)))
    table: dict[str, tuple[dict[str, Any], int]] = {
        "ppo": ({**on_policy, "n_steps": 64, "batch_size": 64, "n_epochs": 10}, 1024),
        "a2c": ({**on_policy, "n_steps": 16}, 1024),
        "trpo": ({"n_steps": 128, "batch_size": 64, "policy_kwargs": on_policy["policy_kwargs"]}, 1024),
        "recurrent_ppo": ({**on_policy, "n_steps": 64, "batch_size": 64, "n_epochs": 10,
                           "policy_kwargs": dict(net_arch=[32], lstm_hidden_size=16, log_std_init=-1.0)}, 1024),
        "sac": (off_policy, 400),
        "tqc": (off_policy, 400),
        "crossq": ({**off_policy, "policy_delay": 1,
                    "policy_kwargs": dict(net_arch=[32, 32], batch_norm_momentum=0.1)}, 400),
        "td3": ({**off_policy, **noise}, 400),
        "ddpg": ({**off_policy, **noise}, 400),
        "ars": (dict(n_delta=8, n_top=4, learning_rate=0.05, delta_std=0.1, policy_kwargs=dict(with_bias=True)), 1024),
    }
    return table[name]


#: overrides that switch a learner's update off (TRPO's policy step is sized by target_kl, not the rate)
DISABLED: dict[str, dict[str, Any]] = {"trpo": {"target_kl": 0.0}}


def before_and_after(name: str, seed: int, disable: bool = False) -> tuple[float, float]:
    """``name``'s mean loss untrained and after its budget, built with ``seed``."""
    module = LEARNING_AGENTS[name][0]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{name} needs {module}")
    overrides, timesteps = budget(name)
    if disable:
        overrides = {**overrides, **DISABLED.get(name, {"learning_rate": 0.0})}
    agent = make_agent(name, ContextualTarget(), seed=seed, hyperparams=overrides, device="cpu")
    before = mean_loss(agent)
    agent.learn(total_timesteps=timesteps)
    return before, mean_loss(agent)


def shortfalls(before: float, after: float) -> list[str]:
    """What keeps a before/after pair from showing learning (empty: it shows learning)."""
    found = []
    if not after <= 0.5 * before:
        found.append(f"recovered {1 - after / before:.2f} of the gap to the optimum (needs 0.5): "
                     f"loss {before:.4f} -> {after:.4f}")
    if not after < 0.5 * CONTEXT_FREE_LOSS:
        found.append(f"loss {after:.4f} is not under half the best context-free action's ({CONTEXT_FREE_LOSS:.4f})")
    return found


def test_the_task_has_a_gap_to_close():
    # ‖W c‖² = 0.2 ‖c‖² (W's columns are orthogonal), and the grid's mean c² is 0.4 per coordinate
    assert CONTEXT_FREE_LOSS == pytest.approx(0.16)
    zero = float(np.mean(loss(np.zeros_like(EVAL_CONTEXTS), EVAL_CONTEXTS)))
    assert zero == pytest.approx(0.16 + float(B @ B))  # the untrained policies act near 0
    assert np.abs(EVAL_CONTEXTS @ W.T + B).max() < 1.0  # every target is reachable: the optimum is 0
    assert mean_loss(_Oracle()) == pytest.approx(0.0, abs=1e-12)
    assert shortfalls(zero, 0.0) == []
    assert len(shortfalls(zero, CONTEXT_FREE_LOSS)) == 2  # the mean target alone is not learning the task


@pytest.mark.parametrize("name", list(LEARNING_AGENTS))
def test_every_learner_beats_its_untrained_self(name):
    before, after = before_and_after(name, seed=0)
    assert shortfalls(before, after) == [], f"{name} did not learn the tiny task"


@pytest.mark.parametrize("name", ["ppo", "sac", "trpo", "ars"])
def test_a_learner_whose_update_is_off_fails_the_check(name):
    before, after = before_and_after(name, seed=0, disable=True)
    assert after == pytest.approx(before, abs=1e-6)  # nothing moved the policy
    assert shortfalls(before, after)
