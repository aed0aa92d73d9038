"""Gymnasium environments over distill_core processes. Importing this package registers the ids.

    import gymnasium as gym
    import envs  # noqa: F401  (registers DistillGym/*)
    env = gym.make("DistillGym/SSDKD-Digits-v0")
"""

from __future__ import annotations

from dataclasses import asdict

from gymnasium.envs.registration import register, registry

from distill_core.ssdkd.presets import preset
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

__all__ = ["ProcessEnv", "SSDKDEnv", "SSDKD_IDS"]
