"""Episode rollouts, recorded as JSON-lines traces that can be replayed to check they reproduce
(CompilerGym-style): a trace holds the env id and configuration, the seed, every action, observation
and reward, how the episode ended, its final metrics, and the runtime it ran on (torch's thread count,
library versions). Replaying re-runs the actions on a fresh env under the recorded thread count and
lists every recorded field that came out different.

Timings (``timings``) are measurements of the machine: recorded for reports, never compared.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from importlib import metadata
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from distill_core.common.files import atomic_write

#: written into every trace; a file without it (or with another) is not one of ours
TRACE_FORMAT = "distill-gym/trace/v1"
#: distributions whose versions a trace records (their numerics can change the episode)
TRACKED_PACKAGES = ("torch", "numpy", "gymnasium", "stable-baselines3", "distill-gym")
#: the end-of-episode fields every trace's ``outcome`` holds (besides the final metrics)
OUTCOME_KEYS = ("return", "steps", "terminated", "truncated", "diverged")


class ReplayWarning(UserWarning):
    """The replay runs on another runtime than the recording (thread count, library versions)."""


def runtime_info() -> dict[str, Any]:
    """What the numbers of an episode depend on besides its configuration: torch's intra-op thread
    count (1 vs 2 threads changes float sums, hence observations), the CPU kernels torch dispatches to
    (``AVX512`` and ``AVX2`` kernels round differently: the same seed trains another teacher) and the
    library versions."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"torch_threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "versions": versions}


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
    :param outcome: compared on replay: return, steps, terminated, truncated, diverged, then the
        env's ``info["final_metrics"]`` (e.g. ``test_accuracy``).
    :param timings: seconds of the whole episode and the env's ``info["timings"]``; never compared.
    :param runtime: torch thread count and library versions (see :func:`runtime_info`).
    :param format: :data:`TRACE_FORMAT`.
    """

    env_id: str
    env_kwargs: dict[str, Any]
    seed: int
    agent: str
    actions: list[list[float]] = field(default_factory=list)
    observations: list[list[float]] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    outcome: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    runtime: dict[str, Any] = field(default_factory=runtime_info)
    format: str = TRACE_FORMAT

    @property
    def episode_return(self) -> float:
        return float(sum(self.rewards))

    @property
    def ended(self) -> bool:
        """Whether the recorded episode reached its end (terminated or truncated)."""
        return bool(self.outcome.get("terminated")) or bool(self.outcome.get("truncated"))

    @property
    def final_metrics(self) -> dict[str, Any]:
        """The env's end-of-episode metrics (the ``outcome`` entries past :data:`OUTCOME_KEYS`)."""
        return {k: v for k, v in self.outcome.items() if k not in OUTCOME_KEYS}


def run_episode(env: gym.Env, agent: Any, seed: int, *, env_id: str, env_kwargs: dict[str, Any] | None = None,
                agent_name: str = "", deterministic: bool = True) -> EpisodeTrace:
    """Run one episode of ``agent`` (anything with SB3's ``predict``) on ``env`` from ``reset(seed=seed)``.

    Recurrent policies get their hidden state and ``episode_start`` flags, as SB3 expects.

    :param env: the env to run on (made from ``env_id`` and ``env_kwargs``, which the trace records).
    :param agent: the policy.
    :param seed: the ``reset`` seed.
    :param env_id: recorded, so a replay can make the same env.
    :param env_kwargs: recorded likewise.
    :param agent_name: recorded for reports.
    :param deterministic: passed to ``predict``.
    """
    trace = EpisodeTrace(env_id, dict(env_kwargs or {}), int(seed), agent_name)
    start = time.perf_counter()
    obs, _ = env.reset(seed=seed)
    trace.observations.append(obs.tolist())
    state, episode_start = None, np.ones((1,), dtype=bool)
    terminated = truncated = False
    info: dict[str, Any] = {}
    # an SB3 agent trained behind VecNormalize acts on normalised observations (frozen statistics here)
    normalizer = agent.get_vec_normalize_env() if hasattr(agent, "get_vec_normalize_env") else None
    while not (terminated or truncated):
        seen = normalizer.normalize_obs(obs) if normalizer is not None else obs
        action, state = agent.predict(seen, state=state, episode_start=episode_start, deterministic=deterministic)
        episode_start = np.zeros((1,), dtype=bool)
        action = np.asarray(action, dtype=np.float32).reshape(env.action_space.shape)
        obs, reward, terminated, truncated, info = env.step(action)
        trace.actions.append(action.tolist())
        trace.observations.append(obs.tolist())
        trace.rewards.append(float(reward))
    trace.outcome = _outcome(trace.rewards, terminated, truncated, info)
    trace.timings = {"seconds": time.perf_counter() - start, **dict(info.get("timings", {}))}
    return trace


