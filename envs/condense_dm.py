"""Dataset condensation (distribution matching) as a Gymnasium environment, through the same generic env."""

from __future__ import annotations

from distill_core.condense.dm import DMConfig, DMProcess
from envs.process_env import ProcessEnv


class CondenseDMEnv(ProcessEnv):
    """One episode is one distribution-matching run that condenses a data set into a few synthetic
    images per class; one step is one outer update (a fresh random ConvNet-3, per-class mean-embedding
    matching, an SGD step on the pixels).

    ## Action space

    ``Box(-1, 1, (1 + C,), float32)``:

    | index | knob            | range          | default | meaning                                  |
    |-------|-----------------|----------------|---------|------------------------------------------|
    | 0     | lr_scale        | [0.1, 10] (log) | 1.0    | multiplier of the image learning rate    |
    | 1…C   | class_weights   | [1/4, 4] (log) | 1.0     | weight of class c in the matching loss   |

    ## Observation space

    ``Box`` of ``2C + 2`` entries: per class the mean-embedding distance (squashed to [0, 1)) and the
    cheap evaluator's validation accuracy, then progress and ``tanh`` of the last gain; names in
    ``env.unwrapped.observation_names``.

    ## Rewards

    The gain of the cheap evaluator's validation accuracy (a narrow ConvNet-3 trained briefly on the
    current synthetic set); returns telescope to the run's total gain. The test split is never used.

    ## Starting state

    Random real images per class (DM's initialisation), drawn from the reset seed.

    ## Episode end

    Truncated after ``iterations`` updates.

    ## Arguments

    ``gymnasium.make("DistillGym/Condense-DM-Digits-v0", **config)`` with any field of
    :class:`distill_core.condense.dm.DMConfig`.
    """

    process_cls = DMProcess
    config_cls = DMConfig
