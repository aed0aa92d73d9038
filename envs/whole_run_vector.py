"""N one-decision runs at once: the native vector env of the fast-tier schedule ids."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from envs.lockstep_runs import LockstepVectorEnv
from envs.whole_run import WholeRunSchedule, scheduled_action, split_schedule


class WholeRunVectorEnv(LockstepVectorEnv):
    """``num_envs`` one-decision episodes of a fast-tier schedule id (:class:`envs.whole_run.WholeRunSchedule`)
    at once: one call of :meth:`step` takes a schedule per slot and runs every slot's run to its end on
    the lockstep engine, round by round together (a slot whose run is shorter waits for the others).

    ## Spaces, rewards, ends

    As the single env (``gymnasium.make`` of the same id): the action is a schedule (start and end knob
    vectors), the reward the run's return, and every step ends every episode (``terminated``).
    Autoreset is ``SAME_STEP``: the step returns the next runs' first observations, the ended runs' last
    ones and infos (``rounds``, ``final_metrics``) under ``info["final_obs"]`` and
    ``info["final_info"]``.

    ## Seeding

    ``reset(seed=s)``: slot ``i`` runs what the single env reset with ``s + i`` runs, episode after episode.

    ## Arguments

    ``gymnasium.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point", **env_kwargs)``.
    """

    def __init__(self, num_envs: int, *, inner_id: str, **env_kwargs: Any) -> None:
        single = WholeRunSchedule(gym.make(inner_id, **env_kwargs))
        template = single.env.unwrapped
        super().__init__(single, template, num_envs)
        self._k = int(np.prod(template.action_space.shape))
        self._progress_at = template.observation_names.index("progress")

    def _step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        schedules = [split_schedule(a, self._k) for a in actions]
        observations = self.runs.observations()
        rewards: list[list[float]] = [[] for _ in range(self.num_envs)]
        finals: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        running = [True] * self.num_envs
        while any(running):
            knobs = [self.runs.knobs(scheduled_action(*schedules[s], observations[s][self._progress_at])) if running[s] else None
                     for s in range(self.num_envs)]
            for slot, result in enumerate(self.runs.round(knobs)):
                if result is None:
                    continue
                observations[slot] = self.runs.observation(slot)
                rewards[slot].append(float(result["reward"]))
                if result["terminated"] or result["truncated"]:
                    running[slot] = False
                    finals[slot] = result["info"]
        infos: dict[str, Any] = {}
        for slot in range(self.num_envs):
            info = {**finals[slot], "rounds": len(rewards[slot])}
            infos = self._add_info(infos, {"final_obs": observations[slot].copy(), "final_info": info}, slot)
        self.runs.start(list(range(self.num_envs)))
        returns = np.array([sum(r) for r in rewards])
        return (self.runs.observations(), returns, np.ones(self.num_envs, dtype=bool), np.zeros(self.num_envs, dtype=bool), infos)


__all__ = ["WholeRunVectorEnv"]
