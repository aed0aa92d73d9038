"""Headroom per knob group: the static and schedule searches restricted to one group of knobs at a time,
the rest at the paper's constants, each best re-run on held-out seeds and compared with the constants
seed by seed. The sensitivity map (env × group → paired gain with its 95 % CI) says how much of an env's
headroom is selection, modulation, replacement or the learning rate.

    from agents.evaluation.sensitivity import SensitivityConfig, run_sensitivity
    result = run_sensitivity(SensitivityConfig(env_id="DistillGym/SSDKD-Digits-SmallBuffer-Scenarios-v1"), Path("runs/s"))

Resumable: the constants and each (group, kind) are cells of a :class:`~agents.evaluation.cells.CellStore` in
``<out>`` (settings and a checksum in each): found cells are read, not searched again.
Searches run on training seeds and score the student's validation accuracy; the gains are in final test
accuracy on held-out seeds that no search saw.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.evaluation.backends import Runner
from agents.evaluation.batched import batch_evaluator, evaluate_on_seeds, has_batch_engine
from agents.evaluation.cli import progress_bar
from agents.evaluation.cells import CellStore
from agents.evaluation.episodes import BASELINE, METRIC, OBJECTIVE, PolicySpec, cached_env, env_definition
from agents.evaluation.oracles import SAMPLERS, SEARCHED, knob_values, search, search_space
from agents.evaluation.statistics import bootstrap_ci

#: SSD-KD's knobs by what they act on, each in one group; per-class knobs are searched entry by entry (a
#: tied one only rescales a normalised draw). A group keeps the knobs the env exposes; an env exposing none
#: of a group skips it.
BASIC_GROUPS: dict[str, tuple[str, ...]] = {
    "selection": ("alpha", "beta", "class_priority"),
    "modulation": ("gamma", "diversity", "class_weights"),
    "replacement": ("replace_fraction",),
    "learning_rate": ("lr_scale",),
}
#: the basic groups and ``selection_modulation``: what SSD-KD adds to a data-free KD loop, searched together
KNOB_GROUPS: dict[str, tuple[str, ...]] = {
    **BASIC_GROUPS, "selection_modulation": BASIC_GROUPS["selection"] + BASIC_GROUPS["modulation"]}


def group_dims(env: Any, group: str) -> list[str]:
    """The search dimensions of ``group`` on ``env``: its exposed scalar knobs, and every entry of its exposed
    per-class knobs (``class_priority/0`` …); empty if the env exposes none of them.

    :raises ValueError: an unknown group, naming the known ones.
    """
    if group not in KNOB_GROUPS:
        raise ValueError(f"unknown knob group {group!r}: use one of {list(KNOB_GROUPS)}")
    specs = {spec.name: spec for spec in env.unwrapped.knob_specs}
    dims: list[str] = []
    for name in KNOB_GROUPS[group]:
        spec = specs.get(name)
        if spec is not None:
            dims += [f"{name}/{i}" for i in range(spec.size)] if spec.per_class else [name]
    return dims


@dataclass
class SensitivityConfig:
    """One env's knob-group headroom.

    :param env_id: a per-round env (a fast-tier id runs its episodes as lockstep batches).
    :param groups: from :data:`KNOB_GROUPS`.
    :param kinds: ``static`` and / or ``schedule``.
    :param train_env_kwargs: the configuration the searches see (``split=train``).
    :param eval_env_kwargs: the held-out configuration (``split=heldout``).
    :param search_seeds: training seeds every trial runs on.
    :param eval_seeds: held-out seeds, disjoint from ``search_seeds``.
    :param trials: trials per search, the constants first.
    :param sampler: Optuna sampler; ``search_seed`` its seed.
    :param workers: processes a lockstep batch is split over.
    :param resamples: bootstrap resamples of the paired CI; ``bootstrap_seed`` its seed.
    """

    env_id: str = "DistillGym/SSDKD-Digits-SmallBuffer-Scenarios-v1"
    groups: tuple[str, ...] = tuple(BASIC_GROUPS)
    kinds: tuple[str, ...] = tuple(SEARCHED)
    train_env_kwargs: dict[str, Any] = field(default_factory=lambda: {"split": "train"})
    eval_env_kwargs: dict[str, Any] = field(default_factory=lambda: {"split": "heldout"})
    search_seeds: tuple[int, ...] = tuple(range(1000, 1010))
    eval_seeds: tuple[int, ...] = tuple(range(2000, 2060))
    trials: int = 40
    sampler: str = "tpe"
    search_seed: int = 0
    workers: int = 1
    resamples: int = 10_000
    bootstrap_seed: int = 0

    def __post_init__(self) -> None:
        self.groups, self.kinds = tuple(self.groups), tuple(self.kinds)
        self.search_seeds, self.eval_seeds = tuple(self.search_seeds), tuple(self.eval_seeds)
        unknown = [g for g in self.groups if g not in KNOB_GROUPS] + [k for k in self.kinds if k not in SEARCHED]
        if unknown:
            raise ValueError(f"unknown groups or kinds {unknown}: groups are {list(KNOB_GROUPS)}, kinds {list(SEARCHED)}")
        overlap = sorted(set(self.search_seeds) & set(self.eval_seeds))
        if overlap:
            raise ValueError(f"search and held-out seeds overlap in {overlap}: a held-out seed must never be searched on")
        if self.trials < 1 or not self.search_seeds or not self.eval_seeds:
            raise ValueError(f"a sensitivity run needs trials >= 1, search seeds and held-out seeds (got {self.trials}, "
                             f"{len(self.search_seeds)}, {len(self.eval_seeds)})")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}: use one of {SAMPLERS}")


def paired_gain(rows: Sequence[dict[str, Any]], reference: Sequence[dict[str, Any]], *, resamples: int = 10_000,
                seed: int = 0, metric: str = METRIC) -> dict[str, Any]:
    """Mean paired difference of ``metric`` in points (rows matched by seed) with its bootstrap 95 % CI, and
    the share of seeds on which ``rows`` is better.

    :raises ValueError: the two lists do not hold the same seeds.
    """
    ref = {int(r["seed"]): float(r[metric]) for r in reference}
    if sorted(ref) != sorted(int(r["seed"]) for r in rows):
        raise ValueError("a paired gain needs the same held-out seeds on both sides")
    diffs = np.array([100.0 * (float(r[metric]) - ref[int(r["seed"])]) for r in rows])
    low, high = bootstrap_ci(diffs, resamples=resamples, seed=seed)
    return {"gain": float(diffs.mean()), "ci": [low, high], "win_rate": float((diffs > 0).mean()),
            "diffs": diffs.tolist()}


def _settings(config: SensitivityConfig, **cell: Any) -> dict[str, Any]:
    """What a cell's numbers depend on: the env (its definition too) and the held-out seeds, plus ``cell``."""
    return {"env_id": config.env_id, "definition": env_definition(config.env_id), "eval_env_kwargs": config.eval_env_kwargs,
            "eval_seeds": config.eval_seeds, **cell}


