"""Predictive validity of the fast tier: does a policy's paired gain over the paper's constants on a
fast-tier family rank policies the way their gain on the validation tier (SSD-KD on real images with
convolutional networks) does? Multi-fidelity benchmarks publish their fidelities' rank correlation for
the same reason: a cheap tier is worth what it predicts.

The same policies run on every tier (the tiers share their action and observation spaces): the paper's
constants; random static and schedule knob settings, half of them with the learning rate at the
constants (so the gains spread, and the learning rate's share of the agreement shows); searched static
and schedule oracles of several knob groups; and learned policies over several training seeds. Every
policy runs on the same test seeds of every tier — seeds no search, preset or design choice has seen.

    result = run_validity(ValidityConfig(), Path("runs/validity"), Runner("ray", num_cpus=2))

Resumable: every search, learner and (tier, policy) evaluation is a cell of a :class:`CellStore`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.evaluation.backends import Runner
from agents.evaluation.batched import batch_evaluator, evaluate_on_seeds, has_batch_engine
from agents.evaluation.cells import CellStore
from agents.evaluation.cli import progress_bar
from agents.evaluation.episodes import (BASELINE, Cell, PolicySpec, cached_env, check_not_test_seeds, env_definition,
                                        policy_env_kwargs, run_cell)
from agents.evaluation.learners import TrainTask, learner_agent, train_learner, whole_run_id
from agents.evaluation.oracles import search, search_space
from agents.evaluation.sensitivity import BASIC_GROUPS, KNOB_GROUPS, group_dims

#: the fast-tier families compared with the validation tier, and the settings that give them its spaces
FAST_TIERS: dict[str, dict[str, Any]] = {
    "DistillGym/SSDKD-Digits-SmallBuffer-Scenarios-v1": {},
    "DistillGym/SSDKD-MNIST1D-SmallBuffer-Scenarios-v1": {},
    "DistillGym/SSDKD-MNIST1D-Paper-Scenarios-v1": {"class_knobs": False, "priority_knobs": False},
}
VALIDATION_TIER = "DistillGym/SSDKD-FashionMNIST-Paper-Scenarios-v1"
#: the test seeds: a range no search, preset or design choice has used (those used 1000-1099 and 2000-2099)
TEST_SEEDS = tuple(range(5000, 5024))
#: the configuration searches and learners see (training instances)
TRAIN_KWARGS: dict[str, Any] = {"split": "train"}
#: the knob every ``-lr_fixed`` policy keeps at the constants
LEARNING_RATE = "lr_scale"
#: the fast-tier family that ranks policies as the validation tier does (measured: docs/benchmarks.md)
RECOMMENDED_TIER = "DistillGym/SSDKD-MNIST1D-Paper-Scenarios-v1"
#: a learner group that acts on every knob (the others act on one knob group, :data:`KNOB_GROUPS`)
ALL_KNOBS = "all"


@dataclass
class ValidityConfig:
    """The predictive-validity study.

    :param fast_ids: fast-tier per-round ids (see :data:`FAST_TIERS` for the settings each is run with).
    :param validation_id: the validation tier's per-round id.
    :param test_seeds: held-out seeds every policy runs on, on every tier (``split=heldout`` instances).
    :param random_policies: random static and as many random schedule settings, half with the learning rate
        at the constants.
    :param random_seed: the seed they are drawn from.
    :param search_id: where the oracles are searched (training instances and seeds).
    :param search_seeds: training seeds of the searches and of the learners' evaluation callback.
    :param search_groups: knob groups searched (:data:`agents.evaluation.sensitivity.KNOB_GROUPS`).
    :param search_kinds: ``static`` and / or ``schedule``.
    :param trials: trials per search.
    :param learners: learners trained on ``search_id``'s one-decision id (``a2c_schedule``) or per round.
    :param learner_seeds: their training seeds.
    :param recommended_id: a fast tier the learners are also trained on (``None``: none): one whose instances
        cover the validation tier's (buffers of 5-10 %; a learner extrapolates its instance features) and
        whose ``lr_scale`` x1 is its tuned rate, as the validation tier's is.
    :param learner_knobs: the knobs of those learners, one learner group each: :data:`ALL_KNOBS`, or a knob
        group of :data:`~agents.evaluation.sensitivity.KNOB_GROUPS` (``learning_rate``: the learners act on
        it alone, every other knob held at the constants in training and on every tier).
    :param workers: processes a fast-tier lockstep batch is split over.
    :param resamples: bootstrap resamples of every interval; ``bootstrap_seed`` its seed.
    """

    fast_ids: tuple[str, ...] = tuple(FAST_TIERS)
    validation_id: str = VALIDATION_TIER
    test_seeds: tuple[int, ...] = TEST_SEEDS
    random_policies: int = 8
    random_seed: int = 0
    search_id: str = "DistillGym/SSDKD-Digits-SmallBuffer-Scenarios-v1"
    search_seeds: tuple[int, ...] = tuple(range(1000, 1008))
    search_groups: tuple[str, ...] = ("selection_modulation", "learning_rate")
    search_kinds: tuple[str, ...] = ("static", "schedule")
    trials: int = 24
    learners: tuple[str, ...] = ("a2c_schedule",)
    learner_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    recommended_id: str | None = RECOMMENDED_TIER
    learner_knobs: tuple[str, ...] = (ALL_KNOBS,)
    workers: int = 1
    resamples: int = 2000
    bootstrap_seed: int = 0
    env_kwargs: dict[str, Any] = field(default_factory=lambda: {"split": "heldout"})

    def __post_init__(self) -> None:
        for name in ("fast_ids", "test_seeds", "search_seeds", "search_groups", "search_kinds", "learners", "learner_seeds",
                     "learner_knobs"):
            setattr(self, name, tuple(getattr(self, name)))
        check_not_test_seeds(self.search_seeds, "the searches and learners of a study")
        unknown = [i for i in (*self.fast_ids, *([self.recommended_id] if self.recommended_id else [])) if i not in FAST_TIERS]
        if unknown:
            raise ValueError(f"no validity settings for {unknown}: fast tiers are {list(FAST_TIERS)}")
        if len(self.test_seeds) < 2 or self.random_policies % 2:
            raise ValueError(f"a study needs >= 2 test seeds and an even number of random policies "
                             f"(got {len(self.test_seeds)}, {self.random_policies})")
        for name in self.learners:
            learner_agent(name)
        unknown = [g for g in self.learner_knobs if g != ALL_KNOBS and g not in KNOB_GROUPS]
        if unknown or not self.learner_knobs:
            raise ValueError(f"learner_knobs {unknown or '()'}: use {ALL_KNOBS!r} and / or knob groups of {list(KNOB_GROUPS)}")

    def tier_kwargs(self, env_id: str) -> dict[str, Any]:
        """The settings ``env_id`` is evaluated with (held-out instances, the shared spaces)."""
        return {**self.env_kwargs, **FAST_TIERS.get(env_id, {})}

    def settings(self) -> dict[str, Any]:
        """What decides the study's numbers (worker counts do not)."""
        return {k: v for k, v in asdict(self).items() if k != "workers"}


