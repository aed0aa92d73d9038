"""Every agent behind one name: SB3 algorithms, sb3-contrib algorithms and non-learning baselines.

    agent = make_agent("ppo", env, seed=0, env_id="DistillGym/SSDKD-Digits-v0")
    agent.learn(total_timesteps=2_000)
    action, _ = agent.predict(obs, deterministic=True)

An ablation is a list of names. Hyperparameters per (agent, env id) live in ``agents/hyperparams/<agent>.yml``
in the RL Zoo's format (top-level keys are env ids; ``n_timesteps``, ``policy``, ``normalize``, ``n_envs``
and ``env_kwargs`` are zoo settings, the rest go to the algorithm), so RL Zoo users can reuse them.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import yaml

from agents.baselines import (AdaptivePolicy, BaselinePolicy, ConstantPolicy, ProgressSchedulePolicy, RandomPolicy,
                              SchedulePolicy, StaticPolicy)
from envs.wrappers import normalize_vec_env

HYPERPARAMS_DIR = Path(__file__).resolve().parent / "hyperparams"

#: name -> (module, class) for learning agents; sb3-contrib ones need the `contrib` extra.
LEARNING_AGENTS: dict[str, tuple[str, str]] = {
    "ppo": ("stable_baselines3", "PPO"),
    "a2c": ("stable_baselines3", "A2C"),
    "sac": ("stable_baselines3", "SAC"),
    "td3": ("stable_baselines3", "TD3"),
    "ddpg": ("stable_baselines3", "DDPG"),
    "tqc": ("sb3_contrib", "TQC"),
    "recurrent_ppo": ("sb3_contrib", "RecurrentPPO"),
    "trpo": ("sb3_contrib", "TRPO"),
    "ars": ("sb3_contrib", "ARS"),
    "crossq": ("sb3_contrib", "CrossQ"),
}

BASELINE_AGENTS: dict[str, type[BaselinePolicy]] = {
    "random": RandomPolicy,
    "constant": ConstantPolicy,
    "schedule": SchedulePolicy,
    # built from the env alone they act as `constant`; their vectors come as hyperparams (agents/evaluation/oracles.py)
    "static": StaticPolicy,  # hyperparams={"action": [...]}
    "progress_schedule": ProgressSchedulePolicy,  # hyperparams={"start": [...], "end": [...]}
    "adaptive": AdaptivePolicy,
}

#: RL Zoo keys that configure the experiment rather than the algorithm (``vector_workers`` is this
#: project's: the processes an id's native vector env splits its ``n_envs`` runs over; ``noise_type``
#: and ``noise_std`` become an off-policy agent's ``action_noise``, as in the RL Zoo)
ZOO_SETTINGS = ("n_timesteps", "policy", "normalize", "n_envs", "env_kwargs", "vector_workers", "noise_type",
                "noise_std")
#: the RL Zoo's ``noise_type`` values, by name -> SB3 action-noise class name
ACTION_NOISES = {"normal": "NormalActionNoise", "ornstein-uhlenbeck": "OrnsteinUhlenbeckActionNoise"}
#: RL Zoo keys this project does not apply; a block that sets one is refused rather than half-obeyed
UNSUPPORTED_ZOO_SETTINGS = {
    "env_wrapper": "a policy that should read only some observation entries names them with "
                   "features_extractor_class: ObservationSubset (agents/features.py); other wrappers go around "
                   "the env in Python",
    "frame_stack": "the observation already summarises the run so far",
    "callback": "pass callbacks to agent.learn in Python",
}


def list_agents() -> list[str]:
    """Every registered agent name."""
    return list(LEARNING_AGENTS) + list(BASELINE_AGENTS)


def is_learning(name: str) -> bool:
    """Whether ``name`` is trained (an SB3 / contrib algorithm) or a fixed baseline."""
    _check_name(name)
    return name in LEARNING_AGENTS


def agent_class(name: str) -> type:
    """The class behind ``name`` (imports sb3-contrib lazily, with a clear error when it is missing)."""
    _check_name(name)
    if name in BASELINE_AGENTS:
        return BASELINE_AGENTS[name]
    module, cls = LEARNING_AGENTS[name]
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError as err:
        raise ImportError(f"agent {name!r} needs {module}: pip install 'distill-gym[contrib]'") from err


def load_hyperparams(name: str, env_id: str | None) -> dict[str, Any]:
    """The RL Zoo entry for ``(name, env_id)``: the env id's block, else the file's ``default`` block,
    else ``{}``. Returns a fresh dict (zoo settings included)."""
    _check_name(name)
    path = HYPERPARAMS_DIR / f"{name}.yml"
    if not path.is_file():
        return {}
    table = yaml.safe_load(path.read_text()) or {}
    return dict(table.get(env_id) or table.get("default") or {})


def split_zoo_settings(hyperparams: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(algorithm kwargs, zoo settings)`` from an RL Zoo hyperparameter block."""
    for key, instead in UNSUPPORTED_ZOO_SETTINGS.items():
        if key in hyperparams:
            raise ValueError(f"the RL Zoo setting {key!r} is not supported here: {instead}")
    algo = {k: v for k, v in hyperparams.items() if k not in ZOO_SETTINGS}
    zoo = {k: v for k, v in hyperparams.items() if k in ZOO_SETTINGS}
    if isinstance(algo.get("policy_kwargs"), str):
        raise ValueError("policy_kwargs must be a YAML mapping here (the RL Zoo's string form would need eval)")
    return algo, zoo


