"""Learners in an evaluation: a registry learning agent trained per round on an env (``ppo``), or on
the env's one-decision-per-run id, choosing a whole schedule from the first observation
(``ppo_schedule``), then evaluated beside the other policies."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: the suffix of a learner trained on the one-decision-per-run id
WHOLE_RUN_SUFFIX = "_schedule"
#: the headroom benchmark's learners: trained per round
LEARNERS = ("ppo", "sac")
#: the headroom benchmark's learners on the one-decision-per-run id: name -> registry learner
WHOLE_RUN_LEARNERS: dict[str, str] = {"ppo_schedule": "ppo", "sac_schedule": "sac"}


def learner_agent(name: str) -> tuple[str, bool]:
    """The registry learner behind a learner's name and whether it picks whole schedules:
    ``"td3_schedule"`` -> ``("td3", True)``, ``"ppo"`` -> ``("ppo", False)``.

    :raises ValueError: a name that is not a registry learning agent, with or without the suffix.
    """
    from agents.registry import LEARNING_AGENTS

    agent = name[: -len(WHOLE_RUN_SUFFIX)] if name.endswith(WHOLE_RUN_SUFFIX) else name
    if agent not in LEARNING_AGENTS:
        raise ValueError(f"unknown learner {name!r}: use a learning agent ({', '.join(LEARNING_AGENTS)}) for one "
                         f"action per round, or one with {WHOLE_RUN_SUFFIX!r} appended for one schedule per run")
    return agent, agent != name


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
    result.agent.get_env().close()  # its worker processes end here, not when this (long-lived) task process does
    return {"agent": task.agent, "label": task.label or task.agent, "env_id": task.env_id, "model_dir": task.out,
            "timesteps": result.timesteps, "seconds": result.seconds}


def whole_run_id(env_id: str) -> str:
    """The one-decision-per-run id over ``env_id`` (``ValueError`` naming the ids that have one)."""
    from envs import SCHEDULE_IDS

    name = env_id.split(":")[-1]
    for schedule_id, inner_id in SCHEDULE_IDS.items():
        if inner_id == name:
            return schedule_id
    raise ValueError(f"{name} has no one-decision-per-run id, so ppo_schedule / sac_schedule cannot train on it; "
                     f"ids that have one: {sorted(SCHEDULE_IDS.values())}")
