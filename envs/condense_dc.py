"""Dataset condensation by gradient matching (DC, or DSA with ``dsa=True``) as a Gymnasium environment,
through the same generic env."""

from __future__ import annotations

from distill_core.condense.dc import DCConfig, DCProcess
from envs.process_env import ProcessEnv


class CondenseDCEnv(ProcessEnv):
    """One episode is one gradient-matching run (DC; DSA with ``dsa=True``) that condenses a data set
    into a few synthetic images per class; one step is one outer iteration (a freshly initialised
    ConvNet-3; per class, the layer-wise distance between the gradients a real and a synthetic batch
    induce; SGD steps on the pixels alternating with training the network on the synthetic set).

    ## Action space

    ``Box(-1, 1, (1 + C,), float32)``:

    | index | knob            | range           | default | meaning                                  |
    |-------|-----------------|-----------------|---------|------------------------------------------|
    | 0     | lr_scale        | [0.1, 10] (log) | 1.0     | multiplier of the image learning rate    |
    | 1…C   | class_weights   | [1/4, 4] (log)  | 1.0     | weight of class c in the matching loss   |

    ## Observation space

    ``Box`` of ``2C + 2`` entries: per class the gradient-matching distance per output unit (in [0, 1])
    and the cheap evaluator's validation accuracy, then progress and ``tanh`` of the last gain; names in ``env.unwrapped.observation_names``.

    ## Rewards

    The gain of the cheap evaluator's validation accuracy (a narrow ConvNet-3 trained briefly on the
    current synthetic set); returns telescope to the run's total gain. The test split is never used.

    ## Starting state

    Random real images per class (DC's initialisation), drawn from the reset seed.

    ## Episode end

    Truncated after ``iterations`` outer iterations; terminated (``info["diverged"]``) if the matching
    loss stops being finite.

    ## Arguments

    ``gymnasium.make("DistillGym/Condense-DC-Digits-v0", **config)`` with any field of
    :class:`distill_core.condense.dc.DCConfig`.
    """

    process_cls = DCProcess
    config_cls = DCConfig
