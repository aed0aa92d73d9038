"""The warm generator (distill_core/ssdkd/warm_generator.py): made once per teacher and settings, the same
from memory, from disk and made anew; every run of a process starts from it; a run stays a function of its
seed; a corrupt cached file is refused by name; the lockstep engine refuses the setting."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from distill_core.common.checkpoint import CheckpointError
from distill_core.ssdkd.config import SSDKDConfig
from distill_core.ssdkd.lockstep import check_lockstep_config
from distill_core.ssdkd.process import SSDKDProcess
from distill_core.ssdkd.warm_generator import WARM_GENERATORS, warm_generator_state
from env_configs import TINY_SSDKD

WARM = SSDKDConfig(**{**TINY_SSDKD, "warm_generator_steps": 12, "gen_width": 8, "latent_dim": 16})


def run(process: SSDKDProcess, seed: int) -> float:
    process.reset(seed)
    while not process.done:
        process.step(process.Knobs())
    return process.final_metrics()["test_accuracy"]


def test_runs_start_from_the_warm_generator_made_once(digits_teacher):
    process = SSDKDProcess(WARM, teacher=digits_teacher)
    state = warm_generator_state(process)
    process.reset(0)
    assert all(torch.equal(process.generator.state_dict()[k], v) for k, v in state.items())
    cold = SSDKDProcess(replace(WARM, warm_generator_steps=0), teacher=digits_teacher)
    cold.reset(0)
    assert not all(torch.equal(cold.generator.state_dict()[k], v) for k, v in state.items())
    assert run(process, 3) == run(SSDKDProcess(WARM, teacher=digits_teacher), 3)  # a function of the seed


def test_the_disk_cache_gives_the_same_generator_and_refuses_a_corrupt_file(digits_teacher, tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILL_GYM_CACHE", str(tmp_path))
    process = SSDKDProcess(WARM, teacher=digits_teacher)
    WARM_GENERATORS.clear()
    made = warm_generator_state(process)
    files = list((tmp_path / "generators").glob("*.pt"))
    assert len(files) == 1
    WARM_GENERATORS.clear()  # a new process: read from disk
    assert all(torch.equal(made[k], v) for k, v in warm_generator_state(process).items())
    WARM_GENERATORS.clear()
    files[0].write_bytes(files[0].read_bytes()[:200])
    with pytest.raises(CheckpointError, match="corrupt"):
        warm_generator_state(process)
    files[0].unlink()
    WARM_GENERATORS.clear()
    again = warm_generator_state(process)  # made anew: the same weights, it depends on no run
    assert all(torch.equal(made[k], v) for k, v in again.items())
    other = SSDKDProcess(replace(WARM, warm_generator_steps=6), teacher=digits_teacher)
    assert not all(torch.equal(made[k], v) for k, v in warm_generator_state(other).items())


def test_the_lockstep_engine_refuses_a_warm_generator():
    with pytest.raises(ValueError, match="warm_generator_steps"):
        check_lockstep_config(replace(WARM, generator="mlp", shared_probe=True))