def _outcome(rewards: list[float], terminated: bool, truncated: bool, info: dict[str, Any]) -> dict[str, Any]:
    """The compared end-of-episode fields (see :attr:`EpisodeTrace.outcome`)."""
    return {"return": float(sum(rewards)), "steps": len(rewards), "terminated": bool(terminated),
            "truncated": bool(truncated), "diverged": bool(info.get("diverged", False)),
            **_plain(dict(info.get("final_metrics", {})))}


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """Numpy scalars as Python ones, so the values survive JSON and compare like the read-back ones."""
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in values.items()}


def write_traces(traces: list[EpisodeTrace], path: str | os.PathLike) -> Path:
    """Write traces as JSON lines (one episode per line).

    :param traces: the episodes (at least one).
    :param path: the file, created with its folder.
    """
    if not traces:
        raise ValueError(f"{path}: no episodes to write (a trace file holds at least one)")
    lines = "".join(json.dumps(asdict(trace)) + "\n" for trace in traces)
    return atomic_write(path, lambda handle: handle.write(lines.encode()))  # a kill leaves the old file or the new


def check_complete(trace: EpisodeTrace, where: str = "trace") -> None:
    """Raise ``ValueError`` unless ``trace`` is a whole episode: at least one action, one reward per
    action, one observation more than actions (the reset one), an ended outcome with every
    :data:`OUTCOME_KEYS` entry.

    :param trace: the episode to check.
    :param where: what to name in the message (``file:line``).
    """
    n = len(trace.actions)
    problems = []
    if n == 0:
        problems.append("no actions")
    if len(trace.observations) != n + 1:
        problems.append(f"{len(trace.observations)} observations for {n} actions (expected {n + 1}: the reset one, then one per step)")
    if len(trace.rewards) != n:
        problems.append(f"{len(trace.rewards)} rewards for {n} actions (expected one per action)")
    missing = [k for k in OUTCOME_KEYS if k not in trace.outcome]
    if missing:
        problems.append(f"outcome lacks {', '.join(missing)}")
    elif not trace.ended:
        problems.append("the episode did not end (outcome has terminated and truncated both false)")
    if problems:
        raise ValueError(f"{where} is an incomplete episode: {'; '.join(problems)}. "
                         "Record it again with run_episode (scripts/rollout.py), which runs to the end")


#: the JSON type of every trace field, checked on reading
_FIELD_TYPES = {"env_id": str, "env_kwargs": dict, "seed": int, "agent": str, "actions": list, "observations": list,
                "rewards": list, "outcome": dict, "timings": dict, "runtime": dict, "format": str}


