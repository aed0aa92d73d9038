"""The lockstep engine: a run's numbers do not depend on its batch-mates (slot i of N is bit for bit the
run alone), restarts reproduce, the serial SSDKDProcess and the engine agree within float tolerance, the
stacked networks and optimisers follow their PyTorch counterparts, and unsupported settings are named."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from distill_core.models import build_model
from distill_core.models.stacked import StackedAdam, StackedNet, StackedSGD
from distill_core.ssdkd.config import preset
from distill_core.ssdkd.lockstep import LockstepSSDKD
from distill_core.ssdkd.process import SSDKDKnobs, SSDKDProcess

TINY = dict(rounds=3, synth_batch=8, buffer_capacity=16, g_steps=2, kd_steps=3, kd_batch=16, probe_size=40, probe_steps=2,
            device="cpu")
KNOBS = SSDKDKnobs(alpha=0.3, beta=0.7, gamma=2.0, diversity=0.5)


@pytest.fixture(scope="module")
def processes(digits, digits_teacher):
    """Three digits runs of different shapes (round budget, new samples a round, buffer size) on one teacher."""
    base = replace(preset("digits_fast"), **TINY)
    configs = [base, replace(base, rounds=2, synth_batch=5, buffer_capacity=10), replace(base, synth_batch=3, buffer_capacity=24)]
    return [SSDKDProcess(c, teacher=digits_teacher, data=digits) for c in configs]


def _run(engine: LockstepSSDKD, starts: list[tuple[int, SSDKDProcess, int]]) -> dict[int, list[float]]:
    """Start runs in slots, step them all to their end; every slot's score after each round."""
    for slot, process, seed in starts:
        engine.start(slot, process, seed)
    scores = {slot: [engine.runs[slot].score] for slot, _, _ in starts}
    while not all(engine.runs[slot].done for slot in scores):
        engine.step([KNOBS if slot in scores and not engine.runs[slot].done else None for slot in range(engine.num_runs)])
        for slot in scores:
            if len(scores[slot]) <= engine.runs[slot].rounds_done:
                scores[slot].append(engine.runs[slot].score)
    return scores


def test_a_run_is_the_same_whichever_runs_share_its_batch(processes):
    pad = max(p.config.synth_batch for p in processes)
    together = _run(LockstepSSDKD(4, pad_to=pad), [(i + 1, p, 10 + i) for i, p in enumerate(processes)])
    for i, process in enumerate(processes):
        alone = _run(LockstepSSDKD(1, pad_to=pad), [(0, process, 10 + i)])
        assert together[i + 1] == alone[0], f"slot {i + 1} differs from its run alone"


def test_a_restarted_slot_repeats_its_run(processes):
    pad = max(p.config.synth_batch for p in processes)
    engine = LockstepSSDKD(2, pad_to=pad)
    first = _run(engine, [(0, processes[0], 3), (1, processes[1], 4)])
    accuracy = engine.final_metrics(0)["test_accuracy"]
    _run(engine, [(1, processes[2], 5)])  # another run in the other slot meanwhile
    again = _run(engine, [(0, processes[0], 3)])
    assert again[0] == first[0] and engine.final_metrics(0)["test_accuracy"] == accuracy


def test_the_serial_process_and_the_engine_agree_within_float_tolerance(processes):
    """The engine's sums run in another order (batched products, padded rows), so the two drift apart at
    float precision; over three rounds of a tiny run they stay within 1e-4 of each other's score."""
    process = processes[0]
    lockstep = _run(LockstepSSDKD(1), [(0, process, 7)])[0]
    process.reset(7)
    serial = [process.current_score]
    while not process.done:
        process.step(KNOBS)
        serial.append(process.current_score)
    np.testing.assert_allclose(lockstep, serial, atol=1e-4)


