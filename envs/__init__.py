"""Gymnasium environments over distill_core processes. Importing this package registers the ids.

    import gymnasium as gym
    import envs  # noqa: F401  (registers DistillGym/*)
    env = gym.make("DistillGym/SSDKD-Digits-v0")

Every id is one env class and one preset: SSD-KD's from :mod:`distill_core.ssdkd.config`, condensation's
from :mod:`distill_core.condense.presets` (the episode-sized run). Any configuration field can be
overridden in ``make()``.
"""

from __future__ import annotations

from dataclasses import asdict
from functools import partial
from typing import Any

from gymnasium.envs.registration import register, registry

from distill_core.condense.presets import condense_config
from distill_core.ssdkd.config import preset
from distill_core.ssdkd.scenarios import ScenarioConfig
from envs.condense_dc import CondenseDCEnv
from envs.condense_dd import CondenseDDEnv
from envs.condense_dm import CondenseDMEnv
from envs.process_env import ProcessEnv
from envs.ssdkd import SSDKDEnv
from envs.ssdkd_scenarios import SSDKDScenarioEnv
from envs.ssdkd_fast import SSDKDFastEnv, SSDKDFastScenarioEnv
from envs.ssdkd_vector import SSDKDVectorEnv
from envs.whole_run import WholeRunSchedule, make_whole_run_env
from envs.whole_run_vector import WholeRunVectorEnv
from envs.worker_vector import WorkerVectorEnv, lockstep_vector_env

def _entry_point(env_cls: type) -> str:
    return f"{env_cls.__module__}:{env_cls.__name__}"


#: The SSD-KD ids and their presets.
SSDKD_IDS: dict[str, Any] = {
    "DistillGym/SSDKD-Digits-v0": preset("digits"),  # the cheap one RL trains on: a whole run in seconds
    "DistillGym/SSDKD-MNIST1D-v0": preset("mnist1d"),
    "DistillGym/SSDKD-FashionMNIST-v0": preset("fashion_mnist"),  # 6 000 synthetic samples, 10 % of the training set
}

#: The scenario-set ids (DACBench's instance sets): a practitioner's run drawn at every reset;
#: ``split="heldout"`` for evaluation.
SCENARIO_IDS: dict[str, Any] = {
    "DistillGym/SSDKD-Digits-Scenarios-v0": ScenarioConfig(family="digits"),
    "DistillGym/SSDKD-MNIST1D-Scenarios-v0": ScenarioConfig(family="mnist1d"),
    # the ids to learn on: the knobs that move the outcome there (global knobs, the replace fraction and
    # the student's learning rate); the per-class weights moved it by +0.14 ± 0.30 points on digits
    "DistillGym/SSDKD-Digits-SmallBuffer-Scenarios-v0": ScenarioConfig(family="digits_small_buffer", class_knobs=False,
                                                                     priority_knobs=False),
    "DistillGym/SSDKD-MNIST1D-SmallBuffer-Scenarios-v0": ScenarioConfig(family="mnist1d_small_buffer", class_knobs=False,
                                                                      priority_knobs=False),
}

#: The validation tier: SSD-KD in the paper's regime on real images with convolutional networks, run one
#: run a process (stacking convolutions measured slower on a CPU). Its defaults give the action and
#: observation spaces of the SmallBuffer learning ids (``class_knobs=True, priority_knobs=True``: those of
#: ``DistillGym/SSDKD-MNIST1D-Paper-Scenarios-v1``), so a policy learned on the fast tier runs on it unchanged.
VALIDATION_IDS: dict[str, Any] = {
    "DistillGym/SSDKD-FashionMNIST-Paper-Scenarios-v1": ScenarioConfig(family="fashion_mnist_paper", class_knobs=False,
                                                                     priority_knobs=False),
}
SCENARIO_IDS.update(VALIDATION_IDS)

#: Condensation methods as envs: images per class of the episode.
_CONDENSE_SIZES: dict[str, int] = {"dm": 10, "dc": 10, "dd": 1}
_DATASET_LABELS = {"digits": "Digits", "fashion_mnist": "FashionMNIST"}

#: The condensation ids and their episode-sized presets.
CONDENSE_IDS: dict[str, Any] = {
    f"DistillGym/Condense-{method.upper()}-{label}-v0": condense_config(method, dataset, ipc, episode=True)
    for method, ipc in _CONDENSE_SIZES.items() for dataset, label in _DATASET_LABELS.items()
}

#: Every id and its preset.
REGISTERED: dict[str, Any] = {**SSDKD_IDS, **SCENARIO_IDS, **CONDENSE_IDS}