def read_traces(path: str | os.PathLike) -> list[EpisodeTrace]:
    """Read traces written by :func:`write_traces`; ``ValueError`` for an empty file, a line that is
    not a trace of :data:`TRACE_FORMAT`, or an incomplete episode (see :func:`check_complete`).

    :param path: a JSON-lines trace file.
    """
    traces = []
    names = {f.name for f in fields(EpisodeTrace)}
    for n, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{where} is not a distill-gym episode trace: not JSON ({err}); "
                             "a cut-off last line means the file was not written to the end") from err
        if not isinstance(record, dict) or record.get("format") != TRACE_FORMAT:
            found = record.get("format") if isinstance(record, dict) else type(record).__name__
            raise ValueError(f"{where} is not a distill-gym episode trace: format {found!r}, expected "
                             f"{TRACE_FORMAT!r}; record it again with scripts/rollout.py")
        missing, unknown = names - set(record), set(record) - names
        if missing or unknown:
            raise ValueError(f"{where} is not a {TRACE_FORMAT} trace: missing fields {sorted(missing)}, "
                             f"unknown fields {sorted(unknown)}; record it again with scripts/rollout.py")
        wrong = [f"{k} is {type(record[k]).__name__}, expected {t.__name__}" for k, t in _FIELD_TYPES.items()
                 if not isinstance(record[k], t)]
        if wrong:
            raise ValueError(f"{where} is not a valid {TRACE_FORMAT} trace: {'; '.join(wrong)}")
        trace = EpisodeTrace(**record)
        check_complete(trace, where)
        traces.append(trace)
    if not traces:
        raise ValueError(f"no episodes in {path}: the file is empty; record one with "
                         "scripts/rollout.py --agent <name> --trace <file>")
    return traces


@dataclass
class Mismatch:
    """One recorded field that came out different on replay.

    :param field: e.g. ``"observations[2]"``, ``"rewards[0]"``, ``"outcome.test_accuracy"``.
    :param recorded: the value in the trace (``None`` when missing).
    :param replayed: the value of the replay (``None`` when missing).
    :param detail: a short description for vectors (which entries differ, by how much).
    """

    field: str
    recorded: Any
    replayed: Any
    detail: str = ""

    def __str__(self) -> str:
        if self.detail:
            return f"{self.field}: {self.detail}"
        return f"{self.field}: recorded {_show(self.recorded)}, replayed {_show(self.replayed)}"


def _show(value: Any) -> str:
    return "missing" if value is None else repr(value)


@dataclass
class ReplayResult:
    """Whether a trace reproduced, field by field.

    :param reproduced: no mismatches.
    :param max_observation_diff: the largest absolute observation difference (``inf`` on a shape change).
    :param max_reward_diff: the largest absolute reward difference.
    :param steps: steps replayed.
    :param mismatches: every field that differed, in episode order.
    :param runtime_notes: how the replay's runtime differed from the recording's (also warned).
    """

    reproduced: bool
    max_observation_diff: float
    max_reward_diff: float
    steps: int
    mismatches: list[Mismatch] = field(default_factory=list)
    runtime_notes: list[str] = field(default_factory=list)

    @property
    def fields(self) -> list[str]:
        """The names of the fields that differed."""
        return [m.field for m in self.mismatches]