def tier_name(env_id: str) -> str:
    """``DistillGym/SSDKD-Digits-SmallBuffer-Scenarios-v1`` → ``Digits-SmallBuffer-v1``."""
    name = env_id.split("/")[-1].removeprefix("SSDKD-")
    return name.replace("-Scenarios", "")


def random_policies(config: ValidityConfig, names: list[str]) -> list[PolicySpec]:
    """``config.random_policies`` static and as many schedule settings drawn uniformly from the action box;
    the second half of each keeps the learning rate at the constants (``-lr_fixed``).

    :param names: the action entries (the same on every tier).
    """
    rng = np.random.default_rng(config.random_seed)
    k, half = len(names), config.random_policies // 2
    lr = names.index(LEARNING_RATE) if LEARNING_RATE in names else None
    specs = []
    for kind in ("static", "schedule"):
        for i in range(config.random_policies):
            vectors = rng.uniform(-1.0, 1.0, size=(1 if kind == "static" else 2, k))
            fixed = i >= half and lr is not None
            if fixed:
                vectors[:, lr] = 0.0
            label = f"random-{kind}-{i}" + ("-lr_fixed" if fixed else "")
            specs.append(PolicySpec(label, "static", {"action": vectors[0].tolist()}) if kind == "static" else
                         PolicySpec(label, "progress_schedule", {"start": vectors[0].tolist(), "end": vectors[1].tolist()}))
    return specs


