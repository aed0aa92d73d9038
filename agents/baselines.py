"""Non-learning policies that share the SB3 interface (``predict``/``learn``/``save``), so an ablation
can list them beside PPO and SAC: ``random``, ``constant`` (the paper's defaults) and ``schedule``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np


class BaselinePolicy:
    """Base class: a policy with nothing to learn.

    :param env: the (possibly vectorised / wrapped) environment; only its spaces and, for knob-aware
        policies, the underlying :class:`envs.process_env.ProcessEnv` are used.
    :param seed: seeds the policy's own randomness (``random`` only).
    """

    name = "baseline"
    learns = False

    def __init__(self, env: gym.Env | Any, seed: int | None = None) -> None:
        self.action_space = env.action_space
        self.observation_space = env.observation_space
        self.seed = seed
        self._process_env = _find_process_env(env)

    def learn(self, total_timesteps: int = 0, **_: Any) -> BaselinePolicy:
        """Nothing to learn; returns ``self`` (the SB3 convention)."""
        return self

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        """Action(s) for one observation or a batch of observations (SB3's signature)."""
        obs = np.asarray(observation, dtype=np.float32)
        batched = obs.ndim == len(self.observation_space.shape) + 1
        rows = obs if batched else obs[None]
        actions = np.stack([self._act(row) for row in rows]).astype(np.float32)
        return (actions if batched else actions[0]), state

    def _act(self, observation: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def save(self, path: str | os.PathLike) -> None:
        """Write a small JSON describing the policy (there are no weights)."""
        Path(path).with_suffix(".json").write_text(json.dumps({"agent": self.name, "seed": self.seed}))


class RandomPolicy(BaselinePolicy):
    """Uniform random actions from a generator seeded with ``seed``."""

    name = "random"

    def __init__(self, env: gym.Env | Any, seed: int | None = None) -> None:
        super().__init__(env, seed)
        self._rng = np.random.default_rng(seed)

    def _act(self, observation: np.ndarray) -> np.ndarray:
        low, high = self.action_space.low, self.action_space.high
        return self._rng.uniform(low, high).astype(np.float32)


class ConstantPolicy(BaselinePolicy):
    """Always the paper's default knobs (the process's ``Knobs()``), whatever the observation."""

    name = "constant"

    def __init__(self, env: gym.Env | Any, seed: int | None = None) -> None:
        super().__init__(env, seed)
        if self._process_env is None:
            raise ValueError("the constant policy needs a distill-gym ProcessEnv (it reads the default knobs)")
        self._action = self._process_env.action_from_knobs(self._process_env.process.Knobs())

    def _act(self, observation: np.ndarray) -> np.ndarray:
        return self._action


class SchedulePolicy(BaselinePolicy):
    """A scripted schedule over the run's progress: the paper's defaults, with chosen knobs moved
    linearly from their default to a final value. Default: β annealed to 1 (as in PER) where the env has
    a β knob (SSD-KD), else the learning rate decayed tenfold (``lr_scale`` → 0.1; condensation).

    :param schedule: ``{knob: final_value}``.
    """

    name = "schedule"
    #: the default schedule of the first of these whose knobs the env has
    DEFAULT_SCHEDULES = ({"beta": 1.0}, {"lr_scale": 0.1})

    def __init__(self, env: gym.Env | Any, seed: int | None = None, schedule: dict[str, float] | None = None) -> None:
        super().__init__(env, seed)
        if self._process_env is None:
            raise ValueError("the schedule policy needs a distill-gym ProcessEnv (it reads knobs and progress)")
        penv = self._process_env
        if schedule is None:
            schedule = next((d for d in self.DEFAULT_SCHEDULES if set(d) <= set(penv.knob_names)), self.DEFAULT_SCHEDULES[0])
        self.schedule = dict(schedule)
        unknown = set(self.schedule) - set(penv.knob_names)
        if unknown:
            raise ValueError(f"schedule names unknown knobs {sorted(unknown)}; knobs are {list(penv.knob_names)}")
        if "progress" not in penv.observation_names:
            raise ValueError("the schedule policy needs a 'progress' entry in the observation")
        self._progress_index = penv.observation_names.index("progress")
        self._start = penv.action_from_knobs(penv.process.Knobs())
        end_knobs = penv.process.Knobs(**self.schedule)
        self._end = penv.action_from_knobs(end_knobs)

    def _act(self, observation: np.ndarray) -> np.ndarray:
        t = float(np.clip(observation[self._progress_index], 0.0, 1.0))
        return (1.0 - t) * self._start + t * self._end


def _find_process_env(env: Any) -> Any:
    """The :class:`ProcessEnv` under wrappers or inside a vector env (None if there is none)."""
    from envs.process_env import ProcessEnv

    candidate = env
    while hasattr(candidate, "venv"):  # VecNormalize and other VecEnv wrappers
        candidate = candidate.venv
    if getattr(candidate, "envs", None):  # DummyVecEnv / SyncVectorEnv: the first copy will do
        candidate = candidate.envs[0]
    unwrapped = getattr(candidate, "unwrapped", candidate)
    return unwrapped if isinstance(unwrapped, ProcessEnv) else None