def _same(a: Any, b: Any) -> bool:
    """Exact equality; NaN equals NaN (a diverged student's KL may be NaN both times), a bool never
    equals a number (``True == 1`` would hide an edited flag)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return a == b


def _compare_vector(name: str, recorded: list[float], replayed: np.ndarray, labels: tuple[str, ...] | None) -> tuple[float, Mismatch | None]:
    # float64: exact for the float32 observations, and an edit below float32's precision still shows
    expected, replayed = np.asarray(recorded, dtype=np.float64), replayed.astype(np.float64)
    if expected.shape != replayed.shape:
        return math.inf, Mismatch(name, recorded, replayed.tolist(), f"shape {replayed.shape} replayed, {expected.shape} recorded")
    if np.array_equal(expected, replayed, equal_nan=True):
        return 0.0, None
    diff = np.abs(expected - replayed)
    diff = np.where(np.isnan(diff), math.inf, diff)  # NaN on one side only
    worst = int(np.argmax(diff))
    label = labels[worst] if labels and len(labels) == diff.size else str(worst)
    detail = (f"{int(np.count_nonzero(diff))} of {diff.size} entries differ, most {label} "
              f"(recorded {float(expected.flat[worst])!r}, replayed {float(replayed.flat[worst])!r})")
    return float(diff.max()), Mismatch(name, recorded, replayed.tolist(), detail)


def _runtime_notes(recorded: dict[str, Any]) -> list[str]:
    """How the current runtime's CPU kernels and library versions differ from ``recorded``'s."""
    now = runtime_info()
    notes = []
    capability = recorded.get("cpu_capability")
    if capability is not None and capability != now["cpu_capability"]:
        notes.append(f"torch's CPU kernels are {now['cpu_capability']} here, {capability} when recorded (they round "
                     f"differently; ATEN_CPU_CAPABILITY={capability.lower()} selects the recorded ones if this CPU has them)")
    for name, version in (recorded.get("versions") or {}).items():
        if name in now["versions"] and now["versions"][name] != version:
            notes.append(f"{name} {now['versions'][name]} here, {version} when recorded")
    return notes


@contextmanager
def _torch_threads(count: int | None, notes: list[str]) -> Iterator[None]:
    """Run with torch's intra-op thread count set to ``count`` (the recorded one), restoring it after."""
    before = torch.get_num_threads()
    if count is None or count == before:
        yield
        return
    notes.append(f"torch ran on {before} threads here, {count} when recorded: replaying on {count}")
    torch.set_num_threads(int(count))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def replay(trace: EpisodeTrace, env: gym.Env | None = None) -> ReplayResult:
    """Re-run ``trace``'s actions on a fresh env (made from its id and configuration unless given),
    under the recorded torch thread count, and compare every recorded field: observations, rewards,
    the number of steps, return, how it ended and every final metric, all exactly (the same actions
    on the same seed, configuration and thread count give bit-identical floats; JSON keeps them).

    Warns (:class:`ReplayWarning`) when the thread count or library versions differ.

    :param trace: a complete episode (``ValueError`` otherwise, see :func:`check_complete`).
    :param env: the env to replay on; made (and closed) here when not given.
    """
    check_complete(trace)
    notes = _runtime_notes(trace.runtime)
    with _torch_threads(trace.runtime.get("torch_threads"), notes):
        for note in notes:
            warnings.warn(f"replaying {trace.env_id} seed {trace.seed}: {note}", ReplayWarning, stacklevel=2)
        own = env is None
        env = env or gym.make(trace.env_id, **trace.env_kwargs)
        try:
            result = _replay(trace, env)
        finally:
            if own:
                env.close()
    result.runtime_notes = notes
    return result


def _replay(trace: EpisodeTrace, env: gym.Env) -> ReplayResult:
    labels = getattr(env.unwrapped, "observation_names", None)
    mismatches: list[Mismatch] = []
    obs, _ = env.reset(seed=trace.seed)
    obs_diff, mismatch = _compare_vector("observations[0]", trace.observations[0], np.asarray(obs), labels)
    mismatches += [mismatch] if mismatch else []
    reward_diff, rewards = 0.0, []
    terminated = truncated = False
    info: dict[str, Any] = {}
    for step, action in enumerate(trace.actions, start=1):
        obs, reward, terminated, truncated, info = env.step(np.asarray(action, dtype=np.float32))
        rewards.append(float(reward))
        diff, mismatch = _compare_vector(f"observations[{step}]", trace.observations[step], np.asarray(obs), labels)
        obs_diff = max(obs_diff, diff)
        mismatches += [mismatch] if mismatch else []
        recorded_reward = trace.rewards[step - 1]
        if not _same(float(reward), recorded_reward):
            reward_diff = max(reward_diff, abs(float(reward) - recorded_reward))
            mismatches.append(Mismatch(f"rewards[{step - 1}]", recorded_reward, float(reward)))
        if terminated or truncated:
            break  # ended before the recorded actions ran out: "steps" below says so
    if len(rewards) < len(trace.actions):
        mismatches.append(Mismatch("steps", len(trace.actions), len(rewards),
                                   f"the replay ended after {len(rewards)} of the {len(trace.actions)} recorded actions"))
    if not (terminated or truncated):
        mismatches.append(Mismatch("ended", True, False, f"the replay had not ended after all {len(trace.actions)} recorded actions"))
    replayed = _outcome(rewards, terminated, truncated, info if (terminated or truncated) else {})
    for key in dict.fromkeys([*trace.outcome, *replayed]):  # recorded order, then new ones
        if not _same(trace.outcome.get(key), replayed.get(key)):
            mismatches.append(Mismatch(f"outcome.{key}", trace.outcome.get(key), replayed.get(key)))
    return ReplayResult(not mismatches, obs_diff, reward_diff, len(rewards), mismatches)