def make_agent(
    name: str,
    env: Any,
    *,
    seed: int = 0,
    env_id: str | None = None,
    hyperparams: dict[str, Any] | None = None,
    tensorboard_log: str | None = None,
    verbose: int = 0,
    device: str = "auto",
    normalize: bool | None = None,
) -> Any:
    """Build agent ``name`` for ``env``.

    With normalisation on, the agent trains on ``VecNormalize(env)`` rather than on ``env`` itself: its
    statistics are ``agent.get_vec_normalize_env()`` (save them with the model; a plain env's observations
    must go through its ``normalize_obs`` before ``agent.predict``).

    :param name: one of :func:`list_agents`.
    :param env: a Gymnasium env or an SB3 VecEnv.
    :param seed: the agent's seed (SB3 seeds its networks and action noise from it).
    :param env_id: selects the hyperparameter block (see :func:`load_hyperparams`).
    :param hyperparams: overrides merged over the YAML block.
    :param tensorboard_log: folder for TensorBoard logs (learning agents).
    :param verbose: SB3 verbosity.
    :param device: torch device for the agent's networks (``auto``: GPU if present).
    :param normalize: wrap ``env`` in SB3's ``VecNormalize`` unless it already is (default: the merged
        block's ``normalize``; ``False`` opts out).
    """
    cls = agent_class(name)
    if name in BASELINE_AGENTS:
        extra = {k: v for k, v in (hyperparams or {}).items() if k not in ZOO_SETTINGS}
        return cls(env, seed=seed, **extra)
    merged = {**load_hyperparams(name, env_id), **(hyperparams or {})}
    algo_kwargs, zoo = split_zoo_settings(merged)
    if bool(zoo.get("normalize", False)) if normalize is None else normalize:
        env = normalize_vec_env(env, gamma=float(algo_kwargs.get("gamma", 0.99)))
    policy = zoo.get("policy", "MlpLstmPolicy" if name == "recurrent_ppo" else "MlpPolicy")
    if isinstance(algo_kwargs.get("policy_kwargs"), dict):
        algo_kwargs["policy_kwargs"] = resolve_policy_kwargs(algo_kwargs["policy_kwargs"], env)
    if "noise_type" in zoo:
        algo_kwargs["action_noise"] = action_noise(zoo["noise_type"], zoo.get("noise_std", 0.1), env.action_space)
    elif "noise_std" in zoo:
        raise ValueError("noise_std without noise_type: add noise_type (one of "
                         f"{sorted(ACTION_NOISES)}) to the block")
    return cls(policy, env, seed=seed, tensorboard_log=tensorboard_log, verbose=verbose, device=device, **algo_kwargs)


def resolve_policy_kwargs(policy_kwargs: dict[str, Any], env: Any) -> dict[str, Any]:
    """``policy_kwargs`` with a features extractor named in YAML (``features_extractor_class:
    ObservationSubset``) replaced by its class, and given the env's ``observation_names``
    (:mod:`agents.features`). Other entries pass through; the argument is not modified."""
    from agents.features import EXTRACTORS, ObservationSubset

    resolved = dict(policy_kwargs)
    extractor = resolved.get("features_extractor_class")
    if isinstance(extractor, str):
        if extractor not in EXTRACTORS:
            raise ValueError(f"unknown features_extractor_class {extractor!r}: use one of {sorted(EXTRACTORS)} "
                             "(or pass a class from Python)")
        resolved["features_extractor_class"] = extractor = EXTRACTORS[extractor]
    if extractor is ObservationSubset:
        extractor_kwargs = dict(resolved.get("features_extractor_kwargs") or {})
        extractor_kwargs.setdefault("names", tuple(observation_names(env)))
        resolved["features_extractor_kwargs"] = extractor_kwargs
    return resolved


def action_noise(noise_type: str, noise_std: float, action_space: Any) -> Any:
    """The RL Zoo's ``noise_type`` / ``noise_std`` as an SB3 action noise over ``action_space``'s entries
    (``noise_std`` in SB3's rescaled action units, [-1, 1], one value for every entry)."""
    import numpy as np
    from stable_baselines3.common import noise

    if noise_type not in ACTION_NOISES:
        raise ValueError(f"unknown noise_type {noise_type!r}: use one of {sorted(ACTION_NOISES)}")
    std = float(noise_std)
    if not np.isfinite(std) or std <= 0:
        raise ValueError(f"noise_std must be a positive number, got {noise_std!r}")
    size = int(np.prod(action_space.shape))
    return getattr(noise, ACTION_NOISES[noise_type])(mean=np.zeros(size), sigma=np.full(size, std))


def observation_names(env: Any) -> tuple[str, ...]:
    """The observation entries' names of a Gymnasium env or an SB3 VecEnv of distill-gym envs."""
    from stable_baselines3.common.vec_env import VecEnv

    names = env.get_attr("observation_names", indices=[0])[0] if isinstance(env, VecEnv) else \
        getattr(env.unwrapped, "observation_names", None)
    if names is None:
        raise ValueError("this env does not name its observation entries (observation_names): "
                         "ObservationSubset needs a distill-gym env")
    return tuple(names)


def load_agent(name: str, path: str | Path, env: Any = None, device: str = "auto") -> Any:
    """Load a saved learning agent (``cls.load``); baselines are rebuilt from the env."""
    if not is_learning(name):
        if env is None:
            raise ValueError(f"baseline {name!r} has no weights to load: pass env to rebuild it")
        return agent_class(name)(env)
    path = Path(path)
    if not path.exists() and not path.with_suffix(".zip").exists():
        raise FileNotFoundError(f"no saved {name} model at {path}: train one with scripts/train_policy.py")
    return agent_class(name).load(str(path), env=env, device=device)


def _check_name(name: str) -> None:
    if name not in LEARNING_AGENTS and name not in BASELINE_AGENTS:
        raise ValueError(f"unknown agent {name!r}: use one of {', '.join(list_agents())}")