def search_cell(config: ValidityConfig, store: CellStore, group: str, kind: str, runner: Runner, progress: bool) -> PolicySpec:
    """The best ``kind`` policy of knob ``group`` on the search id's training instances and seeds (searched once)."""
    env_kwargs = TRAIN_KWARGS

    def make() -> dict[str, Any]:
        env = cached_env(config.search_id, env_kwargs)
        space = search_space(env, group_dims(env, group))
        evaluate = (batch_evaluator(config.search_id, env_kwargs, workers=config.workers)
                    if has_batch_engine(config.search_id) else None)
        with progress_bar(config.trials * len(config.search_seeds), f"search {group} {kind}", progress) as bar:
            result = search(kind, config.search_id, env_kwargs, config.search_seeds, space, trials=config.trials,
                            runner=runner, bar=bar, evaluate=evaluate)
        return {**result.to_json(), "spec": asdict(result.spec)}

    settings = {"env_id": config.search_id, "definition": env_definition(config.search_id), "group": group, "kind": kind,
                "trials": config.trials, "seeds": config.search_seeds}
    record, _ = store.get_or_make(f"search/{group}-{kind}", settings, make)
    spec = record["spec"]
    return PolicySpec(f"oracle-{kind}-{group}", spec["agent"], spec["hyperparams"])


@dataclass
class LearnerGroup:
    """One learner trained over the study's training seeds on one fast tier.

    :param name: the learner (``a2c_schedule``).
    :param env_id: the per-round id it trains on (its one-decision id for a ``_schedule`` learner).
    :param env_kwargs: its training configuration (the fixed knobs aside).
    :param knobs: what it acts on: :data:`ALL_KNOBS`, or a knob group (every other knob held at the constants
        in training and in every evaluation).
    :param label: the group's name in reports; its members are ``<label>-seed<s>``.
    """

    name: str
    env_id: str
    env_kwargs: dict[str, Any]
    knobs: str
    label: str

    @property
    def fixed_knobs(self) -> tuple[str, ...]:
        """The knobs it holds at the constants: every SSD-KD knob outside its group (an env holds the ones it does
        not expose anyway)."""
        if self.knobs == ALL_KNOBS:
            return ()
        return tuple(k for group in BASIC_GROUPS.values() for k in group if k not in KNOB_GROUPS[self.knobs])

    @property
    def holds_learning_rate(self) -> bool:
        """Whether its learning rate stays at the constants (a comparison of the other knobs alone)."""
        return self.knobs != ALL_KNOBS and LEARNING_RATE not in KNOB_GROUPS[self.knobs]


def learner_groups(config: ValidityConfig) -> list[LearnerGroup]:
    """Every learner on the search id, and, with ``recommended_id``, on that tier too, once per entry of
    ``learner_knobs`` (``a2c_schedule-MNIST1D-Paper-v1``; ``...-learning_rate`` for the learning-rate group)."""
    groups = [LearnerGroup(name, config.search_id, TRAIN_KWARGS, ALL_KNOBS, name) for name in config.learners]
    if config.recommended_id is not None:
        kwargs = {**TRAIN_KWARGS, **FAST_TIERS[config.recommended_id]}
        groups += [LearnerGroup(name, config.recommended_id, kwargs, knobs,
                                "-".join(filter(None, (name, tier_name(config.recommended_id),
                                                       "" if knobs == ALL_KNOBS else knobs))))
                   for knobs in config.learner_knobs for name in config.learners]
    return groups


def learner_cells(config: ValidityConfig, store: CellStore, out: Path, runner: Runner) -> list[PolicySpec]:
    """Every learner group trained on every training seed (the ones not trained yet in parallel, one task each)."""
    tasks, specs = [], []
    for group in learner_groups(config):
        agent, whole_run = learner_agent(group.name)
        for seed in config.learner_seeds:
            label = f"{group.label}-seed{seed}"
            folder = (out / "models" / group.label / f"seed{seed}").resolve()
            spec = PolicySpec(label, agent, model_dir=str(folder), whole_run=whole_run, fixed_knobs=group.fixed_knobs)
            train_kwargs = policy_env_kwargs(spec, group.env_kwargs)  # it trains as it is evaluated
            settings: dict[str, Any] = {"learner": group.name, "env_id": group.env_id,
                                        "definition": env_definition(group.env_id), "seed": seed}
            if train_kwargs != TRAIN_KWARGS:
                settings["env_kwargs"] = train_kwargs
            trained = store.read(f"learner/{label}", settings) is not None
            if not trained and (folder / "model.zip").exists():
                # trained by a run killed before it wrote the cells (the model is saved once training ends)
                store.write(f"learner/{label}", settings, {"model_dir": str(folder), "label": label, "trained_before": True})
                trained = True
            if not trained:
                tasks.append((label, settings, TrainTask(agent, whole_run_id(group.env_id) if whole_run else group.env_id,
                                                         train_kwargs, seed, None, str(folder),
                                                         config.search_seeds[:2], label=label)))
            specs.append(spec)
    if tasks:
        for (label, settings, _), record in zip(tasks, runner.map(train_learner, [t for *_, t in tasks])):
            store.write(f"learner/{label}", settings, record)
    return specs


