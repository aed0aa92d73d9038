"""Episodes of policies on seeds: how a policy is described (:class:`PolicySpec`), built, and run for one
episode (:class:`Cell`, :func:`run_cell`), one after another or as Ray tasks, and the names every
evaluation shares (what is compared, against what, on which seeds by default).

Every number reported is the *final* test accuracy of an episode, never a best over evaluations.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agents.evaluation.backends import Runner
from agents.evaluation.cli import progress_bar

#: what searches maximise: the student's validation accuracy (``info["final_metrics"]``)
OBJECTIVE = "val_accuracy"
#: what is reported and compared: the final test accuracy of each episode
METRIC = "test_accuracy"
#: the reference every policy is compared with, seed by seed
BASELINE = "constant"
DEFAULT_TRAIN_SEEDS = tuple(range(1000, 1010))
DEFAULT_EVAL_SEEDS = tuple(range(2000, 2020))
#: test seeds, kept for the figures reported once per env version: no search may run on them (the
#: held-out seeds 2000-2099 have informed design choices, so they count as validation seeds)
TEST_SEED_RANGE = range(5000, 6000)


def check_not_test_seeds(seeds: Sequence[int], what: str) -> None:
    """Refuse a search or training on test seeds.

    :raises ValueError: naming the seeds and the range they must avoid.
    """
    taken = sorted(s for s in seeds if s in TEST_SEED_RANGE)
    if taken:
        raise ValueError(f"{what} may not use test seeds ({taken[:5]}{' ...' if len(taken) > 5 else ''} are in "
                         f"{TEST_SEED_RANGE.start}-{TEST_SEED_RANGE.stop - 1}, kept for reported figures): use 1000-1999")


#: the envs this process made, by id and settings (see :func:`cached_env`)
#: the envs this process has made, by id and settings (see :func:`cached_env`)
ENVS: OrderedDict[str, Any] = OrderedDict()
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
    if key not in ENVS:
        ENVS[key] = gym.make(env_id, **env_kwargs)
        if len(ENVS) > ENV_CACHE_SIZE:
            ENVS.popitem(last=False)[1].close()
    ENVS.move_to_end(key)
    return ENVS[key]




def env_definition(env_id: str) -> dict[str, Any]:
    """What decides an id's runs: its registered configuration, its scenario family and that family's preset
    (recorded in every cell, so a cell made before a preset changed is refused rather than mixed in)."""
    from dataclasses import is_dataclass

    from distill_core.ssdkd.config import preset
    from distill_core.ssdkd.scenarios import FAMILIES
    from envs import registered_config

    config = registered_config(env_id)
    definition: dict[str, Any] = {"config": asdict(config) if is_dataclass(config) else config}
    family = FAMILIES.get(getattr(config, "family", ""))
    if family is not None:
        definition.update(family=asdict(family), preset=asdict(preset(family.preset)))
    return definition


@dataclass
class PolicySpec:
    """How a cell builds a policy.

    :param label: the name in the report (``static``, ``schedule``, ``ppo``, ...).
    :param agent: the registry name that acts it out (``static``, ``progress_schedule``, ``ppo``, ...).
    :param hyperparams: passed to :func:`agents.registry.make_agent` (a baseline's vectors).
    :param model_dir: a trained learner's folder (``model.zip``, ``vecnormalize.pkl``).
    :param whole_run: the learner was trained on the one-decision-per-run id and picks a schedule at the
        first round (:class:`agents.whole_run.WholeRunPolicy`).
    :param fixed_knobs: knobs the policy was trained with held at the constants (the env's ``fixed_knobs``):
        every env it is evaluated on holds them too (:func:`policy_env_kwargs`).
    """

    label: str
    agent: str
    hyperparams: dict[str, Any] = field(default_factory=dict)
    model_dir: str | None = None
    whole_run: bool = False
    fixed_knobs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.fixed_knobs = tuple(self.fixed_knobs)  # read back from JSON as a list

    def settings(self) -> dict[str, Any]:
        """What decides the policy's rows, for a result cell: every field but the learner's folder (a study
        folder may move; its learner cells say what was trained); ``fixed_knobs`` only when some are
        (so cells of policies without any keep one form)."""
        out = {**asdict(self), "model_dir": None}
        if not self.fixed_knobs:
            del out["fixed_knobs"]
        return out


def policy_env_kwargs(spec: PolicySpec, env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """``env_kwargs`` with the knobs ``spec`` holds fixed (unchanged when it holds none)."""
    return {**env_kwargs, "fixed_knobs": tuple(spec.fixed_knobs)} if spec.fixed_knobs else env_kwargs



@dataclass
class Cell:
    """One episode: a policy on a seed.

    :param policy: what to run.
    :param env_id: the env.
    :param env_kwargs: its settings (training or held-out configuration).
    :param seed: the ``reset`` seed.
    :param keep_trace: return the episode's whole trace (evaluations; a search keeps only the numbers).
    :param policy_seed: the seed the policy is built with (``random`` draws from it); default ``seed``.
    """

    policy: PolicySpec
    env_id: str
    env_kwargs: dict[str, Any]
    seed: int
    keep_trace: bool = False
    policy_seed: int | None = None


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
    every evaluation task does (one task per core)."""
    import torch

    from agents.rollout import run_episode

    torch.set_num_threads(1)
    env = cached_env(cell.env_id, policy_env_kwargs(cell.policy, cell.env_kwargs))
    policy = build_policy(cell.policy, env, cell.seed if cell.policy_seed is None else cell.policy_seed)
    trace = run_episode(env, policy, cell.seed, env_id=cell.env_id, env_kwargs=cell.env_kwargs, agent_name=cell.policy.label)
    row: dict[str, Any] = {"policy": cell.policy.label, "seed": cell.seed,
                           **{k: v for k, v in trace.outcome.items() if isinstance(v, (int, float, bool))},
                           "seconds": float(trace.timings["seconds"])}
    if cell.keep_trace:
        row["trace"] = asdict(trace)
    return row




def evaluate_policies(specs: Sequence[PolicySpec], env_id: str, env_kwargs: dict[str, Any], seeds: Sequence[int],
                      runner: Runner, *, progress: bool = True) -> list[dict[str, Any]]:
    """One episode of every policy on every seed (paired: the same seeds for all), with its trace.

    :return: :func:`run_cell`'s rows, policy by policy in ``specs``' order.
    """
    cells = [Cell(spec, env_id, env_kwargs, seed, keep_trace=True) for spec in specs for seed in seeds]
    with progress_bar(len(cells), "evaluate", progress) as bar:
        return runner.map(run_cell, cells, bar=bar)
