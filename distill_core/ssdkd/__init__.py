"""SSD-KD (Liu et al., CVPR 2024) as reconstructed here (docs/design.md): configuration and presets
(``config``), replay buffer, modulation, the step-wise process."""

from distill_core.ssdkd.replay_buffer import Batch, BufferStats, ReplayBuffer
from distill_core.ssdkd.sum_tree import MinTree, SumTree

__all__ = ["Batch", "BufferStats", "MinTree", "ReplayBuffer", "SumTree"]
