"""Episodes of many (policy, seed) pairs at once on a fast-tier id's lockstep vector env.

Slot ``i`` of a lockstep vector env reset with seed ``s_i`` runs exactly what the single env reset with
``s_i`` runs, whichever runs share its batch, so a batch gives the same numbers as :func:`run_cell`
episode by episode — only the runs' arithmetic is batched. Each slot keeps its own policy object (a
baseline, a searched oracle, a trained learner), asked for its action slot by slot, with its own
recurrent state.

    rows = run_batch(specs_and_seeds, "DistillGym/SSDKD-Digits-SmallBuffer-Scenarios-v1", {"split": "heldout"})
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from agents.evaluation.episodes import Cell, PolicySpec, build_policy, cached_env, policy_env_kwargs, run_cell

#: vector envs this process has made, by id, settings, size and workers (making one loads data and teachers)
VECTOR_ENVS: OrderedDict[str, Any] = OrderedDict()
#: vector envs kept per process
VECTOR_ENV_CACHE_SIZE = 2


def has_batch_engine(env_id: str) -> bool:
    """Whether ``env_id`` has a lockstep vector env (the fast-tier ``-v1`` ids)."""
    from envs import has_vector_env

    return has_vector_env(env_id)


def cached_vector_env(env_id: str, env_kwargs: dict[str, Any], num_envs: int, workers: int = 1) -> Any:
    """``gymnasium.make_vec(env_id, num_envs, vectorization_mode="vector_entry_point")``, made once per
    process and reused (``reset(seed=[...])`` restarts every slot from its seed).

    :param workers: processes the slots are split over (one per core is fastest on a quiet machine).
    """
    import json

    import gymnasium as gym

    import envs  # noqa: F401  (registers the ids)

    key = json.dumps([env_id, env_kwargs, num_envs, workers], sort_keys=True, default=str)
    if key not in VECTOR_ENVS:
        extra = {"workers": workers} if workers > 1 else {}
        VECTOR_ENVS[key] = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point",
                                        **extra, **env_kwargs)
        if len(VECTOR_ENVS) > VECTOR_ENV_CACHE_SIZE:
            VECTOR_ENVS.popitem(last=False)[1].close()
    VECTOR_ENVS.move_to_end(key)
    return VECTOR_ENVS[key]


def close_vector_envs() -> None:
    """Close every cached vector env (and its worker processes)."""
    while VECTOR_ENVS:
        VECTOR_ENVS.popitem()[1].close()


def run_batch(pairs: Sequence[tuple[PolicySpec, int]], env_id: str, env_kwargs: dict[str, Any], *,
              workers: int = 1, slots: int | None = None, policy_seeds: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """One episode of every ``(policy, seed)`` pair, ``slots`` at a time in the id's lockstep vector env.

    :param pairs: the policies and their ``reset`` seeds.
    :param env_id: a fast-tier id (see :func:`has_batch_engine`).
    :param env_kwargs: its settings.
    :param workers: processes the slots are split over.
    :param slots: runs stepped together (default: all pairs; more slots than pairs are never made).
    :param policy_seeds: the seed each pair's policy is built with (``random`` draws from it); default its
        ``reset`` seed, as :func:`run_cell` does.
    :return: per pair, in order, the row :func:`agents.evaluation.episodes.run_cell` returns (policy,
        seed, return, steps, how it ended, the final metrics, seconds: the batch's wall time per episode).
    """
    import torch

    if not has_batch_engine(env_id):
        raise ValueError(f"{env_id} has no lockstep vector env: evaluate it episode by episode (run_cell)")
    torch.set_num_threads(1)
    pairs = list(pairs)
    seeds = [seed for _, seed in pairs] if policy_seeds is None else [int(s) for s in policy_seeds]
    if len(seeds) != len(pairs):
        raise ValueError(f"{len(seeds)} policy seeds for {len(pairs)} (policy, seed) pairs")
    fixed = {spec.fixed_knobs for spec, _ in pairs}
    if len(fixed) > 1:
        raise ValueError(f"one batch runs one env: its policies must hold the same knobs fixed, got {sorted(fixed)}")
    if pairs:
        env_kwargs = policy_env_kwargs(pairs[0][0], env_kwargs)
    width = max(1, min(slots or len(pairs), len(pairs)))
    width += width % max(1, workers)  # every worker holds the same number of slots
    rows: list[dict[str, Any]] = []
    for start in range(0, len(pairs), width):
        rows += _run_chunk(pairs[start:start + width], seeds[start:start + width], env_id, env_kwargs, width, workers)
    return rows


def _run_chunk(pairs: list[tuple[PolicySpec, int]], policy_seeds: list[int], env_id: str, env_kwargs: dict[str, Any],
               width: int, workers: int) -> list[dict[str, Any]]:
    """Up to ``width`` pairs in one vector env; spare slots replay the first pair and are dropped."""
    from agents.vector import unbatch_info

    venv = cached_vector_env(env_id, env_kwargs, width, workers)
    single = cached_env(env_id, env_kwargs)
    padded = pairs + [pairs[0]] * (width - len(pairs))
    policies = [build_policy(spec, single, seed) for (spec, _), seed in zip(padded, policy_seeds + policy_seeds[:1] * (width - len(pairs)))]
    normalizers = [p.get_vec_normalize_env() if hasattr(p, "get_vec_normalize_env") else None for p in policies]
    start = time.perf_counter()
    obs, _ = venv.reset(seed=[int(seed) for _, seed in padded])
    states: list[Any] = [None] * width
    first = np.ones(width, dtype=bool)
    rewards: list[list[float]] = [[] for _ in range(width)]
    outcome: list[dict[str, Any] | None] = [None] * width
    shape = venv.single_action_space.shape
    while any(o is None for o in outcome[:len(pairs)]):
        actions = np.zeros((width, *shape), dtype=np.float32)
        for i, policy in enumerate(policies):
            seen = normalizers[i].normalize_obs(obs[i]) if normalizers[i] is not None else obs[i]
            action, states[i] = policy.predict(seen, state=states[i], episode_start=first[i:i + 1], deterministic=True)
            actions[i] = np.asarray(action, dtype=np.float32).reshape(shape)
        first[:] = False
        obs, reward, terminated, truncated, infos = venv.step(actions)
        for i in range(width):
            if outcome[i] is not None:
                continue
            rewards[i].append(float(reward[i]))
            if terminated[i] or truncated[i]:
                info = unbatch_info(infos.get("final_info", {}), i)
                outcome[i] = {"return": float(sum(rewards[i])), "steps": len(rewards[i]),
                              "terminated": bool(terminated[i]), "truncated": bool(truncated[i]),
                              "diverged": bool(info.get("diverged", False)),
                              **{k: v for k, v in info.get("final_metrics", {}).items() if isinstance(v, (int, float, bool))}}
    seconds = (time.perf_counter() - start) / width
    return [{"policy": spec.label, "seed": int(seed), **outcome[i], "seconds": seconds}
            for i, (spec, seed) in enumerate(pairs)]


def evaluate_on_seeds(spec: PolicySpec, env_id: str, env_kwargs: dict[str, Any], seeds: Sequence[int], *,
                      workers: int = 1, policy_seeds: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """One episode of ``spec`` on every seed: one lockstep batch on a fast-tier id, else episode by episode
    (:func:`run_cell`); the same rows either way.

    :param policy_seeds: the seed each episode's policy is built with (default: its ``reset`` seed).
    """
    policy_seeds = list(seeds) if policy_seeds is None else list(policy_seeds)
    if has_batch_engine(env_id):
        return run_batch([(spec, seed) for seed in seeds], env_id, env_kwargs, workers=workers, policy_seeds=policy_seeds)
    return [run_cell(Cell(spec, env_id, env_kwargs, seed, policy_seed=policy_seed))
            for seed, policy_seed in zip(seeds, policy_seeds, strict=True)]


def batch_evaluator(env_id: str, env_kwargs: dict[str, Any], *, workers: int = 1) -> Any:
    """An ``evaluate(specs, seeds)`` for :func:`agents.evaluation.oracles.search`: every candidate on every
    seed as one batch."""

    def evaluate(specs: Sequence[PolicySpec], seeds: Sequence[int]) -> list[list[dict[str, Any]]]:
        rows = run_batch([(spec, seed) for spec in specs for seed in seeds], env_id, env_kwargs, workers=workers)
        return [rows[i * len(seeds):(i + 1) * len(seeds)] for i in range(len(specs))]

    return evaluate
