"""The leaderboard: learners × training seeds, beside the paper's constants, ``random`` and the searched
static and schedule oracles, every policy on the same held-out instances and seeds.

A *cell* is one policy with one training seed (``random``: its own seed; the constants and an oracle:
one cell), evaluated on every held-out seed. Each finished cell is a cell of a
:class:`~agents.evaluation.cells.CellStore` (``<out>/cells/<policy>/seed<k>.json``: its settings, a
checksum and its rows), written at once, so a run stopped half-way and started again skips what is done;
a learner's trained model is kept under ``<out>/models`` and not trained again. A cell that fails (a
training job that raises) is recorded as failed, reported, and tried again on the next start. A folder
holds one configuration (more learners, baselines or seeds extend it); starting another in it is refused.

The searches and the evaluations run as lockstep batches on the fast-tier ids
(:mod:`agents.evaluation.batched`, the same numbers as one episode at a time); learners train with
:func:`agents.evaluation.learners.train_learner` through a :class:`Runner` (here, or as Ray tasks).

    config = LeaderboardConfig(learners=("ppo_schedule", "sac_schedule"), train_seeds=(0, 1, 2, 3, 4))
    with Runner("local") as runner:
        result = run_leaderboard(config, runner, Path("runs/leaderboard"))
"""

from __future__ import annotations

import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agents.evaluation.backends import Runner
from agents.evaluation.batched import batch_evaluator, close_vector_envs, evaluate_on_seeds, has_batch_engine
from agents.evaluation.cli import progress_bar
from agents.evaluation.cells import CellStore
from agents.evaluation.episodes import BASELINE, METRIC, OBJECTIVE, PolicySpec, cached_env, env_definition
from agents.evaluation.learners import TrainTask, learner_agent, train_learner, whole_run_id
from agents.evaluation.oracles import SAMPLERS, SEARCHED, SearchResult, search, search_space
from agents.evaluation.reports import json_safe

#: the policies that learn nothing and need no search, by leaderboard name -> registry baseline
#: (``scripted``: the registry's ``schedule``, β annealed to 1 — named apart from the searched ``schedule`` oracle)
BASELINES: dict[str, str] = {"constant": "constant", "random": "random", "scripted": "schedule", "adaptive": "adaptive"}
#: configuration fields a leaderboard's folder may gain or change: they add cells, or move no number
EXTENDABLE = ("learners", "baselines", "oracles", "train_seeds", "timesteps", "hyperparams", "reps", "workers")
#: how far apart the seeds of ``random``'s runs are (a policy seed is ``held-out seed + RUN_STRIDE · run``)
RUN_STRIDE = 1_000_000


