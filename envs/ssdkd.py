"""SSD-KD sample selection as a Gymnasium environment."""

from __future__ import annotations

from distill_core.ssdkd.config import SSDKDConfig
from distill_core.ssdkd.process import SSDKDProcess
from envs.process_env import ProcessEnv


class SSDKDEnv(ProcessEnv):
    """One episode is one whole data-free distillation run of SSD-KD; one step is one round
    (invert a batch from the teacher, modulate, update the replay buffer partially, distil with
    priority sampling). The agent sets the knobs the paper fixes by hand.

    ## Action space

    ``Box(-1, 1, (k,), float32)``: ``[-1, 0]`` maps onto ``[low, default]`` and ``[0, 1]`` onto
    ``[default, high]``, evenly (in log for the weights and ``lr_scale``), so the zero action is the paper:

    | index | knob        | range       | paper-style default | meaning                                     |
    |-------|-------------|-------------|---------------------|---------------------------------------------|
    | 0     | alpha       | [0, 1]      | 0.6                 | priority exponent, ``P(i) ∝ p_i^α``          |
    | 1     | beta        | [0, 1]      | 0.4                 | importance-sampling correction               |
    | 2     | gamma       | [0, 4]      | 1.0                 | difficulty focus ``(1 − p_T(y|x))^γ``        |
    | 3     | diversity   | [0, 2]      | 1.0                 | diversity strength (φ_div and target draw)   |
    | 4…3+C | class_weights | [1/4, 4] (log) | 1.0        | synthesis target weight of each class (``class_knobs=True``) |
    | next C | class_priority | [1/4, 4] (log) | 1.0       | replay priority weight of each class, ``P(i) ∝ w_c p_i^α`` (``priority_knobs=True``) |
    | next  | replace_fraction | [0.1, 1] | 1.0               | share of the round's batch made (``replace_knob=True``) |
    | last  | lr_scale    | [0.1, 10] (log) | 1.0             | multiplier of the student's learning rate this round (``lr_knob=True``) |

    (The table is checked against :class:`~distill_core.ssdkd.process.SSDKDKnobs` by a test.)

    ## Observation space

    ``Box(float32)`` of bounded statistics, names in ``env.unwrapped.observation_names``: the buffer's
    class histogram, per-class mean priority and teacher confidence (3·C), histogram entropy, fill
    ratio, mean/min/max priority; student–teacher agreement and squashed KL on the synthetic probe,
    overall and per teacher-predicted class (2·C);
    the fraction of the budget spent; ``tanh`` of the last gain.

    ## Rewards

    The round's score gain ``score_t − score_{t−1}``; the default score is ``−KL(T ‖ S)`` on a held-out
    synthetic probe made at reset (data-free), so the return is the run's total gain. With
    ``reward_normalization="constant"`` gains are divided by what the paper-default policy gains on the
    same seed; with ``"paired"`` its gain in the same round is subtracted (the return is the gain over the
    paper's run). ``score="val_accuracy"`` (research mode, not data-free) uses real validation accuracy.

    ## Starting state

    A fresh student (seeded), a fresh generator, an empty buffer, a new probe set; the teacher is the
    cached one for the data set.

    ## Episode end

    Truncated when the round budget is spent; terminated with ``divergence_penalty`` and
    ``info["diverged"] = True`` when the student's loss becomes non-finite.

    ## Arguments

    ``gymnasium.make("DistillGym/SSDKD-Digits-v0", render_mode=None, reward_normalization=None, **config)``
    where ``config`` is any field of :class:`distill_core.ssdkd.config.SSDKDConfig`; ``fixed_knobs=("lr_scale",)``
    keeps those knobs at their defaults whatever the action asks (same spaces: how policies move between
    tiers whose students take different learning rates; see :class:`envs.process_env.ProcessEnv`).
    """

    process_cls = SSDKDProcess
    config_cls = SSDKDConfig
