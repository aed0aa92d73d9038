"""Seeding: every random number in a run flows from one integer seed."""

from __future__ import annotations

import numpy as np
import torch


def torch_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed`` (for sampling that must not touch global state)."""
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen


def derive_seed(seed: int, *tags: int | str) -> int:
    """A new 63-bit seed derived from ``seed`` and ``tags`` (stable across runs and machines).

    Used to give independent streams to the parts of a run (model init, data order, ...)
    without them sharing one generator whose consumption order would couple them.
    """
    words = [int(seed) & 0xFFFFFFFF]
    for tag in tags:
        if isinstance(tag, str):
            words.extend(tag.encode())
        else:
            words.append(int(tag) & 0xFFFFFFFF)
    return int(np.random.SeedSequence(words).generate_state(1, dtype=np.uint64)[0]) & ((1 << 63) - 1)


def seed_torch(seed: int) -> None:
    """Seed torch's global generators (module initialisation draws from them)."""
    torch.manual_seed(int(seed))