def test_the_stacked_net_computes_what_the_network_computes(digits):
    torch.manual_seed(0)
    models = [build_model("mlp_bn_half", input_shape=digits.input_shape, num_classes=10) for _ in range(2)]
    for m in models:  # non-trivial running statistics
        m.train()
        m(torch.randn(32, *digits.input_shape))
    stacked = StackedNet(models[0], 2, trainable=True)
    for slot, m in enumerate(models):
        stacked.load_slot(slot, m)
    x = torch.randn(2, 16, 64)
    with torch.no_grad():
        for m in models:
            m.eval()
        mine = stacked.forward(x, batch_stats=False)
        for slot, m in enumerate(models):
            torch.testing.assert_close(mine[slot], m(x[slot].view(16, *digits.input_shape)), rtol=1e-5, atol=1e-5)
        for m in models:
            m.train()
        mine = stacked.forward(x, batch_stats=True, update_running=torch.tensor([True, False]))
        for slot, m in enumerate(models):
            torch.testing.assert_close(mine[slot], m(x[slot].view(16, *digits.input_shape)), rtol=1e-4, atol=1e-4)
    copy = build_model("mlp_bn_half", input_shape=digits.input_shape, num_classes=10)
    exported = stacked.export_slot(0, copy)
    for (name, mine), theirs in zip(exported.state_dict().items(), models[0].state_dict().values()):
        if "num_batches" not in name:
            torch.testing.assert_close(mine, theirs, rtol=1e-6, atol=1e-6, msg=name)


def test_stacked_optimisers_follow_pytorch_per_run():
    torch.manual_seed(1)
    start = torch.randn(2, 5, 3)
    grads = [torch.randn(2, 5, 3) for _ in range(4)]
    for make_mine, make_theirs, step in (
        (lambda p: StackedAdam([p], 0.01, betas=(0.5, 0.999)), lambda p: torch.optim.Adam([p], 0.01, betas=(0.5, 0.999)),
         lambda opt: opt.step(torch.tensor([True, True]))),
        (lambda p: StackedSGD([p], momentum=0.9, weight_decay=1e-4), lambda p: torch.optim.SGD([p], 0.05, 0.9, weight_decay=1e-4, nesterov=True),
         lambda opt: opt.step(torch.tensor([0.05, 0.05], dtype=torch.float64))),
    ):
        mine = start.clone().requires_grad_()
        opt = make_mine(mine)
        for g in grads:
            mine.grad = g.clone()
            step(opt)
        for slot in range(2):
            theirs = start[slot].clone().requires_grad_()
            ref = make_theirs(theirs)
            for g in grads:
                theirs.grad = g[slot].clone()
                ref.step()
            torch.testing.assert_close(mine[slot].detach(), theirs.detach(), rtol=1e-6, atol=1e-6)


def test_an_idle_run_keeps_its_weights_and_optimiser_state():
    torch.manual_seed(2)
    weights = torch.randn(2, 4, requires_grad=True)
    before = weights.detach().clone()
    adam = StackedAdam([weights], 0.1)
    weights.grad = torch.ones(2, 4)
    adam.step(torch.tensor([True, False]))
    assert torch.equal(weights[1].detach(), before[1]) and not torch.equal(weights[0].detach(), before[0])
    assert adam.steps.tolist() == [1.0, 0.0] and torch.count_nonzero(adam.exp_avg[0][1]) == 0


@pytest.mark.parametrize("field,value", [("generator", "conv"), ("shared_probe", False), ("kd_mix", "mixup"),
                                         ("meta_generator", True), ("synthesis", "pixels")])
def test_settings_the_engine_does_not_implement_are_named(processes, field, value, digits, digits_teacher):
    process = SSDKDProcess(replace(processes[0].config, **{field: value}), teacher=digits_teacher, data=digits)
    with pytest.raises(ValueError, match=field):
        LockstepSSDKD(1).start(0, process, 0)


def test_runs_that_differ_in_a_shared_setting_are_refused(processes, digits, digits_teacher):
    engine = LockstepSSDKD(2)
    engine.start(0, processes[0], 0)
    other = SSDKDProcess(replace(processes[0].config, g_steps=3), teacher=digits_teacher, data=digits)
    with pytest.raises(ValueError, match="g_steps"):
        engine.start(1, other, 1)


def test_bad_calls_are_named(processes):
    engine = LockstepSSDKD(2)
    with pytest.raises(RuntimeError, match="no run was started"):
        engine.step([KNOBS, None])
    engine.start(0, processes[1], 0)
    with pytest.raises(ValueError, match="one knob setting"):
        engine.step([KNOBS])
    with pytest.raises(ValueError, match="alpha"):
        engine.step([replace(KNOBS, alpha=float("nan")), None])
    with pytest.raises(IndexError):
        engine.start(5, processes[0], 0)