#: The fast tier (-v1): the learning ids' runs with networks sized to the data, on the lockstep engine, each
#: with a native vector env (``gymnasium.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point")``).
FAST_IDS: dict[str, Any] = {
    "DistillGym/SSDKD-Digits-v1": preset("digits_fast"),
    "DistillGym/SSDKD-MNIST1D-v1": preset("mnist1d_fast"),
    "DistillGym/SSDKD-Digits-SmallBuffer-Scenarios-v1": ScenarioConfig(family="digits_small_buffer_fast", class_knobs=False,
                                                                     priority_knobs=False),
    "DistillGym/SSDKD-MNIST1D-SmallBuffer-Scenarios-v1": ScenarioConfig(family="mnist1d_small_buffer_fast", class_knobs=False,
                                                                      priority_knobs=False),
    # the paper's regime (a buffer of 5–10 % of the training set, tens of KD batches): every selection and
    # modulation knob exposed, per-class ones included
    "DistillGym/SSDKD-MNIST1D-Paper-Scenarios-v1": ScenarioConfig(family="mnist1d_paper"),
}

#: Every id and its preset.
REGISTERED.update(FAST_IDS)

#: The env class of every id: the one whose ``config_cls`` is its preset's type (the fast tier's own).
_ENV_OF_CONFIG = {env_cls.config_cls: env_cls for env_cls in (SSDKDEnv, SSDKDScenarioEnv, CondenseDMEnv, CondenseDCEnv,
                                                              CondenseDDEnv)}
_FAST_ENV_OF_CONFIG = {env_cls.config_cls: env_cls for env_cls in (SSDKDFastEnv, SSDKDFastScenarioEnv)}


def env_class(env_id: str) -> type:
    """The single env class of a registered per-round id."""
    table = _FAST_ENV_OF_CONFIG if env_id in FAST_IDS else _ENV_OF_CONFIG
    return table[type(REGISTERED[env_id])]


ENTRY_POINTS: dict[str, str] = {env_id: _entry_point(env_class(env_id)) for env_id in REGISTERED}

for _env_id, _config in REGISTERED.items():
    if _env_id not in registry:
        vector = (partial(lockstep_vector_env, env_id=_env_id, make_vector=partial(SSDKDVectorEnv, env_cls=env_class(_env_id)))
                  if _env_id in FAST_IDS else None)
        register(id=_env_id, entry_point=ENTRY_POINTS[_env_id], vector_entry_point=vector, kwargs=asdict(_config))

#: One decision per run (:mod:`envs.whole_run`): the same runs as the per-round id beside each, the
#: action a whole schedule of its knobs chosen at the start.
SCHEDULE_IDS: dict[str, str] = {
    "DistillGym/SSDKD-Digits-SmallBuffer-Schedule-v0": "DistillGym/SSDKD-Digits-SmallBuffer-Scenarios-v0",
    "DistillGym/SSDKD-MNIST1D-SmallBuffer-Schedule-v0": "DistillGym/SSDKD-MNIST1D-SmallBuffer-Scenarios-v0",
    "DistillGym/SSDKD-Digits-SmallBuffer-Schedule-v1": "DistillGym/SSDKD-Digits-SmallBuffer-Scenarios-v1",
    "DistillGym/SSDKD-MNIST1D-SmallBuffer-Schedule-v1": "DistillGym/SSDKD-MNIST1D-SmallBuffer-Scenarios-v1",
    "DistillGym/SSDKD-MNIST1D-Paper-Schedule-v1": "DistillGym/SSDKD-MNIST1D-Paper-Scenarios-v1",
    "DistillGym/SSDKD-FashionMNIST-Paper-Schedule-v1": "DistillGym/SSDKD-FashionMNIST-Paper-Scenarios-v1",
}
for _env_id, _inner_id in SCHEDULE_IDS.items():
    if _env_id not in registry:
        register(id=_env_id, entry_point=_entry_point(make_whole_run_env), kwargs={"inner_id": _inner_id},
                 vector_entry_point=partial(lockstep_vector_env, env_id=_env_id, make_vector=WholeRunVectorEnv)
                 if _inner_id in FAST_IDS else None)


def has_vector_env(env_id: str) -> bool:
    """Whether ``env_id`` has a native (lockstep) vector env: ``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")``."""
    from gymnasium import spec

    return spec(env_id.split(":")[-1]).vector_entry_point is not None


def registered_config(env_id: str) -> Any:
    """The preset configuration behind a registered id (its type gives typed ``--set key=value`` overrides).

    :param env_id: ``DistillGym/...``, or ``envs:DistillGym/...`` as subprocess workers take it.
    """
    name = env_id.split(":")[-1]
    name = SCHEDULE_IDS.get(name, name)  # a schedule id takes its per-round id's configuration
    if name not in REGISTERED:
        raise ValueError(f"unknown env id {env_id!r}: registered DistillGym ids are {sorted([*REGISTERED, *SCHEDULE_IDS])}")
    return REGISTERED[name]


__all__ = ["CONDENSE_IDS", "VALIDATION_IDS", "ENTRY_POINTS", "FAST_IDS", "REGISTERED", "SSDKDFastEnv", "SSDKDFastScenarioEnv", "SSDKDVectorEnv",
           "WholeRunVectorEnv", "WorkerVectorEnv", "env_class", "has_vector_env", "lockstep_vector_env", "SCENARIO_IDS", "SCHEDULE_IDS", "CondenseDCEnv", "CondenseDDEnv", "CondenseDMEnv", "ProcessEnv",
           "SSDKDEnv", "SSDKDScenarioEnv", "SSDKD_IDS", "WholeRunSchedule", "registered_config"]
