"""A warm generator: inverted once per teacher from a fixed seed, then the starting point of every run.

SSD-KD builds on Fast-DFKD, whose generator is meta-learned over a whole training run so that a few
inversion steps a round make good samples. A short run that starts from a fresh generator spends its
budget learning to invert the teacher at all (on Fashion-MNIST, 16 rounds of 2 steps from a fresh
width-8 generator left the student at 66 %, from a warm one at 73 %). ``warm_generator_steps > 0``
starts each run from a generator trained that many steps on the inversion loss (no modulation, no
adversarial term, class-balanced targets, a new latent batch every :data:`WARM_CHUNK` steps). It is
still data-free and deterministic: it depends on the teacher and the settings, never on the run's seed.
It is made once and kept in memory beside the teacher and on disk under ``<cache>/generators/``.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from typing import Any

import torch

from distill_core.common.checkpoint import CheckpointError, atomic_save, load_checkpoint
from distill_core.common.paths import cache_dir
from distill_core.common.seeding import derive_seed, seeded, torch_generator
from distill_core.inversion import Generator

WARM_FORMAT = "distill-gym/warm-generator/v1"
#: the seed every warm generator is made from
WARM_SEED = 0
#: inversion steps on one latent batch before a new one is drawn
WARM_CHUNK = 10
#: latent batch of the warm-up
WARM_BATCH = 256
#: warm generators by teacher network (weakly: they go with the teacher), then by settings
WARM_GENERATORS: weakref.WeakKeyDictionary[torch.nn.Module, dict[str, dict[str, torch.Tensor]]] = weakref.WeakKeyDictionary()


def warm_key(process: Any) -> dict[str, Any]:
    """Everything a warm generator depends on: the teacher (its cache key, with the data's fingerprint)
    and the inversion settings."""
    cfg = process.config
    return {"teacher": process.teacher.spec.key(process.data), "steps": cfg.warm_generator_steps, "chunk": WARM_CHUNK,
            "batch": WARM_BATCH, "latent_dim": cfg.latent_dim, "gen_width": cfg.gen_width, "generator": cfg.generator,
            "g_lr": cfg.g_lr, "z_lr": cfg.z_lr, "lambda_bn": cfg.lambda_bn, "bn_first_weight": cfg.bn_first_weight,
            "lambda_oh": cfg.lambda_oh, "lambda_act": cfg.lambda_act, "lambda_ie": cfg.lambda_ie, "lambda_tv": cfg.lambda_tv,
            "inv_max_shift": cfg.inv_max_shift, "inv_hflip": cfg.inv_hflip}


def warm_generator_state(process: Any) -> dict[str, torch.Tensor]:
    """The warm generator's weights for ``process``'s teacher and settings: from memory, from the disk
    cache, or made now (and cached in both).

    :param process: an :class:`~distill_core.ssdkd.process.SSDKDProcess` with ``warm_generator_steps > 0``.
    """
    key = warm_key(process)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    kept = WARM_GENERATORS.setdefault(process.teacher.model, {})
    if digest not in kept:
        path = cache_dir() / "generators" / f"{process.config.dataset}__{digest}.pt"
        hint = f"delete {path} to make it again"
        state = None
        if path.exists():
            payload = load_checkpoint(path, expected_format=WARM_FORMAT, rebuild_hint=hint)
            if payload.get("key") != json.loads(json.dumps(key, default=str)):
                raise CheckpointError(f"{path} was made for other settings; {hint}")
            state = payload["state_dict"]
        if state is None:
            state = make_warm_generator(process)
            atomic_save({"format": WARM_FORMAT, "key": json.loads(json.dumps(key, default=str)), "state_dict": state}, path)
        kept[digest] = state
    return kept[digest]


def make_warm_generator(process: Any) -> dict[str, torch.Tensor]:
    """Train a generator from :data:`WARM_SEED` for ``warm_generator_steps`` inversion steps (see the
    module docstring) and return its weights on the CPU.

    :raises RuntimeError: the inversion loss became non-finite (lower ``g_lr``).
    """
    cfg = process.config
    data, device = process.data, process.device
    with seeded(derive_seed(WARM_SEED, "warm-generator")):
        generator = Generator(data.input_shape, data.mean, data.std, cfg.latent_dim, cfg.gen_width, cfg.generator).to(device)
    g_optimizer = torch.optim.Adam(generator.parameters(), lr=cfg.g_lr, betas=(0.5, 0.999))
    gen = torch_generator(derive_seed(WARM_SEED, "warm-torch"), device)
    targets = torch.arange(WARM_BATCH, device=device) % data.num_classes
    done = 0
    with torch.enable_grad():
        while done < cfg.warm_generator_steps:
            steps = min(WARM_CHUNK, cfg.warm_generator_steps - done)
            z = torch.randn(WARM_BATCH, cfg.latent_dim, generator=gen, device=device).requires_grad_()
            z_optimizer = torch.optim.Adam([z], lr=cfg.z_lr, betas=(0.5, 0.999))
            _, _, finite = process.optimise_batch(generator, z, [z_optimizer, g_optimizer], targets, steps, knobs=None, gen=gen)
            if not finite:
                raise RuntimeError(f"the warm generator's inversion loss became non-finite after {done} steps: lower g_lr "
                                   f"({cfg.g_lr}) or warm_generator_steps")
            done += steps
    return {k: v.detach().cpu().clone() for k, v in generator.state_dict().items()}


__all__ = ["WARM_BATCH", "WARM_CHUNK", "WARM_FORMAT", "WARM_GENERATORS", "WARM_SEED", "make_warm_generator", "warm_generator_state",
           "warm_key"]
