"""SSD-KD over a scenario set as a Gymnasium environment: every reset draws a practitioner's run."""

from __future__ import annotations

from distill_core.ssdkd.scenarios import ScenarioConfig, ScenarioProcess
from envs.process_env import ProcessEnv


class SSDKDScenarioEnv(ProcessEnv):
    """One episode is one SSD-KD run of an instance drawn at reset from a scenario set (DACBench's
    instance sets): the replay buffer at 1–10 % of the training set (1–2 % for the ``SmallBuffer`` ids), 8–16 rounds, one of several
    teachers. ``split="train"`` draws from the training instances, ``split="heldout"`` from a disjoint
    set whose teachers no policy was trained or searched on. One step is one round.

    ## Action space

    ``Box(-1, 1, (4 + 2C + 2,), float32)``: every knob of :class:`envs.ssdkd.SSDKDEnv`'s table, all exposed
    by default (α, β, γ, diversity, the C per-class synthesis weights, the C per-class replay priority
    weights, the replace fraction, the student learning-rate multiplier), with the same ranges and the
    paper's defaults at the zero action.

    ## Observation space

    The SSD-KD observation (buffer statistics, probe agreement and KL overall and per class, progress,
    ``tanh`` of the last gain) plus ``scenario/buffer_share`` and ``scenario/rounds``: what a
    practitioner knows of a run before it starts.

    ## Rewards

    As ``DistillGym/SSDKD-Digits-v0``: the gain of ``−KL(T ‖ S)`` on a synthetic probe (data-free).

    ## Starting state

    An instance drawn from the split by the reset seed; a fresh student, generator, buffer and probe.

    ## Episode end

    Truncated when the instance's round budget is spent; terminated when the student diverges.
    ``info["final_metrics"]`` holds test and validation accuracy and the instance (index, buffer, rounds).

    ## Arguments

    ``gymnasium.make("DistillGym/SSDKD-Digits-Scenarios-v0", split="heldout")``, with any field of
    :class:`distill_core.ssdkd.scenarios.ScenarioConfig`.
    """

    process_cls = ScenarioProcess
    config_cls = ScenarioConfig
