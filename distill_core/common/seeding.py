"""Seeding: every random number in a run flows from one integer seed."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's global CPU generator seeded to ``seed``, restoring it afterwards.

    Module constructors draw their initial weights from the global generator; this makes a model's
    initialisation a function of ``seed`` alone without leaking state into the caller.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield
