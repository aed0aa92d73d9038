"""Dataset distillation with learned step sizes (DD, Wang et al. 2018) as a Gymnasium environment,
through the same generic env."""

from __future__ import annotations

from distill_core.condense.dd import DDConfig, DDProcess
from envs.process_env import ProcessEnv


class CondenseDDEnv(ProcessEnv):
    """One episode is one dataset-distillation run: synthetic images and one learned step size per
    inner step, trained so that a few gradient steps on them from θ₀ (a fixed initialisation, or a new
    random one every iteration) give a network that classifies real data; one step is one outer update
    (unroll the inner steps, cross-entropy on a real minibatch, backpropagate through the unroll).

    ## Action space

    ``Box(-1, 1, (1 + C,), float32)``:

    | index | knob            | range           | default | meaning                                           |
    |-------|-----------------|-----------------|---------|---------------------------------------------------|
    | 0     | lr_scale        | [0.1, 10] (log) | 1.0     | multiplier of the images' and step sizes' learning rates |
    | 1…C   | class_weights   | [1/4, 4] (log)  | 1.0     | weight of real class c in the outer loss          |

    ## Observation space

    ``Box`` of ``2C + T + 2`` entries: per class the outer loss (squashed to [0, 1)), the ``T`` learned
    step sizes (``lr / (lr + init_lr)``), per class the replayed network's validation accuracy, then
    progress and ``tanh`` of the last gain; names in ``env.unwrapped.observation_names``.

    ## Rewards

    The gain of the cheap evaluator's validation accuracy: the network the learned schedule trains on
    the synthetic images, on real validation data; returns telescope to the run's total gain. The test
    split is never used.

    ## Starting state

    Synthetic images from the reset seed (noise, or random real images with ``image_init="real"``);
    every step size at ``init_lr``.

    ## Episode end

    Truncated after ``iterations`` outer updates; terminated (``info["diverged"]``) if the outer loss
    stops being finite.

    ## Arguments

    ``gymnasium.make("DistillGym/Condense-DD-Digits-v0", **config)`` with any field of
    :class:`distill_core.condense.dd.DDConfig`.
    """

    process_cls = DDProcess
    config_cls = DDConfig
