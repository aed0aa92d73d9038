"""N lockstep SSD-KD runs as envs see them: each slot seeded as its own env, its run seed, instance,
observation and reward as :class:`envs.process_env.ProcessEnv` gives them.

Slot ``i`` of a vector env reset with seed ``s`` is the single env reset with seed ``s + i`` (Gymnasium's
convention for vector envs), episode after episode: it draws its run seeds from its own generator, as
the single env does. The vector envs (:mod:`envs.ssdkd_vector`, :mod:`envs.whole_run_vector`) differ only
in what one of their steps is: one round of every run, or every run to its end.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections import OrderedDict
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from distill_core.process import StatsBuilder, add_progress
from distill_core.ssdkd.lockstep import LockstepSSDKD
from distill_core.ssdkd.lockstep_process import LockstepProcess
from envs.process_env import REWARD_NORMALIZATIONS, ProcessEnv, round_reward


class LockstepRuns:
    """The slots of a lockstep vector env.

    :param template: a single env of the same id (its spaces and its action → knob mapping; never stepped).
    :param num_envs: N.
    """

    def __init__(self, template: ProcessEnv, num_envs: int) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        process = template.process
        if not isinstance(process, LockstepProcess):
            raise TypeError(f"lockstep vector envs run LockstepProcess envs, got {type(process).__name__}")
        if template.reward_normalization not in REWARD_NORMALIZATIONS:
            raise ValueError(f"unknown reward_normalization {template.reward_normalization!r}")
        self.template = template
        self.source = process.source
        self.num_envs = num_envs
        self.engine = LockstepSSDKD(num_envs, self.source.device, pad_to=self.source.max_synth_batch)
        self.rngs = [seeding.np_random(None)[0] for _ in range(num_envs)]
        self.run_seeds = [0] * num_envs
        self.processes = [self.source.template] * num_envs
        self.last_gains = [0.0] * num_envs
        self._references: OrderedDict[int, tuple[float, ...]] = OrderedDict()
        #: reference runs made so far (paired or constant rewards)
        self.reference_runs = 0

    # ------------------------------------------------------------------ starting
    def seed(self, seed: int | list[int | None] | None) -> None:
        """Seed every slot's generator: ``seed + i`` (or the list's entry ``i``); ``None`` leaves them."""
        if seed is None:
            return
        seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, (int, np.integer)) else list(seed)
        if len(seeds) != self.num_envs:
            raise ValueError(f"reset needs one seed per env ({self.num_envs}), got {len(seeds)}")
        for i, s in enumerate(seeds):
            if s is not None:
                self.rngs[i] = seeding.np_random(int(s))[0]

    def start(self, slots: list[int]) -> None:
        """Start a new run in each of ``slots``, its seed drawn from the slot's generator."""
        pool = self.template.seed_pool
        for slot in slots:
            seed = int(self.rngs[slot].integers(0, pool or 2**31 - 1))
            self.run_seeds[slot] = seed
            self.processes[slot] = self.source.process(seed)
            self.engine.start(slot, self.processes[slot], seed)
            self.last_gains[slot] = 0.0
        if self.template.reward_normalization is not None:
            self.references([self.run_seeds[s] for s in slots])

    def observation(self, slot: int) -> np.ndarray:
        """Slot ``slot``'s observation, entry by entry as the single env's."""
        builder = StatsBuilder()
        self.engine.observe(slot, builder)
        self.source.observe_instance(builder, self.processes[slot])
        run = self.engine.run(slot)
        add_progress(builder, run.rounds_done, run.config.rounds, self.last_gains[slot])
        return builder.build().values

    def observations(self) -> np.ndarray:
        return np.stack([self.observation(s) for s in range(self.num_envs)])

    # ------------------------------------------------------------------ stepping
    def knobs(self, action: np.ndarray) -> Any:
        """The knobs of one slot's action (``ValueError`` on a wrong shape or NaN, naming the fix)."""
        return self.template.knobs_from_action(action)

    def round(self, knobs: list[Any]) -> list[dict[str, Any] | None]:
        """One round of the slots whose knobs are given; per slot: reward, terminated, truncated, info."""
        facts = self.engine.step(knobs)
        out: list[dict[str, Any] | None] = [None] * self.num_envs
        for slot, fact in enumerate(facts):
            if fact is None:
                continue
            run = self.engine.run(slot)
            self.last_gains[slot] = fact["gain"]
            index = run.rounds_done - 1
            reward, diverged = round_reward(fact["gain"], fact["diverged"], self.template.reward_normalization,
                                            self._reference_of(self.run_seeds[slot]), index, self.template.divergence_penalty)
            terminated = diverged
            truncated = run.done and not terminated
            info = {k: v for k, v in fact.items() if isinstance(v, (int, float, bool, str))}
            info.update(run_seed=self.run_seeds[slot], diverged=diverged)
            if terminated or truncated:
                info["final_metrics"] = {**self.engine.final_metrics(slot),
                                         **self.source.describe(self.run_seeds[slot], self.processes[slot])}
            out[slot] = {"reward": reward, "terminated": terminated, "truncated": truncated, "info": info}
        return out

    # ------------------------------------------------------------------ reference runs
    def _reference_of(self, seed: int) -> tuple[float, ...] | None:
        return self._references.get(seed) if self.template.reward_normalization is not None else None

    def references(self, seeds: list[int]) -> None:
        """Make the paper-default runs of the ``seeds`` not yet made, N at a time in lockstep, and keep
        their per-round gains (the paired and constant rewards' references)."""
        missing = sorted({s for s in seeds if s not in self._references})
        if not missing and self.template.seed_pool is None:
            return
        pool = self.template.seed_pool
        if pool is not None:  # a finite pool: make every seed's reference at once, in full batches
            missing = [s for s in range(pool) if s not in self._references]
        for start in range(0, len(missing), self.num_envs):
            chunk = missing[start : start + self.num_envs]
            engine = LockstepSSDKD(len(chunk), self.source.device, pad_to=self.source.max_synth_batch)
            for slot, seed in enumerate(chunk):
                engine.start(slot, self.source.process(seed), seed)
            gains: list[list[float]] = [[] for _ in chunk]
            paper = self.source.template.Knobs()
            while not engine.all_done:
                facts = engine.step([None if engine.run(i).done else paper for i in range(len(chunk))])
                for i, fact in enumerate(facts):
                    if fact is not None and not fact["diverged"] and math.isfinite(fact["gain"]):
                        gains[i].append(float(fact["gain"]))
            for seed, g in zip(chunk, gains):
                self._references[seed] = tuple(g)
                self.reference_runs += 1
        while len(self._references) > ProcessEnv.REFERENCE_CACHE_SIZE:
            self._references.popitem(last=False)


class LockstepVectorEnv(VectorEnv):
    """What the lockstep vector envs share: spaces batched from the single env's, the slots, ``reset``
    and the checks of a step's actions. A subclass fills in :meth:`_step` (what one step does).

    :param single: the single env of the id (its spaces and names).
    :param template: its per-round :class:`ProcessEnv` (the slots' mapping and rewards).
    :param num_envs: N.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, single: gym.Env, template: ProcessEnv, num_envs: int) -> None:
        self.runs = LockstepRuns(template, num_envs)
        self.num_envs = num_envs
        self.single_action_space = single.action_space
        self.single_observation_space = single.observation_space
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.observation_names = template.observation_names
        self.action_names = single.get_wrapper_attr("action_names")
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
            raise ValueError(f"actions have shape {actions.shape}, expected {self.action_space.shape} (one row per env)")
        return self._step(actions)

    @abstractmethod
    def _step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """One step of every slot under ``actions`` (checked: shape ``(N, k)``)."""


__all__ = ["LockstepRuns", "LockstepVectorEnv"]
