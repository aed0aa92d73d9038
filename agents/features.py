"""A features extractor that lets a policy read only some named entries of an env's observation.

A distill-gym observation is a flat ``Box`` whose entries have names (``env.observation_names``:
``progress``, ``probe/kl/3``, ...). :class:`ObservationSubset` keeps the entries a policy is meant to
read, in the order given, plus a constant 1 — with SB3's gSDE, exploration noise is a random linear
map of the features held for ``sde_sample_freq`` steps, and the constant gives that map an offset, so
one episode explores one affine policy of the kept entries (over ``progress``: a random schedule).

The extractor lives in the policy, not in an env wrapper: a saved model still takes the env's whole
observation, so it runs unchanged wherever the env runs (evaluation, rollouts, transfer).

In an RL-Zoo YAML block (``agents/hyperparams/``), by name::

    policy_kwargs:
      net_arch: {pi: [], vf: [64, 64]}
      features_extractor_class: ObservationSubset
      features_extractor_kwargs: {keep: [progress, scenario/buffer_share, scenario/rounds]}

:func:`agents.registry.make_agent` resolves the class and gives it the env's ``observation_names``.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor


class ObservationSubset(BaseFeaturesExtractor):
    """The observation entries named in ``keep`` (in that order), then a constant 1.

    :param observation_space: the env's flat ``Box`` observation space.
    :param keep: names of the entries to keep.
    :param names: every entry's name, in observation order (the env's ``observation_names``).
    :raises ValueError: an unknown or repeated name, nothing to keep, or names that do not match the space.
    """

    def __init__(self, observation_space: gym.spaces.Box, keep: Sequence[str], names: Sequence[str]) -> None:
        keep, names = [str(k) for k in keep], [str(n) for n in names]
        if len(observation_space.shape) != 1 or observation_space.shape[0] != len(names):
            raise ValueError(f"ObservationSubset needs a flat observation with one name per entry: the space is "
                             f"{observation_space.shape}, {len(names)} names were given")
        if not keep:
            raise ValueError("ObservationSubset: keep at least one observation entry")
        unknown = [k for k in keep if k not in names]
        if unknown:
            raise ValueError(f"ObservationSubset: no observation entries named {unknown}; the env's are {names}")
        if len(set(keep)) != len(keep):
            raise ValueError(f"ObservationSubset: an entry is kept twice in {keep}")
        super().__init__(observation_space, features_dim=len(keep) + 1)
        self.keep = tuple(keep)
        self.register_buffer("indices", torch.tensor([names.index(k) for k in keep], dtype=torch.long))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        kept = observations.index_select(-1, self.indices)
        return torch.cat([kept, torch.ones_like(kept[..., :1])], dim=-1)


#: extractors a YAML block may name (``features_extractor_class: ObservationSubset``)
EXTRACTORS = {"ObservationSubset": ObservationSubset}
