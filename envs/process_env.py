"""One generic Gymnasium environment over any step-wise process (``distill_core.process``).

One episode is one run of the algorithm, one step is one round. The action ``[-1, 1]^k`` is mapped onto
the process's knobs through their declared ranges (linear or log); the observation is the process's
named, bounded statistics; the reward is the round's score gain, so an episode's return telescopes to
the run's total gain (CompilerGym-style ``current − previous``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from distill_core.process import KnobSpec, Stats
from envs.workers import check_worker

REWARD_NORMALIZATIONS = (None, "constant")


class Timings(Mapping[str, float]):
    """Wall-clock measurements in ``info["timings"]`` (seconds by name), read like a dict.

    Two ``Timings`` always compare equal: times are measurements of the machine, not part of the
    episode, so replaying an episode (or Gymnasium's determinism check) must not depend on them.
    (Not a ``dict`` subclass: Gymnasium's checker would compare a dict's values one by one.)
    """

    def __init__(self, values: dict[str, float] | None = None) -> None:
        self._values = dict(values or {})

    def __getitem__(self, key: str) -> float:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def update(self, values: dict[str, float]) -> None:
        self._values.update(values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Timings)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Timings({self._values})"


def build_config(config_cls: type, kwargs: dict[str, Any], label: str) -> Any:
    """``config_cls(**kwargs)``, refusing unknown names with a message that lists the known ones
    (what ``gymnasium.make(id, **kwargs)`` users mistype)."""
    known = set(config_cls.__dataclass_fields__)
    unknown = set(kwargs) - known
    if unknown:
        raise TypeError(f"unknown {label} configuration {sorted(unknown)}; known: {sorted(known)}")
    return config_cls(**kwargs)


class ProcessEnv(gym.Env):
    """A Gymnasium view of a step-wise distillation process.

    :param process: any object with ``Knobs``, ``knob_specs``, ``observation_layout()``, ``reset(seed)``,
        ``step(knobs)``, ``score()`` and ``done`` (see :mod:`distill_core.process`).
    :param render_mode: ``None``, ``"ansi"`` (a text summary) or ``"rgb_array"`` (a grid of the process's
        samples, if it offers ``render_samples()``).
    :param reward_normalization: ``None`` (raw score gain) or ``"constant"``: divide by the total gain the
        constant paper-default policy achieves on the same seed (computed once per seed, cached), so
        a return of 1.0 means "as good as the paper's setting".
    :param divergence_penalty: the (bounded) reward of the step on which the run diverged.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        process: Any,
        *,
        render_mode: str | None = None,
        reward_normalization: str | None = None,
        divergence_penalty: float = -1.0,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"unknown render_mode {render_mode!r}: use one of {self.metadata['render_modes']} or None")
        if reward_normalization not in REWARD_NORMALIZATIONS:
            raise ValueError(f"unknown reward_normalization {reward_normalization!r}: use one of {REWARD_NORMALIZATIONS}")
        check_worker()  # fork safety: warns once in a forked vector-env worker (envs/workers.py)
        self.process = process
        self.render_mode = render_mode
        self.reward_normalization = reward_normalization
        self.divergence_penalty = float(divergence_penalty)
        self.knob_specs: list[KnobSpec] = list(process.knob_specs)
        self.action_names = tuple(spec.name for spec in self.knob_specs)
        names, low, high = process.observation_layout()
        self.observation_names = tuple(names)
        self.action_space = spaces.Box(-1.0, 1.0, (len(self.knob_specs),), np.float32)
        self.observation_space = spaces.Box(np.asarray(low, np.float32), np.asarray(high, np.float32), dtype=np.float32)
        self._reference_gain: dict[int, float] = {}
        self._run_seed: int | None = None
        self._last_stats: Stats | None = None

    # ------------------------------------------------------------------ mapping
    def knobs_from_action(self, action: np.ndarray) -> Any:
        """The knob values an action means (raises ``ValueError`` on a wrong shape or a non-finite entry)."""
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action has shape {action.shape}, expected {self.action_space.shape} ({', '.join(self.action_names)})")
        if not np.isfinite(action).all():
            raise ValueError(f"action contains NaN or Inf: {action.tolist()} — check the policy's outputs")
        return self.process.Knobs(**{spec.name: spec.from_unit(a) for spec, a in zip(self.knob_specs, action)})

    def action_from_knobs(self, knobs: Any) -> np.ndarray:
        """The action that selects ``knobs`` (the inverse mapping; used by scripted policies)."""
        return np.array([spec.to_unit(getattr(knobs, spec.name)) for spec in self.knob_specs], dtype=np.float32)

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        # the run's seed comes from the env's generator: same reset seed -> same run
        self._run_seed = int(self.np_random.integers(0, 2**31 - 1))
        stats = self.process.reset(self._run_seed)
        self._last_stats = stats
        return stats.values.copy(), self._info(stats, knobs=None, reward=0.0)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._run_seed is None:
            raise RuntimeError("call reset() before step()")
        knobs = self.knobs_from_action(action)
        stats = self.process.step(knobs)
        self._last_stats = stats
        diverged = bool(stats.extras.get("diverged", False))
        if diverged:
            reward = self.divergence_penalty
        else:
            reward = float(stats.extras.get("gain", 0.0))
            if self.reward_normalization == "constant":
                reward /= self._constant_policy_gain()
            if not math.isfinite(reward):
                reward, diverged = self.divergence_penalty, True
        terminated = diverged
        truncated = bool(self.process.done) and not terminated
        info = self._info(stats, knobs=knobs, reward=reward, diverged=diverged)
        if (terminated or truncated) and hasattr(self.process, "final_metrics"):
            final = self.process.final_metrics()  # reporting only (may use real test data)
            info["final_metrics"] = {k: v for k, v in final.items() if "seconds" not in k}
            info["timings"].update({k: v for k, v in final.items() if "seconds" in k})
        return stats.values.copy(), reward, terminated, truncated, info

    def render(self) -> str | np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='ansi' or 'rgb_array' to make()")
            return None
        if self._last_stats is None:
            raise RuntimeError("call reset() before render()")
        if self.render_mode == "ansi":
            lines = [f"{type(self.process).__name__} seed={self._run_seed}"]
            lines += [f"  {name:32s} {value: .4f}" for name, value in self._last_stats.as_dict().items()]
            return "\n".join(lines) + "\n"
        return self.process.render_samples()

    # ------------------------------------------------------------------ helpers
    def _info(self, stats: Stats, *, knobs: Any, reward: float, diverged: bool = False) -> dict[str, Any]:
        scalars = {k: v for k, v in stats.extras.items() if isinstance(v, (int, float, bool, str))}
        info = {k: v for k, v in scalars.items() if "seconds" not in k}
        info.update(run_seed=self._run_seed, diverged=diverged, stats=stats.as_dict(),
                    timings=Timings({k: v for k, v in scalars.items() if "seconds" in k}))
        if knobs is not None:
            info["knobs"] = {spec.name: float(getattr(knobs, spec.name)) for spec in self.knob_specs}
        return info

    def _constant_policy_gain(self) -> float:
        """Total gain of the paper-default policy on the current run seed (a run of its own, cached)."""
        seed = self._run_seed
        if seed not in self._reference_gain:
            reference = self.process.clone()
            reference.reset(seed)
            initial = reference.score()
            while not reference.done:
                reference.step(reference.Knobs())
            gain = reference.score() - initial
            self._reference_gain[seed] = gain if abs(gain) > 1e-8 else 1e-8
        return abs(self._reference_gain[seed])
