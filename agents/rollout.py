"""Episode rollouts, recorded as JSON-lines traces that can be replayed to check they reproduce
(CompilerGym-style): a trace holds the env id and configuration, the seed and every action, so
re-running the actions on a fresh env must give the same observations and rewards."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np


@dataclass
class EpisodeTrace:
    """One recorded episode.

    :param env_id: registered id.
    :param env_kwargs: the keyword arguments given to ``gymnasium.make``.
    :param seed: the ``reset`` seed.
    :param agent: agent name (or model path).
    :param actions: one action per step.
    :param observations: the reset observation, then one per step.
    :param rewards: one per step.
    :param final: end-of-episode metrics (return, steps, flags, final student metrics).
    """

    env_id: str
    env_kwargs: dict[str, Any]
    seed: int
    agent: str
    actions: list[list[float]] = field(default_factory=list)
    observations: list[list[float]] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)

    @property
    def episode_return(self) -> float:
        return float(sum(self.rewards))


def run_episode(env: gym.Env, agent: Any, seed: int, *, env_id: str, env_kwargs: dict[str, Any] | None = None,
                agent_name: str = "", deterministic: bool = True) -> EpisodeTrace:
    """Run one episode of ``agent`` (anything with SB3's ``predict``) on ``env`` from ``reset(seed=seed)``.

    Recurrent policies get their hidden state and ``episode_start`` flags, as SB3 expects.
    """
    trace = EpisodeTrace(env_id, dict(env_kwargs or {}), int(seed), agent_name)
    start = time.perf_counter()
    obs, _ = env.reset(seed=seed)
    trace.observations.append(obs.tolist())
    state, episode_start = None, np.ones((1,), dtype=bool)
    terminated = truncated = False
    info: dict[str, Any] = {}
    while not (terminated or truncated):
        action, state = agent.predict(obs, state=state, episode_start=episode_start, deterministic=deterministic)
        episode_start = np.zeros((1,), dtype=bool)
        action = np.asarray(action, dtype=np.float32).reshape(env.action_space.shape)
        obs, reward, terminated, truncated, info = env.step(action)
        trace.actions.append(action.tolist())
        trace.observations.append(obs.tolist())
        trace.rewards.append(float(reward))
    trace.final = {
        "return": trace.episode_return,
        "steps": len(trace.rewards),
        "terminated": bool(terminated),
        "diverged": bool(info.get("diverged", False)),
        "seconds": time.perf_counter() - start,
        **info.get("final_metrics", {}),
        **info.get("timings", {}),
    }
    return trace


def write_traces(traces: list[EpisodeTrace], path: str | os.PathLike) -> Path:
    """Write traces as JSON lines (one episode per line)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        for trace in traces:
            handle.write(json.dumps(asdict(trace)) + "\n")
    return path


def read_traces(path: str | os.PathLike) -> list[EpisodeTrace]:
    """Read traces written by :func:`write_traces` (a clear error for anything else)."""
    traces = []
    for n, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            traces.append(EpisodeTrace(**json.loads(line)))
        except (json.JSONDecodeError, TypeError) as err:
            raise ValueError(f"{path}:{n} is not a distill-gym episode trace ({err})") from err
    return traces


@dataclass
class ReplayResult:
    """Whether a trace reproduced, and the largest differences seen."""

    reproduced: bool
    max_observation_diff: float
    max_reward_diff: float
    steps: int


def replay(trace: EpisodeTrace, env: gym.Env | None = None) -> ReplayResult:
    """Re-run ``trace``'s actions on a fresh env (made from its id and configuration unless given)."""
    env = env or gym.make(trace.env_id, **trace.env_kwargs)
    obs, _ = env.reset(seed=trace.seed)
    obs_diff = float(np.max(np.abs(obs - np.asarray(trace.observations[0], dtype=np.float32))))
    reward_diff = 0.0
    steps = 0
    for action, expected_obs, expected_reward in zip(trace.actions, trace.observations[1:], trace.rewards):
        obs, reward, terminated, truncated, _ = env.step(np.asarray(action, dtype=np.float32))
        obs_diff = max(obs_diff, float(np.max(np.abs(obs - np.asarray(expected_obs, dtype=np.float32)))))
        reward_diff = max(reward_diff, abs(float(reward) - expected_reward))
        steps += 1
        if terminated or truncated:
            break
    complete = steps == len(trace.actions)
    return ReplayResult(complete and obs_diff == 0.0 and reward_diff == 0.0, obs_diff, reward_diff, steps)
