"""N one-decision runs at once: the native vector env of the fast-tier schedule ids."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.lockstep_runs import LockstepRuns
from envs.whole_run import WholeRunSchedule, scheduled_action, split_schedule


class WholeRunVectorEnv(VectorEnv):
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

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, num_envs: int, *, inner_id: str, **env_kwargs: Any) -> None:
        single = WholeRunSchedule(gym.make(inner_id, **env_kwargs))
        template = single.env.unwrapped
        self.runs = LockstepRuns(template, num_envs)
        self.num_envs = num_envs
        self._k = int(np.prod(template.action_space.shape))
        self._progress_at = template.observation_names.index("progress")
        self.single_action_space = single.action_space
        self.single_observation_space = single.observation_space
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.observation_names = template.observation_names
        self.action_names = single.action_names
        self._started = False

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed if isinstance(seed, int) else None)
        self.runs.seed(seed)
        self.runs.start(list(range(self.num_envs)))
        self._started = True
        return self.runs.observations(), {"run_seed": np.array(self.runs.run_seeds)}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("call reset() before step()")
        actions = np.asarray(actions, dtype=np.float32)
        if actions.shape != self.action_space.shape:
            raise ValueError(f"actions have shape {actions.shape}, expected {self.action_space.shape} (one schedule per env)")
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
