"""Tiny configurations of every registered id (a whole episode in well under a second on digits), and a
stand-in Fashion-MNIST in the real IDX format, so tests can make every id without the real data."""

from __future__ import annotations

from typing import Any

import envs
from distill_core.ssdkd.scenarios import ScenarioConfig

#: SSD-KD: 3 rounds of 16 samples into a 32-sample buffer
TINY_SSDKD: dict[str, Any] = dict(rounds=3, synth_batch=16, buffer_capacity=32, g_steps=1, kd_steps=2, kd_batch=16,
                                  probe_size=40, probe_steps=2, device="cpu")

#: buffer shares of a test-sized scenario family: 13 and 26 samples on digits, 36 and 72 on MNIST-1D (the
#: paper-regime family's tiny form included)
TINY_SHARES: tuple[float, ...] = (0.01, 0.02)

TINY_CONDENSE: dict[str, dict[str, Any]] = {
    "DM": dict(images_per_class=2, real_batch=8, score_epochs=2, net_width=16),
    "DC": dict(images_per_class=2, real_batch=8, score_epochs=2, net_width=16, outer_loop=2, inner_loop=1),
    "DD": dict(real_batch=16, net_width=8),
}


def condense_method(env_id: str) -> str:
    """``"DM"`` for ``DistillGym/Condense-DM-Digits-v0``."""
    return env_id.split("Condense-")[1].split("-")[0]


def scenario_family(env_id: str) -> str | None:
    """The scenario family behind a scenario or schedule id (``None`` for a single-configuration id)."""
    config = envs.REGISTERED.get(envs.SCHEDULE_IDS.get(env_id, env_id))
    return config.family if isinstance(config, ScenarioConfig) else None


def tiny_kwargs(env_id: str, monkeypatch: Any = None) -> dict[str, Any]:
    """The tiny configuration of a registered id.

    A scenario or schedule id draws its runs from a family, not from its keywords: pass ``monkeypatch``
    and its family is made test-sized in this process (:func:`use_tiny_family`, :data:`TINY_SHARES`);
    without it such an id is refused, so no test makes a full-size one by mistake.
    """
    family = scenario_family(env_id)
    if family is not None:
        if monkeypatch is None:
            raise ValueError(f"{env_id} is made test-sized through its family {family!r}: pass monkeypatch")
        use_tiny_family(monkeypatch, family, TINY_SHARES)
        return dict(device="cpu")
    if env_id in envs.SSDKD_IDS or env_id in envs.FAST_IDS:  # a fast id keeps its preset's generator and probe
        kwargs = dict(TINY_SSDKD)
        if "Fashion" in env_id:
            kwargs.update(gen_width=8, latent_dim=16)
        return kwargs
    return dict(iterations=3, device="cpu", **TINY_CONDENSE[condense_method(env_id)])


def use_small_fashion_mnist(tmp_path, monkeypatch) -> None:
    """Point the Fashion-MNIST loader at 200 + 50 random images in the IDX format (never the real set)."""
    import distill_core.data.registry as registry
    from data_files import write_idx_set

    monkeypatch.setenv("DISTILL_GYM_FASHION_MNIST", str(write_idx_set(tmp_path / "fm", n_train=200, n_test=50)))
    monkeypatch.setattr(registry, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian")


def use_tiny_family(monkeypatch, family: str, buffer_shares: tuple[float, ...]) -> None:
    """Point scenario family ``family`` at test-size runs (this process only): :data:`TINY_SSDKD`'s
    settings on the family's own preset (``tiny_digits`` from ``digits``, ``tiny_digits_fast`` from
    ``digits_fast``, which keeps the fast tier's MLP generator and shared probe), ``buffer_shares``, budgets
    of 2 and 3 rounds, teacher 0 for training and teacher 1 held out. Idempotent within a test."""
    from distill_core.ssdkd import config as ssdkd_config
    from distill_core.ssdkd.scenarios import FAMILIES, Family

    base = FAMILIES[family].preset.removeprefix("tiny_")
    name = f"tiny_{base}"
    monkeypatch.setitem(ssdkd_config.PRESETS, name, tiny_preset(base))
    monkeypatch.setitem(FAMILIES, family, Family(name, buffer_shares=buffer_shares, rounds=(2, 3),
                                                 train_teachers=(0,), heldout_teachers=(1,),
                                                 synth_share=FAMILIES[family].synth_share))


def tiny_preset(name: str) -> Any:
    """SSD-KD preset ``name`` with :data:`TINY_SSDKD`'s per-round sizes (a scenario sets the budget and
    buffer itself); every other field, e.g. the fast tier's ``generator``/``shared_probe``, is the preset's."""
    from dataclasses import replace

    from distill_core.ssdkd.config import preset

    config = replace(preset(name), **{k: v for k, v in TINY_SSDKD.items() if k not in ("rounds", "synth_batch", "buffer_capacity")})
    if config.warm_generator_steps:  # the same code path, a few steps long
        config = replace(config, warm_generator_steps=3, gen_width=8, latent_dim=16)
    # the 40 000-sample MNIST-1D and its deep teacher take a minute to make: tests run the same code on the default set
    return replace(config, dataset="mnist1d") if config.dataset == "mnist1d_large" else config


#: Every registered id: single-configuration, scenario, condensation and schedule ids, v0 and v1.
ALL_IDS: list[str] = [*envs.REGISTERED, *envs.SCHEDULE_IDS]
DIGITS_IDS: list[str] = [env_id for env_id in ALL_IDS if "-Digits-" in env_id]
