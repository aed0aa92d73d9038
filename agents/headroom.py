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
(:class:`agents.backends.Runner`, which the ablations use too), so a sweep outgrows one machine without new code.
Under Ray, trained models are written under ``out`` and read back by the evaluation tasks: the folder
must be visible to every node (a shared file system; any folder on a single machine).

    from agents.headroom import HeadroomConfig, Runner, run_headroom, write_report
    config = HeadroomConfig(env_id="DistillGym/SSDKD-Digits-v0", trials=30)
    with Runner("local") as runner:
        result = run_headroom(config, runner)
    write_report(result, Path("runs/bench/headroom/SSDKD-Digits-v0"))
"""

from __future__ import annotations

import inspect
import json
import math
import textwrap
import time
import typing
from collections import OrderedDict, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from agents.backends import Runner
from agents.statistics import bootstrap_ci, spearman, t_interval  # noqa: F401  (part of this module's API)

#: what a search maximises: the student's validation accuracy (the test split is kept for the report)
OBJECTIVE = "val_accuracy"
#: what is reported and compared: the final test accuracy of each episode
METRIC = "test_accuracy"
#: the reference every policy is compared with, seed by seed
BASELINE = "constant"
#: searched policies: headroom name -> the registry baseline that acts them out
SEARCHED: dict[str, str] = {"static": "static", "schedule": "progress_schedule"}
#: trained policies (registry learners)
LEARNERS = ("ppo", "sac")
#: learners trained on the env's one-decision-per-run id: headroom name -> registry learner
WHOLE_RUN_LEARNERS: dict[str, str] = {"ppo_schedule": "ppo", "sac_schedule": "sac"}
#: every policy the benchmark knows, in report order
POLICIES = ("constant", "random", "static", "schedule", "adaptive", *LEARNERS, *WHOLE_RUN_LEARNERS)
#: Optuna samplers by name (``cmaes`` needs the ``cmaes`` package)
SAMPLERS = ("tpe", "cmaes", "random")
DEFAULT_TRAIN_SEEDS = tuple(range(1000, 1010))
DEFAULT_EVAL_SEEDS = tuple(range(2000, 2020))
#: the JSON's format tag
REPORT_FORMAT = "distill-gym/headroom/v1"


# ---------------------------------------------------------------------------------------------- parsing
def parse_seeds(tokens: Sequence[str | int]) -> tuple[int, ...]:
    """Seeds from command-line tokens: integers and inclusive ranges (``["1000-1009", "1020"]``).

    :param tokens: ``"A"`` or ``"A-B"`` (``A ≤ B``, both non-negative) each.
    :raises ValueError: a token that is neither, or the same seed twice.
    """
    seeds: list[int] = []
    for token in tokens:
        text = str(token).strip()
        low, sep, high = text.partition("-")
        try:
            first, last = (int(low), int(high)) if sep else (int(text), int(text))
        except ValueError:
            raise ValueError(f"seed {text!r}: expected an integer or a range A-B such as 1000-1099") from None
        if first < 0 or last < first:
            raise ValueError(f"seed range {text!r}: expected 0 <= A <= B")
        seeds.extend(range(first, last + 1))
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds {list(tokens)} name some seed twice")
    return tuple(seeds)


def parse_env_kwargs(pairs: Sequence[str], env_id: str) -> dict[str, Any]:
    """``KEY=VALUE`` settings for ``gymnasium.make(env_id, ...)``: configuration fields, typed by the id's
    configuration class (:func:`distill_core.common.cli.parse_overrides`), and the env's own keywords
    (``reward_normalization=constant``, ``divergence_penalty=-2``, ``seed_pool=48``), typed by their annotations.

    :param pairs: ``["kd_steps=4", "class_knobs=true"]``.
    :param env_id: a registered ``DistillGym/...`` id.
    :raises ValueError: an unknown key or a value of the wrong type.
    """
    import gymnasium as gym
    from gymnasium.envs.registration import load_env_creator

    import envs
    from distill_core.common.cli import hint_kinds, parse_overrides, parse_value

    config_cls = type(envs.registered_config(env_id))
    env_cls = load_env_creator(gym.spec(env_id.split(":")[-1]).entry_point)
    hints = typing.get_type_hints(env_cls.__init__)
    own = {name for name, p in inspect.signature(env_cls.__init__).parameters.items() if p.kind is p.KEYWORD_ONLY}
    config_pairs, settings = [], {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if sep and key in own:
            settings[key] = parse_value(key, raw, hint_kinds(hints[key]))  # typed by the annotation
        else:
            config_pairs.append(pair)
    return {**parse_overrides(config_pairs, config_cls), **settings}


# ---------------------------------------------------------------------------------------------- envs
_ENVS: OrderedDict[str, Any] = OrderedDict()
#: envs kept per worker process (a make loads data and teacher; reset(seed) starts every run anew)
ENV_CACHE_SIZE = 4


def cached_env(env_id: str, env_kwargs: dict[str, Any]) -> Any:
    """``gymnasium.make(env_id, **env_kwargs)``, made once per worker process and reused: ``reset(seed)``
    rebuilds every part of a run from the seed, so a reused env runs the same episodes as a fresh one.

    :param env_id: a registered id.
    :param env_kwargs: its settings.
    """
    import gymnasium as gym

    import envs  # noqa: F401  (registers the ids in a fresh worker)

    key = json.dumps([env_id, env_kwargs], sort_keys=True, default=str)
    if key not in _ENVS:
        _ENVS[key] = gym.make(env_id, **env_kwargs)
        if len(_ENVS) > ENV_CACHE_SIZE:
            _ENVS.popitem(last=False)[1].close()
    _ENVS.move_to_end(key)
    return _ENVS[key]


# ---------------------------------------------------------------------------------------------- search space
@dataclass(frozen=True)
class SearchSpace:
    """Which action entries a search sets. Each searched dimension is one value in ``[-1, 1]`` written to
    one action entry, or to every entry of a tied per-class knob; the other entries stay at ``base``
    (the constants' action).

    :param dims: the searched names (``"alpha"``, ``"class_weights"`` tied, ``"class_weights/3"``).
    :param entries: the action indices each dimension writes.
    :param base: the action every candidate starts from.
    :param action_names: the env's action entries.
    """

    dims: tuple[str, ...]
    entries: tuple[tuple[int, ...], ...]
    base: tuple[float, ...]
    action_names: tuple[str, ...]

    def action(self, values: Sequence[float]) -> np.ndarray:
        """The action with dimension ``i`` set to ``values[i]`` and the rest at ``base``."""
        if len(values) != len(self.dims):
            raise ValueError(f"{len(values)} values for {len(self.dims)} searched dimensions {list(self.dims)}")
        action = np.array(self.base, dtype=np.float32)
        for value, indices in zip(values, self.entries):
            action[list(indices)] = float(np.clip(value, -1.0, 1.0))
        return action

    def values_of(self, action: Sequence[float]) -> list[float]:
        """Each dimension's value in ``action`` (a tied knob: the mean of its entries)."""
        action = np.asarray(action, dtype=np.float64)
        return [float(action[list(indices)].mean()) for indices in self.entries]


def search_space(env: Any, knobs: Sequence[str] | None = None) -> SearchSpace:
    """The search space of ``env`` over ``knobs``, the rest held at the constants' action.

    :param env: a distill-gym env (wrapped or not).
    :param knobs: knob names: ``alpha``; a per-class knob's name for one value shared by all its entries
        (``class_weights``); ``class_weights/3`` for one entry on its own. Default: the whole action
        space, every entry on its own (``env.action_names``). A tied per-class weight that only
        reweights a normalised draw (SSD-KD's ``class_weights`` and ``class_priority``) changes nothing.
    :raises ValueError: an unknown or unexposed knob, a bad entry index, or an entry searched twice.
    """
    penv = env.unwrapped
    specs = {spec.name: spec for spec in penv.knob_specs}
    offsets, at = {}, 0
    for spec in penv.knob_specs:
        offsets[spec.name] = at
        at += spec.size
    dims, entries, taken = [], [], set()
    for name in (list(knobs) if knobs else list(penv.action_names)):
        knob_name, sep, index = name.partition("/")
        spec = specs.get(knob_name)
        if spec is None:
            hidden = knob_name in {f.name for f in fields(penv.process.Knobs)}
            why = "is not exposed by this configuration of the env" if hidden else "is not a knob of this env"
            raise ValueError(f"knob {knob_name!r} {why}; it exposes {list(penv.knob_names)}"
                             + (" (SSD-KD exposes more with class_knobs / priority_knobs / replace_knob=true)" if hidden else ""))
        if sep:
            if not spec.per_class or not index.isdigit() or int(index) >= spec.size:
                raise ValueError(f"{name!r}: only a per-class knob takes /i, with i < its size "
                                 f"({knob_name} has {'entries ' + ', '.join(spec.entry_names) if spec.per_class else 'one value'})")
            indices: tuple[int, ...] = (offsets[knob_name] + int(index),)
        else:
            indices = tuple(range(offsets[knob_name], offsets[knob_name] + spec.size))
        if taken & set(indices):
            raise ValueError(f"{name!r} is searched twice (a tied knob and one of its entries, or a repeated name)")
        taken |= set(indices)
        dims.append(name)
        entries.append(indices)
    base = penv.action_from_knobs(penv.process.Knobs())
    return SearchSpace(tuple(dims), tuple(entries), tuple(float(v) for v in base), tuple(penv.action_names))


# ---------------------------------------------------------------------------------------------- policies and cells
@dataclass
class PolicySpec:
    """How a cell builds a policy.

    :param label: the name in the report (``static``, ``schedule``, ``ppo``, ...).
    :param agent: the registry name that acts it out (``static``, ``progress_schedule``, ``ppo``, ...).
    :param hyperparams: passed to :func:`agents.registry.make_agent` (a baseline's vectors).
    :param model_dir: a trained learner's folder (``model.zip``, ``vecnormalize.pkl``).
    :param whole_run: the learner was trained on the one-decision-per-run id and picks a schedule at the
        first round (:class:`agents.whole_run.WholeRunPolicy`).
    """

    label: str
    agent: str
    hyperparams: dict[str, Any] = field(default_factory=dict)
    model_dir: str | None = None
    whole_run: bool = False


def static_spec(space: SearchSpace, values: Sequence[float], label: str = "static") -> PolicySpec:
    """A static policy whose action has ``values`` in the searched dimensions."""
    return PolicySpec(label, SEARCHED["static"], {"action": space.action(values).tolist()})


def schedule_spec(space: SearchSpace, start: Sequence[float], end: Sequence[float], label: str = "schedule") -> PolicySpec:
    """A progress schedule from the action with ``start`` to the one with ``end`` in the searched dimensions."""
    return PolicySpec(label, SEARCHED["schedule"], {"start": space.action(start).tolist(), "end": space.action(end).tolist()})


def search_params(kind: str, space: SearchSpace) -> list[str]:
    """The Optuna parameter names of a search: the dimensions (static), or ``start:``/``end:`` of each (schedule)."""
    if kind == "static":
        return list(space.dims)
    if kind == "schedule":
        return [f"start:{d}" for d in space.dims] + [f"end:{d}" for d in space.dims]
    raise ValueError(f"unknown search kind {kind!r}: use one of {list(SEARCHED)}")


def spec_from_params(kind: str, space: SearchSpace, params: dict[str, float]) -> PolicySpec:
    """The policy an Optuna trial's parameters describe (see :func:`search_params`)."""
    if kind == "static":
        return static_spec(space, [params[d] for d in space.dims])
    return schedule_spec(space, [params[f"start:{d}"] for d in space.dims], [params[f"end:{d}"] for d in space.dims])


@dataclass
class Cell:
    """One episode: a policy on a seed.

    :param policy: what to run.
    :param env_id: the env.
    :param env_kwargs: its settings (training or held-out configuration).
    :param seed: the ``reset`` seed.
    :param keep_trace: return the episode's whole trace (evaluations; a search keeps only the numbers).
    """

    policy: PolicySpec
    env_id: str
    env_kwargs: dict[str, Any]
    seed: int
    keep_trace: bool = False


def build_policy(spec: PolicySpec, env: Any, seed: int) -> Any:
    """The policy of ``spec`` for ``env``: a trained learner loaded from its folder, or a registry
    baseline built with ``spec.hyperparams`` (``random`` seeded with the episode's seed)."""
    from agents.registry import is_learning, make_agent

    if is_learning(spec.agent):
        from agents.training import load_trained

        if spec.model_dir is None:
            raise ValueError(f"{spec.label}: a learning agent needs the folder it was trained into (model_dir)")
        trained = load_trained(spec.agent, Path(spec.model_dir), env)
        if spec.whole_run:
            from agents.whole_run import WholeRunPolicy

            return WholeRunPolicy(trained, env)
        return trained
    return make_agent(spec.agent, env, seed=seed, hyperparams=spec.hyperparams)


def run_cell(cell: Cell) -> dict[str, Any]:
    """Run one episode and return its row: policy, seed, return, steps, how it ended, the env's final
    metrics and the episode's seconds (and the trace when ``keep_trace``). Pins torch to one thread, as
    :func:`agents.ablation.run_job` does (one cell per core)."""
    import torch

    from agents.rollout import run_episode

    torch.set_num_threads(1)
    env = cached_env(cell.env_id, cell.env_kwargs)
    policy = build_policy(cell.policy, env, cell.seed)
    trace = run_episode(env, policy, cell.seed, env_id=cell.env_id, env_kwargs=cell.env_kwargs, agent_name=cell.policy.label)
    row: dict[str, Any] = {"policy": cell.policy.label, "seed": cell.seed,
                           **{k: v for k, v in trace.outcome.items() if isinstance(v, (int, float, bool))},
                           "seconds": float(trace.timings["seconds"])}
    if cell.keep_trace:
        row["trace"] = asdict(trace)
    return row


# ---------------------------------------------------------------------------------------------- backends
@contextmanager
def progress_bar(total: int, desc: str, enabled: bool) -> Iterator[Any]:
    """A tqdm bar of ``total`` steps (``None`` when not ``enabled``), closed afterwards."""
    if not enabled:
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="episode", dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()


# ---------------------------------------------------------------------------------------------- search
def objective_value(row: dict[str, Any], objective: str) -> float:
    """``row[objective]`` (a NaN for a missing value never counts as a score).

    :raises KeyError: the env's final metrics lack ``objective``, with the keys they have.
    """
    if objective not in row:
        metrics = sorted(k for k in row if k not in ("policy", "seed", "seconds", "trace"))
        raise KeyError(f"the episode's final metrics have no {objective!r} (they have {metrics}): the search is "
                       f"scored on the student's validation accuracy, so the env must report {OBJECTIVE!r} in "
                       f"info['final_metrics']; pass another objective only for a smoke test")
    return float(row[objective])


def make_sampler(name: str, seed: int) -> Any:
    """An Optuna sampler by name, seeded (the same seed and trial batches give the same trials).

    :param name: one of :data:`SAMPLERS`.
    :param seed: the sampler's seed.
    """
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        try:
            import cmaes  # noqa: F401
        except ImportError as err:
            raise ImportError("the cmaes sampler needs the cmaes package: pip install cmaes") from err
        return optuna.samplers.CmaEsSampler(seed=seed)
    raise ValueError(f"unknown sampler {name!r}: use one of {SAMPLERS}")


@dataclass
class SearchResult:
    """A finished search.

    :param kind: ``static`` or ``schedule``.
    :param space: the searched dimensions.
    :param objective: the final-metrics key maximised.
    :param seeds: the training seeds every trial ran on (the same for every trial).
    :param sampler: the Optuna sampler's name; ``seed``: its seed.
    :param trials: every trial: number, params, policy (its action vectors), value (mean objective),
        per-seed objective values and returns, state.
    :param best: the best trial's record.
    :param spec: the best trial's policy, to be re-evaluated on the held-out seeds.
    :param seconds: wall time of the search.
    """

    kind: str
    space: SearchSpace
    objective: str
    seeds: tuple[int, ...]
    sampler: str
    seed: int
    trials: list[dict[str, Any]]
    best: dict[str, Any]
    spec: PolicySpec
    seconds: float

    def to_json(self) -> dict[str, Any]:
        """Everything but the policy object, as plain JSON values."""
        return {"kind": self.kind, "dims": list(self.space.dims), "entries": [list(e) for e in self.space.entries],
                "objective": self.objective, "seeds": list(self.seeds), "sampler": self.sampler, "seed": self.seed,
                "seconds": self.seconds, "best": self.best, "trials": self.trials}


def search(kind: str, env_id: str, env_kwargs: dict[str, Any], seeds: Sequence[int], space: SearchSpace, *,
           trials: int, runner: Runner, objective: str = OBJECTIVE, sampler: str = "tpe", seed: int = 0,
           batch: int = 1, bar: Any = None) -> SearchResult:
    """Search the best ``static`` action or ``schedule`` on the training ``seeds``: each trial is scored
    by the mean of ``objective`` over the same seeds (common random numbers across trials). The first
    trial is the constants' action (start = end for a schedule), so the best is never worse than the
    constants on the training seeds. A trial with a non-finite score is marked failed.

    Deterministic: the sampler is seeded and the episodes are (one torch thread each); ``batch`` trials
    are asked at once and their cells run in parallel on Ray, and a different ``batch`` gives different
    (equally valid) trials. Optuna is silenced to warnings.

    :param kind: ``static`` or ``schedule``.
    :param env_id: the env.
    :param env_kwargs: the training configuration.
    :param seeds: training seeds (never the held-out ones).
    :param space: from :func:`search_space`.
    :param trials: how many candidates, the constants included.
    :param runner: the backend.
    :param objective: the final-metrics key maximised (the validation accuracy).
    :param sampler: one of :data:`SAMPLERS`.
    :param seed: the sampler's seed.
    :param batch: trials asked (and run) at once.
    :param bar: a tqdm bar advanced by one per episode.
    """
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState

    if trials < 1 or batch < 1 or not seeds:
        raise ValueError(f"a search needs trials >= 1, batch >= 1 and training seeds (got {trials}, {batch}, {list(seeds)})")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start_time = time.perf_counter()
    names = search_params(kind, space)
    study = optuna.create_study(direction="maximize", sampler=make_sampler(sampler, seed))
    base = space.values_of(space.base)
    study.enqueue_trial(dict(zip(names, base if kind == "static" else base + base)))
    distributions = {name: FloatDistribution(-1.0, 1.0) for name in names}
    records: list[dict[str, Any]] = []
    while len(records) < trials:
        asked = [study.ask(distributions) for _ in range(min(batch, trials - len(records)))]
        specs = [spec_from_params(kind, space, trial.params) for trial in asked]
        cells = [Cell(spec, env_id, env_kwargs, s) for spec in specs for s in seeds]
        rows = runner.map(run_cell, cells, bar=bar)
        for i, (trial, spec) in enumerate(zip(asked, specs)):
            trial_rows = rows[i * len(seeds):(i + 1) * len(seeds)]
            scores = [objective_value(row, objective) for row in trial_rows]
            value = float(np.mean(scores))
            finite = math.isfinite(value)
            study.tell(trial, value) if finite else study.tell(trial, state=TrialState.FAIL)
            records.append({"number": trial.number, "params": dict(trial.params), "policy": spec.hyperparams,
                            "value": value if finite else None, "scores": scores,
                            "returns": [float(row["return"]) for row in trial_rows],
                            "state": "complete" if finite else "failed"})
        if bar is not None:
            best_value = max((r["value"] for r in records if r["value"] is not None), default=float("nan"))
            bar.set_postfix_str(f"best {objective} {best_value:.4f}")
    best = best_record(records)
    return SearchResult(kind, space, objective, tuple(seeds), sampler, seed, records, best,
                        spec_from_params(kind, space, best["params"]), time.perf_counter() - start_time)


def best_record(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The trial with the highest value (the earliest on a tie; failed trials never count).

    :raises RuntimeError: every trial failed.
    """
    scored = [r for r in records if r["value"] is not None]
    if not scored:
        raise RuntimeError("every trial of the search failed (non-finite objective on some seed): check the env")
    return max(scored, key=lambda r: (r["value"], -r["number"]))


# ---------------------------------------------------------------------------------------------- learners
@dataclass
class TrainTask:
    """Training one learner on the training configuration.

    :param agent: ``ppo``, ``sac`` (any registry learner).
    :param env_id: the env it trains on (the benchmark's, or its one-decision-per-run id).
    :param env_kwargs: the training configuration.
    :param seed: the agent's seed (SB3 seeds its networks and the training env from it).
    :param timesteps: total environment steps (``None``: the YAML's ``n_timesteps``).
    :param out: the folder the model is written to.
    :param eval_seeds: seeds of the EvalCallback's learning curve: training seeds, never held-out ones.
    :param hyperparams: overrides of the YAML block.
    :param progress_bar: SB3's progress bar while training (in this process only: not on Ray workers).
    """

    agent: str
    env_id: str
    env_kwargs: dict[str, Any]
    seed: int
    timesteps: int | None
    out: str
    eval_seeds: tuple[int, ...]
    hyperparams: dict[str, Any] = field(default_factory=dict)
    progress_bar: bool = False
    label: str = ""


def train_learner(task: TrainTask) -> dict[str, Any]:
    """Train ``task.agent`` with :func:`agents.training.train_agent` (one torch thread)
    and return its model folder, timesteps and seconds. Its episodes are the training env's own seeded
    stream, not the held-out seeds."""
    import torch

    from agents.training import train_agent

    torch.set_num_threads(1)
    result = train_agent(task.agent, task.env_id, out=Path(task.out), seed=task.seed, timesteps=task.timesteps,
                         env_kwargs=task.env_kwargs, hyperparams=task.hyperparams, eval_seeds=task.eval_seeds,
                         progress_bar=task.progress_bar, tensorboard=False)
    return {"agent": task.agent, "label": task.label or task.agent, "env_id": task.env_id, "model_dir": task.out,
            "timesteps": result.timesteps, "seconds": result.seconds}


# ---------------------------------------------------------------------------------------------- statistics
def paired_differences(rows: Sequence[dict[str, Any]], policy: str, baseline: str = BASELINE,
                       metric: str = METRIC) -> tuple[tuple[int, ...], np.ndarray]:
    """``metric`` of ``policy`` minus that of ``baseline``, seed by seed.

    :returns: the seeds (sorted) and the differences.
    :raises ValueError: the two were not evaluated on the same seeds (a difference would not be paired).
    """
    by = {name: {row["seed"]: float(row.get(metric, float("nan"))) for row in rows if row["policy"] == name}
          for name in (policy, baseline)}
    if set(by[policy]) != set(by[baseline]):
        raise ValueError(f"{policy} and {baseline} were evaluated on different seeds "
                         f"({sorted(by[policy])} vs {sorted(by[baseline])}): the difference would not be paired")
    seeds = tuple(sorted(by[policy]))
    return seeds, np.array([by[policy][s] - by[baseline][s] for s in seeds])


@dataclass
class PolicySummary:
    """One policy on the held-out seeds (accuracies as fractions; differences to the baseline paired).

    :param wins: the share of seeds on which it beat the baseline (ties count half).
    :param objective_mean: the mean of the search objective (validation accuracy), NaN when not reported.
    """

    policy: str
    episodes: int
    metric_mean: float
    diff_mean: float
    diff_bootstrap: tuple[float, float]
    diff_t: tuple[float, float]
    wins: float
    objective_mean: float
    return_mean: float
    diverged: int
    seconds_per_episode: float


def summarise(rows: Sequence[dict[str, Any]], *, baseline: str = BASELINE, metric: str = METRIC,
              objective: str = OBJECTIVE, resamples: int = 10_000, seed: int = 0) -> list[PolicySummary]:
    """One :class:`PolicySummary` per policy, in the order the rows name them.

    :param rows: per (policy, seed) rows of :func:`run_cell`.
    :param baseline: the policy every other is compared with.
    :param metric: the compared final metric.
    :param objective: the search objective, reported beside it.
    :param resamples: bootstrap resamples.
    :param seed: the bootstrap's seed (the same for every policy).
    """
    by_policy: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_policy[row["policy"]].append(row)
    summaries = []
    for name, own in by_policy.items():
        _, diffs = paired_differences(rows, name, baseline, metric)
        summaries.append(PolicySummary(
            name, len(own), _mean(r.get(metric) for r in own), float(diffs.mean()) if diffs.size else float("nan"),
            bootstrap_ci(diffs, resamples=resamples, seed=seed), t_interval(diffs),
            float(np.mean(np.sign(diffs) * 0.5 + 0.5)) if diffs.size else float("nan"),
            _mean(r.get(objective) for r in own), _mean(r["return"] for r in own),
            sum(bool(r.get("diverged")) for r in own), _mean(r["seconds"] for r in own)))
    return summaries


def _mean(values: Any) -> float:
    arr = np.array([float("nan") if v is None else float(v) for v in values], dtype=np.float64)
    return float(arr.mean()) if arr.size else float("nan")


def rank_correlations(rows: Sequence[dict[str, Any]], metric: str = METRIC) -> dict[str, Any]:
    """Spearman's ρ between the (data-free) return and ``metric``: over the policies' means and over
    single episodes, with how many points each."""
    by_policy: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_policy[row["policy"]].append(row)
    means = [(_mean(r["return"] for r in own), _mean(r.get(metric) for r in own)) for own in by_policy.values()]
    return {
        "over_policies": spearman([m[0] for m in means], [m[1] for m in means]), "policies": len(means),
        "over_episodes": spearman([r["return"] for r in rows], [r.get(metric, float("nan")) for r in rows]),
        "episodes": len(rows),
    }


# ---------------------------------------------------------------------------------------------- the benchmark
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


def knob_values(env: Any, action: Sequence[float]) -> dict[str, float]:
    """The knob value of every action entry an action selects (``{"alpha": 0.6, "class_weights/0": 1.0, ...}``)."""
    penv = env.unwrapped
    knobs = penv.knobs_from_action(np.asarray(action, dtype=np.float32))
    return dict(zip(penv.action_names, (v for spec in penv.knob_specs for v in spec.values(knobs))))


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
            with progress_bar(len(tasks), "train", progress) as bar:
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


def evaluate_policies(specs: Sequence[PolicySpec], env_id: str, env_kwargs: dict[str, Any], seeds: Sequence[int],
                      runner: Runner, *, progress: bool = True) -> list[dict[str, Any]]:
    """One episode of every policy on every seed (paired: the same seeds for all), with its trace.

    :return: :func:`run_cell`'s rows, policy by policy in ``specs``' order.
    """
    cells = [Cell(spec, env_id, env_kwargs, seed, keep_trace=True) for spec in specs for seed in seeds]
    with progress_bar(len(cells), "evaluate", progress) as bar:
        return runner.map(run_cell, cells, bar=bar)


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


def whole_run_id(env_id: str) -> str:
    """The one-decision-per-run id over ``env_id`` (``ValueError`` naming the ids that have one)."""
    from envs import SCHEDULE_IDS

    name = env_id.split(":")[-1]
    for schedule_id, inner_id in SCHEDULE_IDS.items():
        if inner_id == name:
            return schedule_id
    raise ValueError(f"{name} has no one-decision-per-run id, so ppo_schedule / sac_schedule cannot train on it; "
                     f"ids that have one: {sorted(SCHEDULE_IDS.values())}")


# ---------------------------------------------------------------------------------------------- report
def markdown_report(result: HeadroomResult) -> str:
    """The summary table, the rank correlations, the searched knobs and the notes, as markdown."""
    from distill_core.common.report import markdown_table

    cfg = result.config
    metric = cfg.metric.replace("_", " ")
    lines = [f"## Headroom on {cfg.env_id}", "",
             f"{len(cfg.eval_seeds)} held-out seeds ({seed_text(cfg.eval_seeds)}), the same for every policy; "
             f"differences are final {metric} minus `{BASELINE}`'s on the same seed, in percentage points "
             f"(bootstrap: {cfg.resamples} resamples, seed {cfg.bootstrap_seed}; t: paired Student-t).", "",
             summary_table(result.summaries, cfg.metric, cfg.objective), ""]
    corr = result.correlations
    lines += [f"Spearman ρ(return, final {metric}): {rho_text(corr['over_policies'])} over {corr['policies']} policies "
              f"(means), {rho_text(corr['over_episodes'])} over {corr['episodes']} episodes.", ""]
    if result.searches:
        lines += [f"Searches: {cfg.sampler} (seed {cfg.search_seed}), {cfg.trials} trials each on "
                  f"{len(cfg.train_seeds)} training seeds ({seed_text(cfg.train_seeds)}), maximising the mean "
                  f"{cfg.objective}; trial 0 is the constants."]
        for kind, s in result.searches.items():
            constants = s.trials[0]["value"]
            lines.append(f"- {kind}: best trial {s.best['number']}, {cfg.objective} {s.best['value']:.4f} "
                         f"(constants {constants if constants is None else f'{constants:.4f}'}) over {', '.join(s.space.dims)}; "
                         f"{s.seconds:.0f} s")
        lines.append("")
    columns = list(result.knob_table)
    if len(columns) > 1:
        entries = list(result.knob_table["constant"])
        lines += [markdown_table(["knob", *columns], [[e, *(f"{result.knob_table[c][e]:.4g}" for c in columns)] for e in entries]), ""]
    if result.learners:
        lines += ["Learners: " + ", ".join(learner_text(k, v) for k, v in result.learners.items()), ""]
    lines += [f"Note: {note}." for note in result.notes]
    return "\n".join(lines).rstrip() + "\n"


def learner_text(name: str, learner: dict[str, Any]) -> str:
    """``ppo 11000 steps (1512 s)``, ``ppo_schedule on DistillGym/...-Schedule-v0 832 steps (...)`` or
    ``ppo trained before in <folder>``."""
    where = f" on {learner['env_id']}" if name in WHOLE_RUN_LEARNERS and learner.get("env_id") else ""
    if learner.get("trained_before"):
        return f"{name} trained before in {learner['model_dir']}"
    return f"{name}{where} {learner['timesteps']} steps ({learner['seconds']:.0f} s)"


def summary_table(summaries: Sequence[PolicySummary], metric: str = METRIC, objective: str = OBJECTIVE) -> str:
    """The policies' summaries as a markdown table (differences to :data:`BASELINE` in points)."""
    from distill_core.common.report import markdown_table

    rows = [[s.policy, s.episodes, _percent(s.metric_mean), "0 (reference)" if s.policy == BASELINE else _points(s.diff_mean),
             "" if s.policy == BASELINE else _interval(s.diff_bootstrap), "" if s.policy == BASELINE else _interval(s.diff_t),
             "" if s.policy == BASELINE else f"{100 * s.wins:.0f} %", _percent(s.objective_mean), f"{s.return_mean:.4f}",
             s.diverged, f"{s.seconds_per_episode:.2f}"] for s in summaries]
    metric = metric.replace("_", " ")
    return markdown_table(["policy", "episodes", f"final {metric} %", f"Δ vs {BASELINE} (pp)", "bootstrap 95 % CI",
                           "t 95 % CI", "wins", f"{objective.replace('_', ' ')} %", "return (data-free)",
                           "diverged", "s / episode"], rows)


def _percent(value: float) -> str:
    """A fraction as a percentage (– when not finite)."""
    return f"{100 * value:.2f}" if math.isfinite(value) else "–"


def _points(value: float) -> str:
    """A difference of fractions in signed percentage points (– when not finite)."""
    return f"{100 * value:+.2f}" if math.isfinite(value) else "–"


def _interval(bounds: tuple[float, float]) -> str:
    """An interval of differences in percentage points (– when not finite)."""
    return f"[{_points(bounds[0])}, {_points(bounds[1])}]" if all(map(math.isfinite, bounds)) else "–"


def rho_text(value: float) -> str:
    """A rank correlation for a report (a dash with the reason when it is not finite)."""
    return "– (too few or constant values)" if not math.isfinite(value) else f"{value:+.3f}"


def seed_text(seeds: Sequence[int]) -> str:
    """Seeds for a report: ``2000–2019`` for a run of consecutive seeds, else a list."""
    seeds = list(seeds)
    if seeds and seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}–{seeds[-1]}" if len(seeds) > 1 else str(seeds[0])
    return ", ".join(map(str, seeds))


def plot_differences(summaries: Sequence[PolicySummary], path: Path, *, title: str, ylabel: str) -> Path:
    """A bar per policy (the baseline left out): its mean paired difference in percentage points, with
    the bootstrap CI as an (asymmetric) error bar; green/red when the CI excludes 0, grey otherwise."""
    import distill_core.common.plots  # noqa: F401  (headless matplotlib)
    import matplotlib.pyplot as plt

    shown = [s for s in summaries if s.policy != BASELINE]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.0 * len(shown) + 2.5), 4.2))
    if shown:
        means = np.array([100 * s.diff_mean for s in shown])
        low = np.array([100 * s.diff_bootstrap[0] for s in shown])
        high = np.array([100 * s.diff_bootstrap[1] for s in shown])
        colors = ["tab:green" if lo > 0 else "tab:red" if hi < 0 else "tab:gray" for lo, hi in zip(low, high)]
        bars = ax.bar([s.policy for s in shown], means, color=colors,
                      yerr=np.nan_to_num(np.vstack([means - low, high - means])), capsize=5)
        ax.bar_label(bars, labels=[f"{m:+.2f}" for m in means], padding=3, fontsize=8)
        span = np.nanmax(np.abs(np.concatenate([low, high, means]))) if np.isfinite(np.concatenate([low, high])).any() else 1.0
        ax.set_ylim(-1.25 * max(span, 0.5), 1.25 * max(span, 0.5))
        plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    else:
        ax.text(0.5, 0.5, f"only {BASELINE} was evaluated", ha="center", va="center", transform=ax.transAxes)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_ylabel(ylabel)
    ax.set_title("\n".join(textwrap.wrap(title, 60)), fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def report_json(result: HeadroomResult) -> dict[str, Any]:
    """Everything of a run as JSON values (NaN as null): configuration, searches with every trial,
    learners, the policies evaluated, per-episode rows, summaries, correlations, knobs, notes, timings and
    the runtime (thread count, library versions)."""
    from agents.rollout import runtime_info

    return json_safe({
        "format": REPORT_FORMAT, "config": asdict(result.config), "runtime": runtime_info(),
        "searches": {k: s.to_json() for k, s in result.searches.items()}, "learners": result.learners,
        "policies": [asdict(s) for s in result.specs], "summaries": [asdict(s) for s in result.summaries],
        "correlations": result.correlations, "knobs": result.knob_table, "notes": result.notes,
        "seconds": result.seconds, "episodes": result.rows,
    })


def json_safe(value: Any) -> Any:
    """``value`` with tuples as lists, numpy scalars as Python ones and non-finite floats as ``None``."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_report(result: HeadroomResult, out: Path) -> dict[str, Path]:
    """Write ``headroom.json``, ``headroom.md``, ``headroom.png`` and the evaluation traces
    (``episodes.jsonl``) into ``out``; returns their paths by name."""
    from agents.rollout import EpisodeTrace, write_traces
    from distill_core.common.report import write_json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = result.config
    paths = {"json": write_json(report_json(result), out / "headroom.json")}
    paths["md"] = out / "headroom.md"
    paths["md"].write_text(markdown_report(result))
    paths["png"] = plot_differences(
        result.summaries, out / "headroom.png", ylabel=f"Δ final {cfg.metric.replace('_', ' ')} (pp)",
        title=f"{cfg.env_id}: final {cfg.metric.replace('_', ' ')} minus {BASELINE}'s, paired over "
              f"{len(cfg.eval_seeds)} held-out seeds (bootstrap 95 % CI)")
    paths["traces"] = write_traces([EpisodeTrace(**t) for t in result.traces], out / "episodes.jsonl")
    return paths
