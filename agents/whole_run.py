"""A policy trained on a one-decision-per-run env (:class:`envs.whole_run.WholeRunSchedule`) acting on the
per-round env it wraps, so that it is evaluated beside every other policy on the same env and seeds."""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.whole_run import scheduled_action, split_schedule


class WholeRunPolicy:
    """Acts a schedule policy out round by round: at a run's first round (the observation's ``progress``
    is 0) it asks ``schedule_policy`` for the schedule ``(start, end)`` from that observation, as the
    whole-run env did, and then acts ``(1 − t)·start + t·end`` every round.

    :param schedule_policy: anything with SB3's ``predict`` whose actions are a
        :class:`~envs.whole_run.WholeRunSchedule`'s (a loaded PPO, with its VecNormalize statistics).
    :param env: the per-round env (its ``progress`` entry and action size are read from it).
    """

    def __init__(self, schedule_policy: Any, env: Any) -> None:
        from agents.baselines import find_process_env

        penv = find_process_env(env)
        if penv is None or "progress" not in penv.observation_names:
            raise ValueError("WholeRunPolicy acts on a distill-gym ProcessEnv with a 'progress' entry in its observation")
        self.schedule_policy = schedule_policy
        self._progress_at = penv.observation_names.index("progress")
        self._k = int(np.prod(penv.action_space.shape))
        self.observation_space = penv.observation_space
        self.action_space = penv.action_space
        self._schedules: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        """Actions for one observation or a batch (one schedule remembered per row)."""
        obs = np.asarray(observation, dtype=np.float32)
        batched = obs.ndim == len(self.observation_space.shape) + 1
        rows = obs if batched else obs[None]
        actions = []
        for i, row in enumerate(rows):
            if row[self._progress_at] <= 0.0 or i not in self._schedules:
                schedule, _ = self.schedule_policy.predict(row, deterministic=deterministic)
                self._schedules[i] = split_schedule(schedule, self._k)
            actions.append(scheduled_action(*self._schedules[i], row[self._progress_at]))
        stacked = np.stack(actions).astype(np.float32)
        return (stacked if batched else stacked[0]), state
