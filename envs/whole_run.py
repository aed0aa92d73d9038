"""One decision per run: a whole schedule of knobs chosen at the start, acted out round by round.

A wrapper over any :class:`envs.process_env.ProcessEnv` id. The per-round env asks a policy for a knob
vector every round, and a learner explores by perturbing each of them; the effect of one round's
perturbation on the run's outcome is a small part of an episode's noisy return. Here the learner picks
two knob vectors once, at the start, and the run follows their interpolation over its progress (what
the headroom benchmark's ``schedule`` search does): each episode explores one whole schedule, and its
return is that schedule's effect. It is a contextual bandit over schedules, conditioned on what is known
before the run starts (the first observation: e.g. the scenario's buffer share and round budget).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.process_env import ProcessEnv


def scheduled_action(start: np.ndarray, end: np.ndarray, progress: float) -> np.ndarray:
    """A schedule's action at a point of the run: ``(1 − t)·start + t·end``, ``t`` the run's progress
    clipped to ``[0, 1]`` (linear in action space, so geometric in a log-scale knob's value)."""
    t = float(np.clip(progress, 0.0, 1.0))
    return ((1.0 - t) * start + t * end).astype(np.float32)


def split_schedule(action: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``(start, end)`` actions of a schedule action of ``2k`` numbers, clipped to ``[-1, 1]``
    (``ValueError`` on a wrong size or a non-finite entry)."""
    vector = np.asarray(action, dtype=np.float32).reshape(-1)
    if vector.shape != (2 * k,):
        raise ValueError(f"a schedule action has 2 × {k} numbers (start and end of {k} knobs), got {vector.size}")
    if not np.isfinite(vector).all():
        raise ValueError(f"the schedule action must be finite, got {vector.tolist()}")
    vector = np.clip(vector, -1.0, 1.0)
    return vector[:k], vector[k:]


class WholeRunSchedule(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """A per-round distill-gym env as a one-step env whose action is a schedule of its knobs.

    ## Action space

    ``Box(-1, 1, (2k,), float32)`` for an inner env with ``k`` action entries: the first ``k`` are the
    action at progress 0 (``start:<name>``), the last ``k`` the action at progress 1 (``end:<name>``).
    Round ``r`` acts ``(1 − t)·start + t·end`` with ``t`` the observation's ``progress`` before that
    round (as :class:`agents.baselines.ProgressSchedulePolicy`). The zero action is the paper's
    constants in every round.

    ## Observation space

    The inner env's: its observation before the first round at reset, its last one after the step.

    ## Rewards

    The run's return in the inner env (the sum of its rewards, with its ``reward_normalization``).

    ## Starting state

    The inner env's reset (the seed draws the scenario and every random number of the run).

    ## Episode end

    Terminated after one step, whether the run spent its budget or diverged
    (``info["diverged"]`` as the inner env's last step says). ``info`` is the inner env's last step's,
    plus ``rounds`` (steps taken) and ``round_rewards``.

    :param env: a per-round env (``gymnasium.make`` of a ``DistillGym`` process id).
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)  # so gymnasium can recreate it from its spec
        gym.Wrapper.__init__(self, env)
        inner = env.unwrapped
        if not isinstance(inner, ProcessEnv):
            raise TypeError(f"WholeRunSchedule wraps a distill-gym ProcessEnv, got {type(inner).__name__}")
        if "progress" not in inner.observation_names:
            raise ValueError(f"WholeRunSchedule needs a 'progress' entry in the observation of {type(inner).__name__}")
        self._progress_at = inner.observation_names.index("progress")
        self._k = int(np.prod(env.action_space.shape))
        self.action_space = spaces.Box(-1.0, 1.0, (2 * self._k,), dtype=np.float32)
        self.observation_space = env.observation_space

    @property
    def action_names(self) -> tuple[str, ...]:
        """``start:<name>`` then ``end:<name>`` for each of the inner env's action entries."""
        names = self.env.unwrapped.action_names
        return tuple(f"start:{n}" for n in names) + tuple(f"end:{n}" for n in names)

    def split(self, action: Any) -> tuple[np.ndarray, np.ndarray]:
        """The ``(start, end)`` inner actions of a schedule action (``ValueError`` on a wrong shape or NaN)."""
        if np.shape(action) != self.action_space.shape:
            raise ValueError(f"a schedule action has shape {self.action_space.shape} (start and end of "
                             f"{self._k} knobs: {', '.join(self.action_names)}), got {np.shape(action)}")
        return split_schedule(action, self._k)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        observation, info = self.env.reset(seed=seed, options=options)
        self._observation = observation
        return observation, info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        start, end = self.split(action)
        observation, rewards, info = self._observation, [], {}
        while True:
            action = scheduled_action(start, end, observation[self._progress_at])
            observation, reward, terminated, truncated, info = self.env.step(action)
            rewards.append(float(reward))
            if terminated or truncated:
                break
        self._observation = observation
        return observation, sum(rewards), True, False, {**info, "rounds": len(rewards), "round_rewards": rewards}


def make_whole_run_env(inner_id: str, **kwargs: Any) -> WholeRunSchedule:
    """``WholeRunSchedule(gymnasium.make(inner_id, **kwargs))``: the entry point of the ``-Schedule-`` ids."""
    return WholeRunSchedule(gym.make(inner_id, **kwargs))