def run_cell_search(config: SensitivityConfig, group: str, kind: str, reference: list[dict[str, Any]],
                    store: CellStore, progress: bool) -> dict[str, Any] | None:
    """Search ``group`` alone (``kind``), evaluate the best on the held-out seeds and compare it with the
    constants there; kept as cell ``search/<group>-<kind>``. ``None`` when the env exposes no knob of the group."""
    env = cached_env(config.env_id, config.train_env_kwargs)
    dims = group_dims(env, group)
    if not dims:
        return None

    def make() -> dict[str, Any]:
        space = search_space(env, dims)
        evaluate = (batch_evaluator(config.env_id, config.train_env_kwargs, workers=config.workers)
                    if has_batch_engine(config.env_id) else None)
        with Runner("local") as runner, progress_bar(config.trials * len(config.search_seeds), f"{group} {kind}", progress) as bar:
            found = search(kind, config.env_id, config.train_env_kwargs, config.search_seeds, space, trials=config.trials,
                           runner=runner, sampler=config.sampler, seed=config.search_seed, bar=bar, evaluate=evaluate)
        start = time.perf_counter()
        spec = PolicySpec(f"{group}:{kind}", found.spec.agent, found.spec.hyperparams)
        rows = evaluate_on_seeds(spec, config.env_id, config.eval_env_kwargs, config.eval_seeds, workers=config.workers)
        hp = found.spec.hyperparams
        actions = [hp["action"]] if kind == "static" else [hp["start"], hp["end"]]
        return {"group": group, "kind": kind, "dims": dims, "search_seconds": found.seconds,
                "eval_seconds": time.perf_counter() - start, "best_trial": found.best["number"],
                "best_search_value": found.best["value"], "constants_search_value": found.trials[0]["value"],
                "trial_values": [t["value"] for t in found.trials],
                "knobs": [{k: v for k, v in knob_values(env, a).items() if k in dims} for a in actions],
                "spec": spec.settings(), "rows": [{k: v for k, v in r.items() if k != "trace"} for r in rows],
                **paired_gain(rows, reference, resamples=config.resamples, seed=config.bootstrap_seed),
                "diverged": int(sum(bool(r.get("diverged", False)) for r in rows))}

    settings = _settings(config, group=group, kind=kind, train_env_kwargs=config.train_env_kwargs,
                         search_seeds=config.search_seeds, trials=config.trials, sampler=config.sampler,
                         search_seed=config.search_seed, resamples=config.resamples, bootstrap_seed=config.bootstrap_seed)
    return store.get_or_make(f"search/{group}-{kind}", settings, make)[0]


def run_sensitivity(config: SensitivityConfig, out: Path, *, progress: bool = True) -> dict[str, Any]:
    """Every (group, kind) cell of ``config`` beside the constants on the same held-out seeds, each a cell of a
    :class:`CellStore` in ``out`` (found cells are read and their settings checked; a study may add groups
    and kinds to its folder). Returns the JSON the report is written from."""
    from distill_core.common.report import write_json

    out = Path(out)
    start = time.perf_counter()
    store = CellStore(out, asdict(config), ignore=("groups", "kinds", "workers"))

    def constants() -> list[dict[str, Any]]:
        rows = evaluate_on_seeds(PolicySpec(BASELINE, BASELINE), config.env_id, config.eval_env_kwargs, config.eval_seeds,
                                 workers=config.workers)
        return [{k: v for k, v in r.items() if k != "trace"} for r in rows]

    reference = store.get_or_make(f"reference/{BASELINE}", _settings(config), constants)[0]
    cells = [c for group in config.groups for kind in config.kinds
             if (c := run_cell_search(config, group, kind, reference, store, progress)) is not None]
    skipped = [g for g in config.groups if not group_dims(cached_env(config.env_id, config.train_env_kwargs), g)]
    result = {"config": asdict(config), "objective": OBJECTIVE, "metric": METRIC,
              "constants_accuracy": float(np.mean([r[METRIC] for r in reference])), "cells": cells,
              "skipped_groups": skipped, "seconds": time.perf_counter() - start}
    write_json(result, out / "sensitivity.json")
    return result


__all__ = ["BASIC_GROUPS", "KNOB_GROUPS", "SensitivityConfig", "group_dims", "paired_gain", "run_sensitivity"]
