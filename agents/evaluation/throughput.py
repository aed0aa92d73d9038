"""Measuring how many episodes per second an env serves: one measurement per fresh process, so each
reports its own peak memory and runs on the torch threads it was given, not on what an earlier
measurement left behind.

A :class:`ThroughputCase` is one row of the throughput table: an id served serially (``gymnasium.make``,
one episode after another) or by its native lockstep vector env (``gymnasium.make_vec(...,
vectorization_mode="vector_entry_point")`` with ``num_envs`` runs in ``workers`` processes). Every episode
acts the zero action (the paper's constants). Warm-up (teachers, shared probes, the first reset) is not
timed; every later reset is, since starting a run is part of an episode's cost.
"""

from __future__ import annotations

import multiprocessing
import resource
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ThroughputCase:
    """One measurement.

    :param env_id: the registered id.
    :param mode: ``serial`` or ``lockstep``.
    :param num_envs: runs stepped together (lockstep; 1 for serial).
    :param workers: processes holding them (lockstep).
    :param episodes: at least this many episodes are timed (lockstep: whole vector steps, so at least ``num_envs``).
    :param threads: torch intra-op threads of each process.
    :param env_kwargs: the env's keyword arguments.
    :param seed: the first reset's seed.
    :param profile: also return the lockstep engine's seconds by phase (synthesis, KD, probe).
    """

    env_id: str
    mode: str
    num_envs: int = 1
    workers: int = 1
    episodes: int = 16
    threads: int = 1
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    profile: bool = False


def peak_rss_mib() -> float:
    """This process's peak resident set size, in MiB (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _serial(case: ThroughputCase) -> tuple[int, int, float]:
    import gymnasium as gym

    env = gym.make(case.env_id, **case.env_kwargs)
    action = np.zeros(env.action_space.shape, np.float32)

    def episode(seed: int | None) -> int:
        env.reset(seed=seed)
        steps, done = 0, False
        while not done:
            _, _, terminated, truncated, _ = env.step(action)
            steps, done = steps + 1, terminated or truncated
        return steps

    episode(case.seed)  # warm-up: teacher, shared probe, first allocations
    start, steps = time.perf_counter(), 0
    for _ in range(case.episodes):
        steps += episode(None)
    return case.episodes, steps, time.perf_counter() - start


def _lockstep(case: ThroughputCase) -> tuple[int, int, float, dict[str, float]]:
    import gymnasium as gym

    venv = gym.make_vec(case.env_id, num_envs=case.num_envs, vectorization_mode="vector_entry_point", workers=case.workers,
                        **case.env_kwargs)
    venv.reset(seed=case.seed)  # warm-up
    actions = np.zeros(venv.action_space.shape, np.float32)
    start, episodes, steps = time.perf_counter(), 0, 0
    while episodes < case.episodes:
        _, _, terminated, truncated, _ = venv.step(actions)
        episodes += int(np.sum(terminated | truncated))
        steps += case.num_envs
    seconds = time.perf_counter() - start
    phases: dict[str, Any] = {}
    split = hasattr(venv, "worker_peak_rss_mib")  # runs held by worker processes
    if case.profile:  # summed over the worker processes, if any
        for runs in venv.get_worker_attr("runs") if split else [venv.runs]:
            for key, value in runs.engine.timings.items():
                phases[key] = phases.get(key, 0.0) + value
    if split:
        phases["worker_peak_rss_mib"] = venv.worker_peak_rss_mib()
    venv.close()
    return episodes, steps, seconds, phases


def _measure_here(case: ThroughputCase) -> dict[str, Any]:
    import torch

    torch.set_num_threads(case.threads)
    import envs  # noqa: F401  (registers the ids)

    phases: dict[str, float] = {}
    if case.mode == "serial":
        episodes, steps, seconds = _serial(case)
    elif case.mode == "lockstep":
        episodes, steps, seconds, phases = _lockstep(case)
    else:
        raise ValueError(f"unknown mode {case.mode!r}: use 'serial' or 'lockstep'")
    worker_peak = phases.pop("worker_peak_rss_mib", None)  # a list: one per worker process
    return {**asdict(case), "episodes_timed": episodes, "env_steps": steps, "seconds": seconds,
            "episodes_per_second": episodes / seconds, "torch_threads": torch.get_num_threads(),
            "peak_rss_mib": peak_rss_mib(), "worker_peak_rss_mib": worker_peak, "phase_seconds": phases}


def _child(case: ThroughputCase, pipe: Any) -> None:
    try:
        pipe.send(("ok", _measure_here(case)))
    except Exception as err:  # the parent reports it beside the other rows
        pipe.send(("error", f"{type(err).__name__}: {err}"))


def measure(case: ThroughputCase) -> dict[str, Any]:
    """Run ``case`` in a fresh process (``forkserver``, or ``spawn``) and return its row: episodes timed,
    seconds, episodes per second, the process's torch threads and peak memory (and each of its worker
    processes' peaks, when it has workers). A failed case returns
    its error instead of raising, so a table still shows every row."""
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_child, args=(case, child))
    process.start()
    child.close()
    try:
        status, payload = parent.recv()
    except EOFError:
        status, payload = "error", f"the measuring process died (exit code {process.join() or process.exitcode})"
    process.join()
    if status == "error":
        return {**asdict(case), "error": payload}
    return payload


__all__ = ["ThroughputCase", "measure", "peak_rss_mib"]
