"""Non-learning policies that share the SB3 interface (``predict``/``learn``/``save``), so an ablation
can list them beside PPO and SAC: ``random``, ``constant`` (the paper's defaults), ``schedule`` (one knob
annealed), ``static`` (any fixed action), ``progress_schedule`` (any two actions interpolated over the
run's progress) and ``adaptive`` (per-class target weights from the student's per-class disagreement)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from distill_core.common.report import write_json


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
        self._process_env = find_process_env(env)

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

    def settings(self) -> dict[str, Any]:
        """What, besides its name and seed, rebuilds this policy (written by :meth:`save`)."""
        return {}

    def save(self, path: str | os.PathLike) -> None:
        """Write a small JSON describing the policy (there are no weights)."""
        write_json({"agent": self.name, "seed": self.seed, **self.settings()}, Path(path).with_suffix(".json"))

    def _require_process_env(self) -> Any:
        """The :class:`ProcessEnv` under the wrappers (``ValueError`` naming this policy when there is none)."""
        if self._process_env is None:
            raise ValueError(f"the {self.name} policy needs a distill-gym ProcessEnv (it reads the knobs and the observation)")
        return self._process_env

    def _constant_action(self) -> np.ndarray:
        """The action of the paper's default knobs (``action_from_knobs(Knobs())``)."""
        penv = self._require_process_env()
        return penv.action_from_knobs(penv.process.Knobs())

    def _checked_action(self, action: Any, what: str) -> np.ndarray:
        """``action`` as a float32 vector of the action space's shape inside ``[-1, 1]`` (else ``ValueError``)."""
        vector = np.asarray(action, dtype=np.float64)
        names = getattr(self._process_env, "action_names", None)
        if vector.shape != self.action_space.shape:
            listed = f" ({', '.join(names)})" if names else ""
            raise ValueError(f"{self.name}: {what} has shape {vector.shape}, expected {self.action_space.shape}{listed}")
        if not np.isfinite(vector).all() or (np.abs(vector) > 1.0).any():
            raise ValueError(f"{self.name}: {what} must be finite and inside [-1, 1] (the env's action space), got {vector.tolist()}")
        return vector.astype(np.float32)

    def _progress_index(self) -> int:
        """Where the observation holds ``progress`` (``ValueError`` when it does not)."""
        penv = self._require_process_env()
        if "progress" not in penv.observation_names:
            raise ValueError(f"the {self.name} policy needs a 'progress' entry in the observation")
        return penv.observation_names.index("progress")


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


class StaticPolicy(BaselinePolicy):
    """One fixed action, whatever the observation (a black-box search's best static knob vector).

    :param action: the action in the env's ``[-1, 1]^k`` (default: the paper's constants, i.e. ``constant``).
    """

    name = "static"

    def __init__(self, env: gym.Env | Any, seed: int | None = None, action: Any = None) -> None:
        super().__init__(env, seed)
        self.action = self._checked_action(self._constant_action() if action is None else action, "action")

    def settings(self) -> dict[str, Any]:
        return {"action": self.action.tolist()}

    def _act(self, observation: np.ndarray) -> np.ndarray:
        return self.action


class ProgressSchedulePolicy(BaselinePolicy):
    """Two actions, ``start`` and ``end``, linearly interpolated over the run's progress (the
    observation's ``progress`` entry, 0 before the first step): ``(1 − t)·start + t·end``. Both are in the
    env's ``[-1, 1]^k``, so the interpolation is linear in action space (on a log-scale knob it is
    geometric in the knob's value).

    :param start: the action at progress 0 (default: the paper's constants).
    :param end: the action at progress 1 (default: ``start``, a static policy).
    """

    name = "progress_schedule"

    def __init__(self, env: gym.Env | Any, seed: int | None = None, start: Any = None, end: Any = None) -> None:
        super().__init__(env, seed)
        self._progress_at = self._progress_index()
        self.start = self._checked_action(self._constant_action() if start is None else start, "start")
        self.end = self.start.copy() if end is None else self._checked_action(end, "end")

    def settings(self) -> dict[str, Any]:
        return {"start": self.start.tolist(), "end": self.end.tolist()}

    def _act(self, observation: np.ndarray) -> np.ndarray:
        from envs.whole_run import scheduled_action

        return scheduled_action(self.start, self.end, observation[self._progress_at])


class SchedulePolicy(ProgressSchedulePolicy):
    """A scripted schedule over the run's progress: the paper's defaults, with chosen knobs moved
    linearly from their default to a final value. Default: β annealed to 1 (as in PER) where the env has
    a β knob (SSD-KD), else the learning rate decayed tenfold (``lr_scale`` → 0.1; condensation).

    :param schedule: ``{knob: final_value}``.
    """

    name = "schedule"
    #: the default schedule of the first of these whose knobs the env has
    DEFAULT_SCHEDULES = ({"beta": 1.0}, {"lr_scale": 0.1})

    def __init__(self, env: gym.Env | Any, seed: int | None = None, schedule: dict[str, float] | None = None) -> None:
        penv = find_process_env(env)
        if penv is None:
            raise ValueError("the schedule policy needs a distill-gym ProcessEnv (it reads knobs and progress)")
        if schedule is None:
            schedule = next((d for d in self.DEFAULT_SCHEDULES if set(d) <= set(penv.knob_names)), self.DEFAULT_SCHEDULES[0])
        self.schedule = dict(schedule)
        unknown = set(self.schedule) - set(penv.knob_names)
        if unknown:
            raise ValueError(f"schedule names unknown knobs {sorted(unknown)}; knobs are {list(penv.knob_names)}")
        end = penv.action_from_knobs(penv.process.Knobs(**self.schedule))
        super().__init__(env, seed, start=None, end=end)

    def settings(self) -> dict[str, Any]:
        return {"schedule": self.schedule}


