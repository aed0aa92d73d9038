"""Gymnasium environments over distill_core processes. Importing this package registers the ids.

    import gymnasium as gym
    import envs  # noqa: F401  (registers DistillGym/*)
    env = gym.make("DistillGym/SSDKD-Digits-v0")
"""

from __future__ import annotations

from dataclasses import asdict

from gymnasium.envs.registration import register, registry

from distill_core.ssdkd.presets import preset
from envs.condense_dc import CondenseDCEnv
from envs.condense_dd import CondenseDDEnv
from envs.condense_dm import CondenseDMEnv
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

#: Condensation ids and their configurations (any field can be overridden in make()).
CONDENSE_IDS: dict[str, dict] = {
    "DistillGym/Condense-DM-Digits-v0": dict(dataset="digits", images_per_class=10, iterations=20),
    "DistillGym/Condense-DM-FashionMNIST-v0": dict(dataset="fashion_mnist", images_per_class=10, iterations=100,
                                                   real_batch=256, score_epochs=100),
    "DistillGym/Condense-DC-Digits-v0": dict(dataset="digits", images_per_class=10, iterations=10, net_width=32, net_depth=2,
                                             real_batch=32),
    "DistillGym/Condense-DC-FashionMNIST-v0": dict(dataset="fashion_mnist", images_per_class=10, iterations=50,
                                                   real_batch=64, score_epochs=100),
    "DistillGym/Condense-DD-Digits-v0": dict(dataset="digits", images_per_class=1, iterations=50, net_depth=2, init_lr=0.1,
                                             lr_images=0.1, lr_lrs=0.01, real_batch=128),
    "DistillGym/Condense-DD-FashionMNIST-v0": dict(dataset="fashion_mnist", images_per_class=1, iterations=200),
}
_CONDENSE_ENTRY_POINTS = {"DM": "envs.condense_dm:CondenseDMEnv", "DC": "envs.condense_dc:CondenseDCEnv",
                          "DD": "envs.condense_dd:CondenseDDEnv"}
for _env_id, _kwargs in CONDENSE_IDS.items():
    if _env_id not in registry:
        _method = _env_id.split("Condense-")[1].split("-")[0]
        register(id=_env_id, entry_point=_CONDENSE_ENTRY_POINTS[_method], kwargs=_kwargs)


def config_class(env_id: str) -> type:
    """The configuration dataclass behind a registered id (for typed ``--set key=value`` overrides)."""
    from gymnasium.envs.registration import load_env_creator

    spec = registry.get(env_id.split(":")[-1])
    if spec is None:
        raise ValueError(f"unknown env id {env_id!r}: registered DistillGym ids are {sorted(SSDKD_IDS) + sorted(CONDENSE_IDS)}")
    creator = load_env_creator(spec.entry_point) if isinstance(spec.entry_point, str) else spec.entry_point
    return creator.config_cls


__all__ = ["CONDENSE_IDS", "config_class", "CondenseDCEnv", "CondenseDDEnv", "CondenseDMEnv", "ProcessEnv", "SSDKDEnv", "SSDKD_IDS"]
