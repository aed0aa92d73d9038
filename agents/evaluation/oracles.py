"""Static and dynamic oracles (DACBench's terms): the best fixed action and the best schedule over the
run's progress, found by black-box search (Optuna) on *training* seeds and scored by the student's
*validation* accuracy; the first trial is always the paper's constants.

Each searched dimension is one value in ``[-1, 1]`` written to one action entry (or to every entry of a
tied per-class knob); the rest stay at the constants' action, so a search can be restricted to one
group of knobs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from agents.evaluation.backends import Runner
from agents.evaluation.episodes import OBJECTIVE, Cell, PolicySpec, check_not_test_seeds, run_cell

#: searched policies: oracle name -> the registry baseline that acts it out
SEARCHED: dict[str, str] = {"static": "static", "schedule": "progress_schedule"}
#: Optuna samplers by name (``cmaes`` needs the ``cmaes`` package)
SAMPLERS = ("tpe", "cmaes", "random")
#: how a search scores its candidates: ``evaluate(specs, seeds)`` -> per spec, one row per seed
Evaluator = Callable[[Sequence[PolicySpec], Sequence[int]], list[list[dict[str, Any]]]]


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



def knob_values(env: Any, action: Sequence[float]) -> dict[str, float]:
    """The knob value of every action entry an action selects (``{"alpha": 0.6, "class_weights/0": 1.0, ...}``)."""
    penv = env.unwrapped
    knobs = penv.knobs_from_action(np.asarray(action, dtype=np.float32))
    return dict(zip(penv.action_names, (v for spec in penv.knob_specs for v in spec.values(knobs))))


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
           batch: int = 1, bar: Any = None, evaluate: Evaluator | None = None) -> SearchResult:
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
    :param evaluate: how a batch of candidates is run (default: one :func:`run_cell` per candidate and
        seed through ``runner``); :func:`agents.evaluation.batched.batch_evaluator` runs them as one batch of
        lockstep runs on a fast-tier id, with the same numbers.
    """
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState

    check_not_test_seeds(seeds, "a search")
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
        if evaluate is None:
            rows = runner.map(run_cell, [Cell(spec, env_id, env_kwargs, s) for spec in specs for s in seeds], bar=bar)
            per_spec = [rows[i * len(seeds):(i + 1) * len(seeds)] for i in range(len(specs))]
        else:
            per_spec = evaluate(specs, seeds)
            if bar is not None:
                bar.update(len(specs) * len(seeds))
        for trial, spec, trial_rows in zip(asked, specs, per_spec):
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