def catalogue(config: ValidityConfig, store: CellStore, out: Path, runner: Runner, progress: bool,
              ready_only: bool = False) -> list[PolicySpec]:
    """Every policy of the study: the constants, the random settings, the searched oracles, the learners
    (``ready_only``: the first two, which need no search or training)."""
    env = cached_env(config.search_id, TRAIN_KWARGS)
    specs = [PolicySpec(BASELINE, "constant"), *random_policies(config, list(env.unwrapped.action_names))]
    if ready_only:
        return specs
    specs += [search_cell(config, store, group, kind, runner, progress)
              for group in config.search_groups for kind in config.search_kinds]
    return specs + learner_cells(config, store, out, runner)


def evaluate_tier(config: ValidityConfig, store: CellStore, env_id: str, specs: list[PolicySpec], runner: Runner,
                  progress: bool) -> list[dict[str, Any]]:
    """Every policy on every test seed of one tier: a lockstep batch a policy on a fast-tier id, else one
    task a seed through ``runner`` (Ray spreads them over the cores or a cluster). One cell a policy."""
    env_kwargs = config.tier_kwargs(env_id)
    definition = env_definition(env_id)
    rows: list[dict[str, Any]] = []
    seeds = config.test_seeds
    with progress_bar(len(specs) * len(seeds), tier_name(env_id), progress) as bar:
        for spec in specs:
            def make(spec: PolicySpec = spec) -> list[dict[str, Any]]:
                if has_batch_engine(env_id):
                    return evaluate_on_seeds(spec, env_id, env_kwargs, seeds, workers=config.workers)
                return runner.map(run_cell, [Cell(spec, env_id, env_kwargs, seed) for seed in seeds], bar=bar)

            settings = {"env_id": env_id, "definition": definition, "env_kwargs": env_kwargs,
                        "policy": spec.settings(), "seeds": seeds}
            cell, found = store.get_or_make(f"eval/{tier_name(env_id)}/{spec.label}", settings, make)
            rows += [{**row, "tier": env_id} for row in cell]
            if bar is not None and (found or has_batch_engine(env_id)):
                bar.update(len(seeds))
    return rows


@dataclass
class ValidityResult:
    """What :func:`run_validity` found: every (tier, policy, test seed) row and the policies' labels."""

    config: ValidityConfig
    rows: list[dict[str, Any]]
    policies: list[str]
    seconds: float


def run_validity(config: ValidityConfig, out: Path, runner: Runner, *, progress: bool = True,
                 tiers: tuple[str, ...] | None = None, ready_only: bool = False,
                 policies: tuple[str, ...] | None = None) -> ValidityResult:
    """Run (or resume) the study in ``out``: searches, learners, then every tier's evaluations.

    :param tiers: the tiers to evaluate now (default: the validation tier, then the fast ones); a later
        call with the rest completes the study.
    :param ready_only: evaluate only the policies that need no search or training (e.g. in a second
        process while the first searches and trains); a later full call reads their cells.
    :param policies: evaluate only the policies whose labels match these patterns (``fnmatch``: processes
        or machines given disjoint patterns share the work); the result then holds only them.
    """
    from fnmatch import fnmatchcase

    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    out = Path(out)
    store = CellStore(out, config.settings())
    specs = catalogue(config, store, out, runner, progress, ready_only)
    if policies is not None:
        specs = [s for s in specs if any(fnmatchcase(s.label, p) for p in policies)]
        if not specs:
            raise ValueError(f"no policy of the study matches {list(policies)}")
    rows: list[dict[str, Any]] = []
    for env_id in tiers or (config.validation_id, *config.fast_ids):
        rows += evaluate_tier(config, store, env_id, specs, runner, progress)
    return ValidityResult(config, rows, [s.label for s in specs], time.perf_counter() - start)


__all__ = ["ALL_KNOBS", "FAST_TIERS", "RECOMMENDED_TIER", "TEST_SEEDS", "VALIDATION_TIER", "LearnerGroup", "ValidityConfig", "ValidityResult",
           "catalogue", "evaluate_tier", "learner_groups",
           "random_policies", "run_validity", "tier_definition", "tier_name"]