class AdaptivePolicy(BaselinePolicy):
    """A hand-written adaptive heuristic: the paper's constants, except that the per-class weights
    follow the student's per-class disagreement with the teacher on the probe.

    Every round it reads the first of :attr:`SIGNALS` the observation has for every class c: SSD-KD's
    ``probe/agreement/c`` (else ``probe/kl/c``), or condensation's ``val_accuracy/c`` (the cheap judge's
    per-class accuracy). It takes the disagreement ``d_c = 1 − agreement_c`` (``1 − accuracy_c``; a KL
    entry as it is), floors it at ``floor`` (a class the student already matches keeps some weight), and
    sets each per-class knob of :attr:`KNOBS` the env exposes to ``w_c ∝ d_c^strength``, normalised to a
    geometric mean of 1 (the default, and the middle of the knobs' log range) and clipped to the knob's
    range. With SSD-KD's ``class_weights`` (the target draw) classes the student gets wrong are
    synthesised more often; with ``class_priority`` (the replay sampling) their stored samples are
    distilled more often; with condensation's ``class_weights`` their matching loss counts more.

    **Degrades to the constants.** When the env exposes none of those per-class knobs (SSD-KD:
    ``class_knobs=False`` and ``priority_knobs=False``, the defaults) or the observation has none of
    those per-class entries, it acts exactly as ``constant``; :attr:`adapts` says which case holds.

    :param floor: the smallest disagreement a class counts with (in (0, 1]).
    :param strength: the exponent on the disagreement (0: uniform weights, i.e. the constants).
    """

    name = "adaptive"
    #: the per-class knobs it sets (those the env exposes)
    KNOBS = ("class_weights", "class_priority")
    #: the per-class observation entries read, in order of preference (``{c}``: the class), and whether
    #: an entry is an agreement (disagreement = 1 − entry) or already a disagreement
    SIGNALS = (("probe/agreement/{c}", "agreement"), ("probe/kl/{c}", "disagreement"),
               ("val_accuracy/{c}", "agreement"))

    def __init__(self, env: gym.Env | Any, seed: int | None = None, floor: float = 0.05, strength: float = 1.0) -> None:
        super().__init__(env, seed)
        if not 0.0 < floor <= 1.0 or not math.isfinite(strength) or strength < 0.0:
            raise ValueError(f"adaptive: floor must be in (0, 1] and strength >= 0, got floor={floor}, strength={strength}")
        self.floor, self.strength = float(floor), float(strength)
        penv = self._require_process_env()
        self._base = self._constant_action()
        #: (spec, first action entry) of every per-class knob it sets
        self._targets: list[tuple[Any, int]] = []
        at = 0
        for spec in penv.knob_specs:
            if spec.name in self.KNOBS and spec.per_class:
                self._targets.append((spec, at))
            at += spec.size
        self.signal: str | None = None
        self._agreement, self._reads = True, np.zeros(0, dtype=int)
        sizes = {spec.size for spec, _ in self._targets}
        if len(sizes) == 1:
            classes = sizes.pop()
            for signal, kind in self.SIGNALS:
                names = [signal.format(c=c) for c in range(classes)]
                if all(n in penv.observation_names for n in names):
                    self.signal, self._agreement = signal, kind == "agreement"
                    self._reads = np.array([penv.observation_names.index(n) for n in names])
                    break

    @property
    def adapts(self) -> bool:
        """Whether this env lets the policy adapt (a per-class knob of :attr:`KNOBS` and per-class entries
        of :attr:`SIGNALS`); when False it is the constant policy."""
        return self.signal is not None

    @property
    def knobs(self) -> tuple[str, ...]:
        """The per-class knobs it sets (none when it does not adapt)."""
        return tuple(spec.name for spec, _ in self._targets) if self.adapts else ()

    def settings(self) -> dict[str, Any]:
        return {"floor": self.floor, "strength": self.strength, "reads": self.signal, "sets": list(self.knobs)}

    def weights(self, observation: np.ndarray) -> np.ndarray:
        """The per-class weights (geometric mean 1, before clipping to a knob's range) for ``observation``
        (only when :attr:`adapts`)."""
        signal = np.asarray(observation, dtype=np.float64)[self._reads]
        disagreement = 1.0 - signal if self._agreement else signal
        disagreement = np.maximum(disagreement, self.floor)
        log_weights = self.strength * np.log(disagreement)
        return np.exp(log_weights - log_weights.mean())

    def _act(self, observation: np.ndarray) -> np.ndarray:
        if not self.adapts:
            return self._base
        action, weights = self._base.copy(), self.weights(observation)
        for spec, at in self._targets:
            action[at : at + spec.size] = [spec.to_unit(w) for w in np.clip(weights, spec.low, spec.high)]
        return action


def find_process_env(env: Any) -> Any:
    """The :class:`ProcessEnv` under wrappers or inside a vector env (None if there is none)."""
    from envs.process_env import ProcessEnv

    candidate = env
    while hasattr(candidate, "venv"):  # VecNormalize and other VecEnv wrappers
        candidate = candidate.venv
    if getattr(candidate, "envs", None):  # DummyVecEnv / SyncVectorEnv: the first copy will do
        candidate = candidate.envs[0]
    unwrapped = getattr(candidate, "unwrapped", candidate)
    return unwrapped if isinstance(unwrapped, ProcessEnv) else None
