"""One generic Gymnasium environment over any step-wise process (``distill_core.process``).

One episode is one run of the algorithm, one step is one round. The action ``[-1, 1]^k`` is mapped onto
the process's knobs through their declared ranges (linear or log), the zero action at the defaults (the
published method); the observation is the process's
named, bounded statistics; the reward is the round's score gain, so an episode's return telescopes to
the run's total gain (CompilerGym-style ``current − previous``).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from distill_core.process import KnobSpec, Stats, StepwiseProcess
from envs.workers import check_worker

REWARD_NORMALIZATIONS = (None, "constant", "paired")


def round_reward(gain: float, diverged: bool, normalization: str | None, reference: tuple[float, ...] | None, index: int,
                 divergence_penalty: float) -> tuple[float, bool]:
    """A round's reward and whether the run diverged, from its score gain.

    :param gain: the round's score gain.
    :param diverged: the round diverged (the reward is then ``divergence_penalty``).
    :param normalization: ``None``, ``"constant"`` (divide by the paper-default run's |total gain|, floored
        away from zero) or ``"paired"`` (subtract its gain in the same round; 0 past its end).
    :param reference: the paper-default run's per-round gains on the same run seed (normalised rewards).
    :param index: the round's index in the run.
    :param divergence_penalty: the reward of a diverged round; a non-finite reward counts as one.
    """
    if diverged:
        return float(divergence_penalty), True
    reward = float(gain)
    if normalization == "constant":
        reward /= max(abs(sum(reference)), 1e-8)
    elif normalization == "paired":
        reward -= reference[index] if index < len(reference) else 0.0
    if not math.isfinite(reward):
        return float(divergence_penalty), True
    return reward, False


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


def build_config(config_cls: type, kwargs: dict[str, Any]) -> Any:
    """``config_cls(**kwargs)``, refusing unknown names with a message that lists the known ones
    (what ``gymnasium.make(id, **kwargs)`` users mistype)."""
    known = set(config_cls.__dataclass_fields__)
    unknown = set(kwargs) - known
    if unknown:
        raise TypeError(f"unknown {config_cls.__name__} field(s) {sorted(unknown)}; known: {sorted(known)}")
    return config_cls(**kwargs)


class ProcessEnv(gym.Env):
    """A Gymnasium view of any :class:`~distill_core.process.StepwiseProcess`.

    Give it a process, or subclass it with ``process_cls`` and ``config_cls`` set (what every registered
    id does): then the keyword arguments that are not the env's own build the configuration.

    :param process: the process (``None``: built from ``config`` by ``process_cls(config_cls(**config))``).
    :param render_mode: ``None``, ``"ansi"`` (a text summary) or ``"rgb_array"`` (the process's
        ``render_samples()``: its samples, or a picture of its statistics).
    :param reward_normalization: ``None`` (raw score gain); ``"constant"``: divide by the total gain the
        constant paper-default policy achieves on the same run seed, so a return of 1.0 means "as good as
        the paper's setting"; ``"paired"``: subtract the paper-default run's gain in the same round of the
        same run seed, so the return is the run's gain over the paper's on that seed (CompilerGym's reward
        against a baseline) and the seed's luck, which no observation reveals, cancels out. Both make one
        reference run per distinct run seed (cached).
    :param seed_pool: draw each run's seed from ``0 … seed_pool − 1`` instead of ``0 … 2³¹ − 2``: a finite
        set of training runs (DACBench's instance seeds), so the reference runs of a ``paired`` or
        ``constant`` reward are made once per seed, not once per episode. Leave it ``None`` on an
        evaluation env (held-out seeds must not be training runs).
    :param divergence_penalty: the (bounded) reward of the step on which the run diverged.
    :param fixed_knobs: knobs kept at their defaults whatever the action asks (``("lr_scale",)``): the
        action space is unchanged, so a policy made for another id still runs, and the held entries are
        ignored. A transfer protocol that holds a knob fixed trains and evaluates with it held.
    :param config: fields of ``config_cls`` (subclasses only).
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}
    #: set by subclasses that build their process from keyword arguments
    process_cls: ClassVar[type[StepwiseProcess] | None] = None
    config_cls: ClassVar[type | None] = None
    #: reference runs kept for ``reward_normalization="constant"`` (oldest dropped first)
    REFERENCE_CACHE_SIZE = 4096

    def __init__(
        self,
        process: StepwiseProcess | None = None,
        *,
        render_mode: str | None = None,
        reward_normalization: str | None = None,
        divergence_penalty: float = -1.0,
        seed_pool: int | None = None,
        fixed_knobs: tuple[str, ...] | list[str] = (),
        **config: Any,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"unknown render_mode {render_mode!r}: use one of {self.metadata['render_modes']} or None")
        if reward_normalization not in REWARD_NORMALIZATIONS:
            raise ValueError(f"unknown reward_normalization {reward_normalization!r}: use one of {REWARD_NORMALIZATIONS}")
        if seed_pool is not None and (isinstance(seed_pool, bool) or not isinstance(seed_pool, int) or seed_pool < 1):
            raise ValueError(f"seed_pool must be a positive int or None, got {seed_pool!r}")
        check_worker()  # fork safety, before any torch work: warns once in a forked vector-env worker (envs/workers.py)
        if process is None:
            if self.process_cls is None or self.config_cls is None:
                raise TypeError(f"{type(self).__name__} needs a process (or process_cls and config_cls set by a subclass)")
            process = self.process_cls(build_config(self.config_cls, config))
        elif config:
            raise TypeError(f"configuration {sorted(config)} given together with a ready process")
        if not isinstance(process, StepwiseProcess):
            raise TypeError(f"process must be a StepwiseProcess, got {type(process).__name__}")
        self.process = process
        self.render_mode = render_mode
        self.reward_normalization = reward_normalization
        self.divergence_penalty = float(divergence_penalty)
        self.seed_pool = seed_pool
        self.knob_specs: list[KnobSpec] = list(process.knob_specs)
        self.knob_names = tuple(spec.name for spec in self.knob_specs)
        self.action_names = tuple(name for spec in self.knob_specs for name in spec.entry_names)
        if isinstance(fixed_knobs, str):
            fixed_knobs = (fixed_knobs,)
        # a knob the env does not expose is already held: holding it is allowed (one list fits every id)
        every = [spec.name for spec in process.all_knob_specs]
        unknown = sorted(set(fixed_knobs) - set(every))
        if unknown:
            raise ValueError(f"fixed_knobs {unknown} are not knobs of this env: its knobs are {every}")
        self.fixed_knobs = tuple(fixed_knobs)
        names, low, high = process.observation_layout()
        self.observation_names = tuple(names)
        self.action_space = spaces.Box(-1.0, 1.0, (len(self.action_names),), np.float32)
        self.observation_space = spaces.Box(np.asarray(low, np.float32), np.asarray(high, np.float32), dtype=np.float32)
        #: per-round gains of the paper-default run, by run seed
        self._reference_gains: OrderedDict[int, tuple[float, ...]] = OrderedDict()
        #: reference runs made so far (``reward_normalization`` ``"constant"`` or ``"paired"``)
        self.reference_runs = 0
        self._run_seed: int | None = None
        self._round = 0
        self._last_stats: Stats | None = None

    # ------------------------------------------------------------------ mapping
    def knobs_from_action(self, action: np.ndarray) -> Any:
        """The knob values an action means (raises ``ValueError`` on a wrong shape or a non-finite entry)."""
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action has shape {action.shape}, expected {self.action_space.shape} ({', '.join(self.action_names)})")
        if not np.isfinite(action).all():
            raise ValueError(f"action contains NaN or Inf: {action.tolist()} — check the policy's outputs")
        values, at = {}, 0
        for spec in self.knob_specs:
            fixed = spec.name in self.fixed_knobs
            entries = tuple(spec.default if fixed else spec.from_unit(a) for a in action[at : at + spec.size])
            values[spec.name] = entries if spec.per_class else entries[0]
            at += spec.size
        return self.process.Knobs(**values)

    def action_from_knobs(self, knobs: Any) -> np.ndarray:
        """The action that selects ``knobs`` (the inverse mapping; used by scripted policies)."""
        return np.array([spec.to_unit(v) for spec in self.knob_specs for v in spec.values(knobs)], dtype=np.float32)

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        # the run's seed comes from the env's generator: same reset seed -> same run
        self._run_seed = int(self.np_random.integers(0, self.seed_pool or 2**31 - 1))
        self._round = 0
        stats = self.process.reset(self._run_seed)
        self._last_stats = stats
        return stats.values.copy(), self._info(stats, knobs=None)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._run_seed is None:
            raise RuntimeError("call reset() before step()")
        knobs = self.knobs_from_action(action)
        stats = self.process.step(knobs)
        self._last_stats = stats
        self._round += 1
        reference = self._reference_run() if self.reward_normalization is not None and not stats.diverged else None
        reward, diverged = round_reward(stats.gain, stats.diverged, self.reward_normalization, reference, self._round - 1,
                                        self.divergence_penalty)
        terminated = diverged
        truncated = bool(self.process.done) and not terminated
        info = self._info(stats, knobs=knobs, diverged=diverged)
        if terminated or truncated:
            info["final_metrics"] = self.process.final_metrics()  # reporting only (may use real test data)
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
    def _info(self, stats: Stats, *, knobs: Any, diverged: bool = False) -> dict[str, Any]:
        info = {k: v for k, v in stats.extras.items() if isinstance(v, (int, float, bool, str))}
        info.update(run_seed=self._run_seed, diverged=diverged, stats=stats.as_dict(), timings=Timings(stats.timings))
        if knobs is not None:
            info["knobs"] = dict(zip(self.action_names, (v for spec in self.knob_specs for v in spec.values(knobs))))
        return info

    def _reference_run(self) -> tuple[float, ...]:
        """Per-round gains of the paper-default policy on the current run seed: one reference run per
        distinct run seed (cached, so replaying or re-evaluating a seed costs nothing more)."""
        seed = self._run_seed
        if seed not in self._reference_gains:
            reference = self.process.clone()
            reference.reset(seed)
            gains = []
            while not reference.done:
                stats = reference.step(reference.Knobs())
                if stats.diverged or not math.isfinite(stats.gain):
                    break  # the paper's run itself diverged: it gains nothing after that
                gains.append(float(stats.gain))
            self.reference_runs += 1
            self._reference_gains[seed] = tuple(gains)
            if len(self._reference_gains) > self.REFERENCE_CACHE_SIZE:
                self._reference_gains.popitem(last=False)
        return self._reference_gains[seed]

