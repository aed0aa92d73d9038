"""N SSD-KD runs stepped as one batch: the native vector env of the fast-tier (-v1) ids."""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.lockstep_runs import LockstepVectorEnv
from envs.process_env import ProcessEnv


class SSDKDVectorEnv(LockstepVectorEnv):
    """``num_envs`` runs of a fast-tier SSD-KD id advanced one round at a time, together, on the
    lockstep engine (:mod:`distill_core.ssdkd.lockstep`): one call of :meth:`step` is one round of every run.

    ## Spaces

    ``single_action_space`` and ``single_observation_space`` are the single env's (``gymnasium.make`` of
    the same id: see its docstring for the tables); ``action_space`` and ``observation_space`` batch them.

    ## Rewards, ends and autoreset

    As the single env, slot by slot. Autoreset is Gymnasium's ``SAME_STEP`` mode: a slot whose run ended
    starts its next run in the same step; the step returns the new run's first observation, and the
    ended run's last observation and info under ``info["final_obs"]`` and ``info["final_info"]`` (with
    ``final_metrics``: the student's test accuracy and the instance).

    ## Seeding

    ``reset(seed=s)`` seeds slot ``i`` with ``s + i`` (or takes a list): slot ``i`` then runs the same
    runs as the single env reset with seed ``s + i`` and reset again after each episode.

    ## Arguments

    ``gymnasium.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point", **env_kwargs)``, with the
    single env's keyword arguments.

    :param num_envs: N.
    :param env_cls: the single env class of the id (its registered entry point).
    :param env_kwargs: the single env's keyword arguments.
    """

    def __init__(self, num_envs: int, *, env_cls: type[ProcessEnv], **env_kwargs: Any) -> None:
        template = env_cls(**env_kwargs)
        super().__init__(template, template, num_envs)

    def _step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        results = self.runs.round([self.runs.knobs(a) for a in actions])
        observations = self.runs.observations()
        rewards = np.zeros(self.num_envs)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        infos: dict[str, Any] = {}
        ended = []
        for slot, result in enumerate(results):
            rewards[slot] = result["reward"]
            terminated[slot], truncated[slot] = result["terminated"], result["truncated"]
            if terminated[slot] or truncated[slot]:
                ended.append(slot)
                infos = self._add_info(infos, {"final_obs": observations[slot].copy(), "final_info": result["info"]}, slot)
            else:
                infos = self._add_info(infos, {"run_seed": result["info"]["run_seed"]}, slot)
        if ended:
            self.runs.start(ended)
            for slot in ended:
                observations[slot] = self.runs.observation(slot)
        return observations, rewards, terminated, truncated, infos


__all__ = ["SSDKDVectorEnv"]
