"""Gymnasium environments over distill_core processes. Importing this package registers the ids.

    import gymnasium as gym
    import envs  # noqa: F401  (registers DistillGym/*)
    env = gym.make("DistillGym/SSDKD-Digits-v0")
"""

from __future__ import annotations

from dataclasses import asdict

from gymnasium.envs.registration import register, registry

from distill_core.ssdkd.presets import preset
from envs.condense import CondenseDMEnv
from envs.process_env import ProcessEnv
from envs.ssdkd import SSDKDEnv

#: The registered SSD-KD ids and their presets (any configuration field can be overridden in make()).
SSDKD_IDS: dict[str, str] = {
    "DistillGym/SSDKD-Digits-v0": "digits",  # the cheap one RL trains on: a whole run in seconds
    "DistillGym/SSDKD-MNIST1D-v0": "mnist1d",
    "DistillGym/SSDKD-FashionMNIST-v0": "fashion_mnist",  # 6 000 synthetic samples, 10 % of the training set
}

for _env_id, _preset in SSDKD_IDS.items():
    if _env_id not in registry:
        register(id=_env_id, entry_point="envs.ssdkd:SSDKDEnv", kwargs=asdict(preset(_preset)))

#: Condensation ids (distribution matching so far) and their configurations.
CONDENSE_IDS: dict[str, dict] = {
    "DistillGym/Condense-DM-Digits-v0": dict(dataset="digits", images_per_class=10, iterations=20),
    "DistillGym/Condense-DM-FashionMNIST-v0": dict(dataset="fashion_mnist", images_per_class=10, iterations=100,
                                                   real_batch=256, score_epochs=100),
}
for _env_id, _kwargs in CONDENSE_IDS.items():
    if _env_id not in registry:
        register(id=_env_id, entry_point="envs.condense:CondenseDMEnv", kwargs=_kwargs)



def config_class(env_id: str) -> type:
    """The configuration dataclass behind a registered id (for typed ``--set key=value`` overrides)."""
    from gymnasium.envs.registration import load_env_creator

    spec = registry.get(env_id.split(":")[-1])
    if spec is None:
        raise ValueError(f"unknown env id {env_id!r}: registered DistillGym ids are {sorted(SSDKD_IDS) + sorted(CONDENSE_IDS)}")
    creator = load_env_creator(spec.entry_point) if isinstance(spec.entry_point, str) else spec.entry_point
    return creator.config_cls


__all__ = ["CONDENSE_IDS", "config_class", "CondenseDMEnv", "ProcessEnv", "SSDKDEnv", "SSDKD_IDS"]
