"""Named SSD-KD configurations: the sizes the envs register and the benchmarks run."""

from __future__ import annotations

from distill_core.ssdkd.process import SSDKDConfig

PRESETS: dict[str, SSDKDConfig] = {
    # a whole run in a few seconds on 2 cores: what RL trains on and the tests use
    "digits": SSDKDConfig(dataset="digits", g_steps=20),
    "mnist1d": SSDKDConfig(dataset="mnist1d", rounds=16, synth_batch=64, buffer_capacity=400),
    # 10 % of the Fashion-MNIST training set: 6 000 synthetic samples in the buffer
    "fashion_mnist": SSDKDConfig(
        dataset="fashion_mnist", rounds=30, synth_batch=200, buffer_capacity=6000, g_steps=10, kd_steps=100,
        kd_batch=256, probe_size=500, probe_steps=50, kd_max_shift=2, kd_hflip=True, gen_width=64, latent_dim=128,
    ),
    # 1 %: 600 samples
    "fashion_mnist_1pct": SSDKDConfig(
        dataset="fashion_mnist", rounds=30, synth_batch=20, buffer_capacity=600, g_steps=10, kd_steps=100,
        kd_batch=256, probe_size=500, probe_steps=50, kd_max_shift=2, kd_hflip=True, gen_width=64, latent_dim=128,
    ),
}


def preset(name: str) -> SSDKDConfig:
    """The preset called ``name`` (ValueError listing the names otherwise)."""
    if name not in PRESETS:
        raise ValueError(f"unknown SSD-KD preset {name!r}: use one of {sorted(PRESETS)}")
    return PRESETS[name]
