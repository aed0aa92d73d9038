"""The fast tier's single envs: SSD-KD runs sized to the data, on the lockstep engine with one slot."""

from __future__ import annotations

from distill_core.ssdkd.config import SSDKDConfig
from distill_core.ssdkd.lockstep_process import LockstepProcess
from distill_core.ssdkd.scenarios import ScenarioConfig
from envs.process_env import ProcessEnv


class SSDKDFastEnv(ProcessEnv):
    """``DistillGym/SSDKD-Digits-v1`` and its kin: :class:`envs.ssdkd.SSDKDEnv` (same action, observation,
    reward, start and end: see its tables) on the fast tier's presets — an MLP generator sized to the
    input and one probe per teacher (``distill_core.ssdkd.config.FAST``) — run by the lockstep engine
    with one slot, the code its vector env (:class:`envs.ssdkd_vector.SSDKDVectorEnv`) runs with N.

    ## Arguments

    ``gymnasium.make("DistillGym/SSDKD-Digits-v1", **config)`` with any field of
    :class:`~distill_core.ssdkd.config.SSDKDConfig` the lockstep engine supports (others are refused by name).
    """

    process_cls = LockstepProcess
    config_cls = SSDKDConfig


class SSDKDFastScenarioEnv(ProcessEnv):
    """``DistillGym/SSDKD-Digits-SmallBuffer-Scenarios-v1`` and its kin: :class:`envs.ssdkd_scenarios.SSDKDScenarioEnv`
    (same action, observation, reward, start and end: see its tables) over the fast tier's scenario
    families, run by the lockstep engine with one slot.

    ## Arguments

    ``gymnasium.make("DistillGym/SSDKD-Digits-SmallBuffer-Scenarios-v1", split="heldout")``, with any field of
    :class:`~distill_core.ssdkd.scenarios.ScenarioConfig`.
    """

    process_cls = LockstepProcess
    config_cls = ScenarioConfig