@dataclass
class LeaderboardConfig:
    """What a leaderboard compares, and on what.

    :param env_id: the per-round env every policy is evaluated on (a ``_schedule`` learner trains on its
        one-decision-per-run id).
    :param learners: ``ppo``, ``sac``, ... (one action per round) and ``ppo_schedule``, ``td3_schedule``,
        ... (one schedule per run): any registry learning agent, with or without ``_schedule``.
    :param baselines: from :data:`BASELINES`; ``constant`` is always run (it is the reference).
    :param oracles: ``static`` and / or ``schedule``, searched on ``search_seeds``.
    :param train_seeds: the learners' (and ``random``'s) seeds: each is one run of the leaderboard.
    :param search_seeds: env seeds of the searches and of the learners' learning curves (training instances).
    :param eval_seeds: held-out env seeds; disjoint from ``search_seeds``.
    :param train_env_kwargs: the configuration searches and learners see (e.g. ``split=train``).
    :param eval_env_kwargs: the held-out configuration (e.g. ``split=heldout``).
    :param trials: trials per search, the constants included; ``parallel_trials`` asked at once.
    :param sampler: Optuna sampler; ``search_seed`` its seed.
    :param timesteps: training budgets by learner name (a learner not named: its YAML block's ``n_timesteps``).
    :param hyperparams: per-learner overrides of the YAML block.
    :param workers: processes a batch of evaluation runs is split over.
    :param reps: bootstrap replications of the report's intervals; ``bootstrap_seed`` their seed.
    """

    env_id: str = "DistillGym/SSDKD-Digits-SmallBuffer-Scenarios-v1"
    learners: tuple[str, ...] = ("ppo_schedule",)
    baselines: tuple[str, ...] = ("constant", "random")
    oracles: tuple[str, ...] = ("static", "schedule")
    train_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    search_seeds: tuple[int, ...] = tuple(range(1000, 1012))
    eval_seeds: tuple[int, ...] = tuple(range(2000, 2060))
    train_env_kwargs: dict[str, Any] = field(default_factory=lambda: {"split": "train"})
    eval_env_kwargs: dict[str, Any] = field(default_factory=lambda: {"split": "heldout"})
    trials: int = 60
    parallel_trials: int = 2
    sampler: str = "tpe"
    search_seed: int = 0
    timesteps: dict[str, int] = field(default_factory=dict)
    hyperparams: dict[str, dict[str, Any]] = field(default_factory=dict)
    objective: str = OBJECTIVE
    metric: str = METRIC
    workers: int = 1
    reps: int = 2000
    bootstrap_seed: int = 0

    def __post_init__(self) -> None:
        for name in ("learners", "baselines", "oracles", "train_seeds", "search_seeds", "eval_seeds"):
            setattr(self, name, tuple(dict.fromkeys(getattr(self, name))))
        unknown = [b for b in self.baselines if b not in BASELINES]
        if unknown:
            raise ValueError(f"unknown baselines {unknown}: use {list(BASELINES)}")
        self.baselines = (BASELINE,) + tuple(b for b in self.baselines if b != BASELINE)
        unknown = [o for o in self.oracles if o not in SEARCHED]
        if unknown:
            raise ValueError(f"unknown oracles {unknown}: use {list(SEARCHED)}")
        for name in self.learners:
            learner_agent(name)
            if learner_agent(name)[1]:
                whole_run_id(self.env_id)
        overlap = sorted(set(self.search_seeds) & set(self.eval_seeds))
        if overlap:
            raise ValueError(f"search and held-out seeds overlap in {overlap}: a held-out seed must never be searched or trained on")
        if not self.eval_seeds or not self.train_seeds:
            raise ValueError("a leaderboard needs held-out seeds and at least one training seed")
        if (self.oracles or self.learners) and not self.search_seeds:
            raise ValueError("searches and learners need search seeds (training instances)")
        if self.trials < 1 or self.parallel_trials < 1 or self.workers < 1:
            raise ValueError(f"trials, parallel_trials and workers must be >= 1 (got {self.trials}, "
                             f"{self.parallel_trials}, {self.workers})")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}: use one of {SAMPLERS}")

    def settings_of(self, policy: str) -> dict[str, Any]:
        """What a learner's cells depend on beyond the folder's configuration: its budget and overrides
        (kept in each cell, so a folder can gain learners but never mix two budgets of one)."""
        return {"timesteps": self.timesteps.get(policy), "hyperparams": self.hyperparams.get(policy, {})}

    @property
    def policies(self) -> tuple[str, ...]:
        """Every policy in report order: baselines, oracles, learners."""
        return (*self.baselines, *self.oracles, *self.learners)

    def runs_of(self, policy: str) -> tuple[int, ...]:
        """The training seeds a policy has cells for (one, ``0``, for the constants and the oracles)."""
        return self.train_seeds if policy == "random" or policy in self.learners else (0,)


def policy_kind(name: str, config: LeaderboardConfig) -> str:
    """``baseline``, ``oracle`` or ``learner``."""
    return "baseline" if name in config.baselines else "oracle" if name in config.oracles else "learner"


def cell_path(out: Path, policy: str, run: int) -> Path:
    """Where a finished cell is kept."""
    return Path(out) / "cells" / policy / f"seed{run}.json"


