"""Wrappers specific to distill-gym (everything else comes from Gymnasium and SB3)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class SeedCycle(gym.Wrapper):
    """Reset on a fixed list of seeds in turn, whatever seed the caller passes.

    SB3's ``EvalCallback`` resets its eval env without seeds; wrapping that env makes every evaluation
    run exactly the same held-out episodes, so evaluations are comparable across training.

    :param env: the env to wrap.
    :param seeds: the held-out seeds, used cyclically.
    """

    def __init__(self, env: gym.Env, seeds: tuple[int, ...] | list[int]) -> None:
        super().__init__(env)
        if not seeds:
            raise ValueError("SeedCycle needs at least one seed")
        self.seeds = tuple(int(s) for s in seeds)
        self._next = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        chosen = self.seeds[self._next % len(self.seeds)]
        self._next += 1
        return self.env.reset(seed=chosen, options=options)


def normalize_vec_env(env: Any, *, gamma: float = 0.99) -> Any:
    """``env`` behind SB3's ``VecNormalize`` (observations and rewards): what the RL Zoo's ``normalize: true``
    means. One helper for every caller, so an agent built by ``make_agent`` and one trained by
    ``train_agent`` see the same normalisation.

    A plain Gymnasium env is first wrapped as SB3 would wrap it itself (``Monitor`` unless present, then
    ``DummyVecEnv``), so episode statistics still reach the logs; an env already behind ``VecNormalize``
    is returned unchanged.

    :param env: a Gymnasium env or an SB3 VecEnv.
    :param gamma: the agent's discount (VecNormalize scales rewards by the spread of the discounted return).
    """
    from stable_baselines3.common.env_util import is_wrapped
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize, unwrap_vec_normalize

    if isinstance(env, VecEnv):
        if unwrap_vec_normalize(env) is not None:
            return env
        venv = env
    else:
        monitored = env if is_wrapped(env, Monitor) else Monitor(env)
        venv = DummyVecEnv([lambda: monitored])
    return VecNormalize(venv, norm_obs=True, norm_reward=True, gamma=gamma)
