"""A Gymnasium vector env as a Stable-Baselines3 ``VecEnv``: how SB3 learners train on the fast tier's
native (lockstep) vector envs.

SB3's ``VecEnv`` resets an ended env in the same step and passes its last observation as
``info["terminal_observation"]``: Gymnasium's ``SAME_STEP`` autoreset, which the distill-gym vector envs
use; other modes are refused. ``seed(s)`` seeds env ``i`` with ``s + i`` at the next reset, as SB3's
own vector envs do.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices


def unbatch_info(info: dict[str, Any], index: int) -> dict[str, Any]:
    """Env ``index``'s own info out of a Gymnasium vector info (arrays with ``_key`` masks, nested dicts)."""
    out: dict[str, Any] = {}
    for key, values in info.items():
        if key.startswith("_"):
            continue
        if isinstance(values, dict):
            out[key] = unbatch_info(values, index)
        elif info.get(f"_{key}", None) is None or info[f"_{key}"][index]:
            out[key] = values[index].item() if isinstance(values[index], np.generic) else values[index]
    return out


class GymVectorToSB3(VecEnv):
    """An SB3 ``VecEnv`` over a Gymnasium ``VectorEnv`` with ``SAME_STEP`` autoreset.

    :param venv: the Gymnasium vector env (e.g. ``gymnasium.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point")``).
    """

    def __init__(self, venv: gym.vector.VectorEnv) -> None:
        mode = venv.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise ValueError(f"SB3 needs an env reset in the step that ended it (Gymnasium's SAME_STEP autoreset); "
                             f"{type(venv).__name__} uses {mode}")
        self.venv = venv
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        seeds = None if self._seeds[0] is None else [int(s) for s in self._seeds]
        observations, info = self.venv.reset(seed=seeds)
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return observations

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        observations, rewards, terminated, truncated, info = self.venv.step(self._actions)
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        final_obs = info.get("final_obs")
        final_info = info.get("final_info", {})
        for i in np.flatnonzero(dones):
            infos[i] = unbatch_info(final_info, i)
            infos[i]["terminal_observation"] = final_obs[i]
            infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        return observations, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self.venv, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any) -> list[Any]:
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result] * len(self._get_indices(indices))

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False] * len(self._get_indices(indices))

    def _get_indices(self, indices: VecEnvIndices) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        return [indices] if isinstance(indices, int) else list(indices if isinstance(indices, Iterable) else [indices])


__all__ = ["GymVectorToSB3", "unbatch_info"]