def failure_path(out: Path, policy: str, run: int) -> Path:
    """Where a failed cell's error is kept (removed when the cell succeeds)."""
    return Path(out) / "cells" / policy / f"seed{run}.failed.json"


def cell_store(config: LeaderboardConfig, out: Path) -> CellStore:
    """The folder's cells (refused when it holds another configuration, :data:`EXTENDABLE` aside)."""
    return CellStore(Path(out), json_safe(asdict(config)), ignore=EXTENDABLE)


def cell_settings(config: LeaderboardConfig, policy: str) -> dict[str, Any]:
    """What a cell's numbers depend on beyond the folder's configuration: the env's definition (its preset)
    and the policy's budget and overrides."""
    return {"definition": env_definition(config.env_id), **json_safe(config.settings_of(policy))}


def read_cell(config: LeaderboardConfig, store: CellStore, policy: str, run: int) -> dict[str, Any] | None:
    """A finished cell, or ``None`` when it is not finished (or its file is corrupt: made again, with a warning).

    :raises ValueError: the cell was made with another budget, overrides or preset than ``config`` asks for.
    """
    settings = cell_settings(config, policy)
    try:
        return store.read(f"{policy}/seed{run}", settings)
    except ValueError:
        raise ValueError(f"{store.path(f'{policy}/seed{run}')} was made with other settings than {settings}: use a new "
                         f"--out for another budget of {policy}, or the same settings to resume") from None


@dataclass
class LeaderboardResult:
    """What :func:`run_leaderboard` found.

    :param rows: every (policy, training seed, held-out seed) episode's row.
    :param cells: per finished cell: policy, run, kind, seconds (training, evaluation), skipped (finished before).
    :param failed: per failed cell: policy, run, error.
    """

    config: LeaderboardConfig
    rows: list[dict[str, Any]]
    cells: list[dict[str, Any]]
    failed: list[dict[str, Any]]
    searches: dict[str, dict[str, Any]]
    seconds: float


def run_leaderboard(config: LeaderboardConfig, runner: Runner, out: Path, *, progress: bool = True) -> LeaderboardResult:
    """Search, train and evaluate every cell not finished in ``out``, then gather every cell's rows.

    :param config: what to compare.
    :param runner: where learners train (here, or Ray tasks).
    :param out: the leaderboard's folder (created; resumed when it exists).
    :param progress: progress bars.
    """
    start = time.perf_counter()
    out = Path(out)
    store = cell_store(config, out)
    try:
        searches = {kind: run_search(config, kind, store, runner, progress) for kind in config.oracles}
        pending, failed = run_cells(config, store, searches, runner, progress)
    finally:
        close_vector_envs()  # their worker processes
    rows, cells = [], []
    for policy in config.policies:
        for run in config.runs_of(policy):
            cell = read_cell(config, store, policy, run)
            if cell is None:
                continue
            rows += [{"policy": policy, "kind": cell["kind"], "run": run, **row} for row in cell["rows"]]
            cells.append({k: cell[k] for k in ("policy", "run", "kind", "train", "evaluate_seconds", "seconds")}
                         | {"resumed": (policy, run) not in pending})
    return LeaderboardResult(config, rows, cells, failed, searches, time.perf_counter() - start)


