"""SSD-KD (Liu et al., CVPR 2024) as reconstructed in DESIGN.md §3: replay buffer, modulation, process."""

from distill_core.ssdkd.replay_buffer import Batch, BufferStats, ReplayBuffer
from distill_core.ssdkd.sum_tree import MinTree, SumTree

__all__ = ["Batch", "BufferStats", "MinTree", "ReplayBuffer", "SumTree"]
