"""The headroom benchmark (DACBench-style): how much better than the paper's constants can *any* policy do
on an env?

Every policy is evaluated on the same held-out seeds (paired), and compared with ``constant`` seed by
seed:

- ``constant`` (the paper's knobs) and ``random``;
- ``static``: the best fixed action found by black-box search (Optuna's TPE by default) on *training*
  seeds, scored by the student's *validation* accuracy (``info["final_metrics"]["val_accuracy"]``);
- ``schedule``: the best pair of actions (start, end), linearly interpolated over the observation's
  ``progress``, searched likewise;
- ``adaptive``: the hand-written heuristic :class:`agents.baselines.AdaptivePolicy` (the constants where
  the env gives it nothing to read);
- ``ppo`` and ``sac``: trained with :func:`agents.training.train_agent` on the training configuration;
- ``ppo_schedule`` and ``sac_schedule``: the same learners trained on the env's one-decision-per-run id
  (:data:`envs.SCHEDULE_IDS`: the action is a whole schedule, picked from the first observation), then
  evaluated on the per-round env beside everything else (:class:`agents.whole_run.WholeRunPolicy`).

Honest statistics: the search only sees the training seeds and the validation split; the held-out
seeds are never used for a search or for training (a configuration whose two seed lists overlap is
refused); every number reported is the *final* test accuracy of an episode, never a best over
evaluations. The paired difference to ``constant`` gets a seeded percentile bootstrap 95 % CI (10 000
resamples) and the paired Student-t interval. Spearman's ρ between the data-free return and the final
test accuracy is reported over the policies' means and over single episodes.

Searches and evaluations are lists of (policy, seed) cells, run here one after another or as Ray tasks
(:class:`agents.evaluation.backends.Runner`, which the leaderboard uses too), so a sweep outgrows one machine without new code.
Under Ray, trained models are written under ``out`` and read back by the evaluation tasks: the folder
must be visible to every node (a shared file system; any folder on a single machine).

    from agents.evaluation import HeadroomConfig, Runner, run_headroom, write_report
    config = HeadroomConfig(env_id="DistillGym/SSDKD-Digits-v0", trials=30)
    with Runner("local") as runner:
        result = run_headroom(config, runner)
    write_report(result, Path("runs/bench/headroom/SSDKD-Digits-v0"))
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.evaluation.backends import Runner
from agents.evaluation.cli import progress_bar
from agents.evaluation.episodes import (BASELINE, DEFAULT_EVAL_SEEDS, DEFAULT_TRAIN_SEEDS, METRIC, OBJECTIVE, PolicySpec,
                                        cached_env, evaluate_policies)
from agents.evaluation.learners import LEARNERS, WHOLE_RUN_LEARNERS, TrainTask, train_learner, whole_run_id
from agents.evaluation.oracles import SAMPLERS, SEARCHED, SearchResult, knob_values, search, search_space
from agents.evaluation.statistics import PolicySummary, rank_correlations, summarise

#: every policy the benchmark knows, in report order
POLICIES = ("constant", "random", "static", "schedule", "adaptive", *LEARNERS, *WHOLE_RUN_LEARNERS)


@dataclass
class HeadroomConfig:
    """What a headroom run compares, and on what.

    :param env_id: the env.
    :param train_env_kwargs: the configuration searches and learners see (e.g. ``split=train``).
    :param eval_env_kwargs: the held-out configuration every policy is evaluated on.
    :param train_seeds: seeds of the search (every trial runs on all) and of learners' learning curves.
    :param eval_seeds: held-out seeds; disjoint from ``train_seeds``.
    :param policies: from :data:`POLICIES`; ``constant`` is always added (it is the reference).
    :param trials: trials per search (the constants included).
    :param knobs: searched knobs (see :func:`search_space`; default the whole action space).
    :param sampler: Optuna sampler (:data:`SAMPLERS`).
    :param search_seed: the sampler's seed.
    :param parallel_trials: trials run at once (their episodes in parallel on Ray).
    :param objective: the final-metrics key searches maximise (``val_accuracy``).
    :param metric: the final-metrics key reported and compared (``test_accuracy``).
    :param timesteps: training budget per learner (``None``: the YAML's ``n_timesteps``).
    :param learner_seed: the learners' seed.
    :param hyperparams: per-learner overrides of the YAML block.
    :param trained: learners already trained (name -> the folder ``train_agent`` wrote: ``model.zip``,
        ``vecnormalize.pkl``), evaluated instead of trained again.
    :param resamples: bootstrap resamples.
    :param bootstrap_seed: the bootstrap's seed.
    """

    env_id: str = "DistillGym/SSDKD-Digits-v0"
    train_env_kwargs: dict[str, Any] = field(default_factory=dict)
    eval_env_kwargs: dict[str, Any] = field(default_factory=dict)
    train_seeds: tuple[int, ...] = DEFAULT_TRAIN_SEEDS
    eval_seeds: tuple[int, ...] = DEFAULT_EVAL_SEEDS
    policies: tuple[str, ...] = POLICIES
    trials: int = 30
    knobs: tuple[str, ...] | None = None
    sampler: str = "tpe"
    search_seed: int = 0
    parallel_trials: int = 1
    objective: str = OBJECTIVE
    metric: str = METRIC
    timesteps: dict[str, int | None] = field(default_factory=dict)
    learner_seed: int = 0
    hyperparams: dict[str, dict[str, Any]] = field(default_factory=dict)
    trained: dict[str, str] = field(default_factory=dict)
    resamples: int = 10_000
    bootstrap_seed: int = 0

    def __post_init__(self) -> None:
        self.train_seeds, self.eval_seeds = tuple(self.train_seeds), tuple(self.eval_seeds)
        unknown = [p for p in self.policies if p not in POLICIES]
        if unknown:
            raise ValueError(f"unknown policies {unknown}: use names from {list(POLICIES)}")
        self.policies = (BASELINE,) * (BASELINE not in self.policies) + tuple(dict.fromkeys(self.policies))
        overlap = sorted(set(self.train_seeds) & set(self.eval_seeds))
        if overlap:
            raise ValueError(f"training and held-out seeds overlap in {overlap}: a held-out seed must never be searched or trained on")
        if not self.eval_seeds:
            raise ValueError("no held-out seeds to evaluate on")
        if any(p in SEARCHED for p in self.policies) and (self.trials < 1 or not self.train_seeds):
            raise ValueError("a search needs trials >= 1 and at least one training seed")
        if any(p in LEARNERS or p in WHOLE_RUN_LEARNERS for p in self.policies) and not self.train_seeds:
            raise ValueError("learners need training seeds (their learning curves are evaluated on some)")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}: use one of {SAMPLERS}")
        for name, folder in self.trained.items():
            if name not in self.policies or not (name in LEARNERS or name in WHOLE_RUN_LEARNERS):
                raise ValueError(f"trained {name!r}: only a learner among the compared policies can be given trained "
                                 f"({[p for p in self.policies if p in LEARNERS or p in WHOLE_RUN_LEARNERS]})")
            if not (Path(folder) / "model.zip").is_file():
                raise ValueError(f"trained {name}: no model.zip in {folder} (the folder scripts/train_policy.py wrote)")


@dataclass
class HeadroomResult:
    """What :func:`run_headroom` found.

    :param rows: per (policy, held-out seed) rows, without traces.
    :param traces: the evaluation episodes' traces (replayable with ``scripts/rollout.py --replay``).
    :param notes: what a reader must know (e.g. that ``adaptive`` acted as ``constant``).
    """

    config: HeadroomConfig
    searches: dict[str, SearchResult]
    learners: dict[str, dict[str, Any]]
    specs: list[PolicySpec]
    rows: list[dict[str, Any]]
    traces: list[dict[str, Any]]
    summaries: list[PolicySummary]
    correlations: dict[str, Any]
    knob_table: dict[str, dict[str, float]]
    notes: list[str]
    seconds: dict[str, float]


def adaptive_note(env: Any) -> str:
    """What the adaptive heuristic does on ``env`` (it may be the constants there)."""
    from agents.baselines import AdaptivePolicy

    policy = AdaptivePolicy(env)
    if policy.adapts:
        return f"adaptive sets {', '.join(policy.knobs)} from {policy.signal.format(c='c')}"
    signals = " / ".join(signal.format(c="c") for signal, _ in AdaptivePolicy.SIGNALS)
    return (f"adaptive acts exactly as constant here: the env exposes no per-class {' / '.join(AdaptivePolicy.KNOBS)} "
            f"knob, or its observation has no per-class {signals} entries")


def run_headroom(config: HeadroomConfig, runner: Runner, *, out: Path | None = None, progress: bool = True) -> HeadroomResult:
    """Search, train, then evaluate every policy on the held-out seeds and summarise (see the module).

    :param config: what to compare.
    :param runner: the backend.
    :param out: where learners are trained into (default: a temporary folder, removed afterwards).
    :param progress: tqdm bars for the searches, training and the evaluation.
    """
    import tempfile

    timings: dict[str, float] = {}
    start = time.perf_counter()
    train_env = cached_env(config.env_id, config.train_env_kwargs)
    eval_env = cached_env(config.env_id, config.eval_env_kwargs)
    if train_env.unwrapped.action_names != eval_env.unwrapped.action_names:
        raise ValueError("the training and held-out configurations have different actions "
                         f"({train_env.unwrapped.action_names} vs {eval_env.unwrapped.action_names})")
    space = search_space(train_env, config.knobs)
    searches: dict[str, SearchResult] = {}
    for kind in (p for p in config.policies if p in SEARCHED):
        with progress_bar(config.trials * len(config.train_seeds), f"search {kind}", progress) as bar:
            searches[kind] = search(kind, config.env_id, config.train_env_kwargs, config.train_seeds, space,
                                    trials=config.trials, runner=runner, objective=config.objective,
                                    sampler=config.sampler, seed=config.search_seed, batch=config.parallel_trials, bar=bar)
        timings[f"search_{kind}"] = searches[kind].seconds
    learners: dict[str, dict[str, Any]] = {}
    names = [p for p in config.policies if (p in LEARNERS or p in WHOLE_RUN_LEARNERS) and p not in config.trained]
    learners.update({name: {"agent": WHOLE_RUN_LEARNERS.get(name, name), "label": name, "model_dir": str(Path(folder).resolve()),
                            "timesteps": None, "seconds": None, "trained_before": True}
                     for name, folder in config.trained.items()})
    with tempfile.TemporaryDirectory(prefix="headroom-") as scratch:
        if names:
            root = Path(out) if out is not None else Path(scratch)
            tasks = [TrainTask(WHOLE_RUN_LEARNERS.get(name, name),
                               whole_run_id(config.env_id) if name in WHOLE_RUN_LEARNERS else config.env_id,
                               config.train_env_kwargs, config.learner_seed, config.timesteps.get(name),
                               str((root / "agents" / name).resolve()), config.train_seeds[:5],
                               dict(config.hyperparams.get(name, {})), progress and runner.backend == "local", label=name)
                     for name in names]
            t0 = time.perf_counter()
            with progress_bar(len(tasks), "train", progress, unit="learner") as bar:
                learners.update({r["label"]: r for r in runner.map(train_learner, tasks, bar=bar)})
            timings["train"] = time.perf_counter() - t0
        specs = [policy_spec(name, searches, learners) for name in config.policies]
        t0 = time.perf_counter()
        rows = evaluate_policies(specs, config.env_id, config.eval_env_kwargs, config.eval_seeds, runner, progress=progress)
        timings["evaluate"] = time.perf_counter() - t0
    traces = [row.pop("trace") for row in rows]
    summaries = summarise(rows, metric=config.metric, objective=config.objective, resamples=config.resamples,
                          seed=config.bootstrap_seed)
    knob_table = {"constant": knob_values(eval_env, space.base)}
    for kind, result in searches.items():
        if kind == "static":
            knob_table["static"] = knob_values(eval_env, result.spec.hyperparams["action"])
        else:
            knob_table["schedule start"] = knob_values(eval_env, result.spec.hyperparams["start"])
            knob_table["schedule end"] = knob_values(eval_env, result.spec.hyperparams["end"])
    notes = [adaptive_note(eval_env)] if "adaptive" in config.policies else []
    timings["total"] = time.perf_counter() - start
    return HeadroomResult(config, searches, learners, specs, rows, traces, summaries,
                          rank_correlations(rows, config.metric), knob_table, notes, timings)


def policy_spec(name: str, searches: dict[str, SearchResult], learners: dict[str, dict[str, Any]]) -> PolicySpec:
    """How the evaluation builds policy ``name``: a search's best, a trained learner, or a registry baseline."""
    if name in SEARCHED:
        spec = searches[name].spec
        return PolicySpec(name, spec.agent, spec.hyperparams)
    if name in LEARNERS:
        return PolicySpec(name, name, model_dir=learners[name]["model_dir"])
    if name in WHOLE_RUN_LEARNERS:
        return PolicySpec(name, WHOLE_RUN_LEARNERS[name], model_dir=learners[name]["model_dir"], whole_run=True)
    return PolicySpec(name, name)