def run_cells(config: LeaderboardConfig, store: CellStore, searches: dict[str, dict[str, Any]], runner: Runner,
              progress: bool) -> tuple[list[tuple[str, int]], list[dict[str, Any]]]:
    """Train and evaluate every cell not finished in ``store``; returns the cells it ran and the failed ones."""
    from distill_core.common.report import write_json

    out = store.root
    failed: list[dict[str, Any]] = []
    pending = [(p, r) for p in config.policies for r in config.runs_of(p) if read_cell(config, store, p, r) is None]
    with progress_bar(len(pending), "leaderboard", progress, unit="cell") as bar:
        for policy, run in pending:
            t0 = time.perf_counter()
            try:
                spec, train = cell_policy(config, policy, run, out, searches, runner)
                t1 = time.perf_counter()
                rows = evaluate(config, spec, run)
            except Exception as err:  # a failed run is reported and retried next time; it never ends the leaderboard
                record = {"policy": policy, "run": run, "error": f"{type(err).__name__}: {err}",
                          "traceback": traceback.format_exc(limit=6)}
                write_json(record, failure_path(out, policy, run))
                failed.append(record)
            else:
                store.write(f"{policy}/seed{run}", cell_settings(config, policy),
                            {"policy": policy, "run": run, "kind": policy_kind(policy, config), "train": train,
                             "evaluate_seconds": time.perf_counter() - t1, "seconds": time.perf_counter() - t0, "rows": rows})
                failure_path(out, policy, run).unlink(missing_ok=True)
            if bar is not None:
                bar.update(1)
    return pending, failed


def run_search(config: LeaderboardConfig, kind: str, store: CellStore, runner: Runner, progress: bool) -> dict[str, Any]:
    """The oracle's search, run once and kept as cell ``search/<kind>`` (its best policy's spec and every trial)."""
    return store.get_or_make(f"search/{kind}", {"kind": kind, "definition": env_definition(config.env_id)},
                             lambda: _search(config, kind, runner, progress))[0]


def _search(config: LeaderboardConfig, kind: str, runner: Runner, progress: bool) -> dict[str, Any]:
    env = cached_env(config.env_id, config.train_env_kwargs)
    space = search_space(env)
    evaluate_batch = (batch_evaluator(config.env_id, config.train_env_kwargs, workers=config.workers)
                      if has_batch_engine(config.env_id) else None)
    with progress_bar(config.trials * len(config.search_seeds), f"search {kind}", progress) as bar:
        result: SearchResult = search(kind, config.env_id, config.train_env_kwargs, config.search_seeds, space,
                                      trials=config.trials, runner=runner, objective=config.objective,
                                      sampler=config.sampler, seed=config.search_seed, batch=config.parallel_trials,
                                      bar=bar, evaluate=evaluate_batch)
    return {**result.to_json(), "spec": asdict(result.spec)}


def cell_policy(config: LeaderboardConfig, policy: str, run: int, out: Path, searches: dict[str, dict[str, Any]],
                runner: Runner) -> tuple[PolicySpec, dict[str, Any]]:
    """The policy of a cell, trained first if it is a learner (a model already in ``<out>/models`` is
    kept); and the training's record (steps, seconds), empty for the others."""
    if policy in config.baselines:
        return PolicySpec(policy, BASELINES[policy]), {}
    if policy in config.oracles:
        spec = searches[policy]["spec"]
        return PolicySpec(policy, spec["agent"], spec["hyperparams"]), {}
    agent, whole_run = learner_agent(policy)
    folder = (Path(out) / "models" / policy / f"seed{run}").resolve()
    train: dict[str, Any] = {"model_dir": str(folder), "trained_before": True}
    if not (folder / "model.zip").exists():
        task = TrainTask(agent, whole_run_id(config.env_id) if whole_run else config.env_id, config.train_env_kwargs,
                         run, config.timesteps.get(policy), str(folder), config.search_seeds[:2],
                         dict(config.hyperparams.get(policy, {})), label=policy)
        train = runner.map(train_learner, [task])[0]
    return PolicySpec(policy, agent, model_dir=str(folder), whole_run=whole_run), train


def evaluate(config: LeaderboardConfig, spec: PolicySpec, run: int) -> list[dict[str, Any]]:
    """The policy on every held-out seed: one lockstep batch on a fast-tier id, else episode by episode.
    ``random`` draws from a seed of its own per run and held-out seed (``seed + RUN_STRIDE · run``), so
    its runs differ; every other policy ignores the seed it is built with."""
    return evaluate_on_seeds(spec, config.env_id, config.eval_env_kwargs, config.eval_seeds, workers=config.workers,
                             policy_seeds=[seed + RUN_STRIDE * run for seed in config.eval_seeds])
