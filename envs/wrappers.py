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
