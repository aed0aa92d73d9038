"""Scenario sets (DACBench's instance sets): families of SSD-KD runs that differ the way practitioners'
runs differ — the replay buffer from 1 % to 10 % of the training set, the round budget, the teacher
(trained from another seed, or on a long-tailed training set) — with a training set of instances and a
disjoint held-out set.

A :class:`ScenarioProcess` draws one instance at every ``reset(seed)`` (the draw follows from the seed)
and runs it; its observation is the instance's SSD-KD observation plus what a practitioner knows about
the run before it starts (the buffer's share of the training set, the round budget). No instance is
built to make the paper's setting fail: each is a run of the published method at a size someone meets.

    process = ScenarioProcess(ScenarioConfig(family="digits", split="train"))
    process.reset(seed=0)            # one instance of the training set, chosen by the seed
    while not process.done:
        process.step(process.Knobs())
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from distill_core.common.config_checks import check_choice, check_fields
from distill_core.common.seeding import derive_seed
from distill_core.data import DatasetSplits, load_dataset
from distill_core.data.imbalance import long_tailed
from distill_core.process import Stats, StatsBuilder, StepwiseProcess, Update
from distill_core.ssdkd.config import SSDKDConfig, preset
from distill_core.ssdkd.process import SSDKDKnobs, SSDKDProcess

SPLITS = ("train", "heldout")
#: largest round budget of any family (scales the observation's ``scenario/rounds``)
MAX_ROUNDS = 16


@dataclass(frozen=True)
class Scenario:
    """One instance: a preset and what this run changes in it.

    :param name: readable label (``digits-buf5%-r12-t3``).
    :param preset: the SSD-KD preset it starts from.
    :param overrides: the :class:`~distill_core.ssdkd.config.SSDKDConfig` fields it sets.
    :param imbalance: head / tail ratio of the teacher's training set (1 = the balanced data set).
    """

    name: str
    preset: str
    overrides: dict[str, Any] = field(default_factory=dict)
    imbalance: float = 1.0


@dataclass(frozen=True)
class Family:
    """How a family's instances are made: every combination of buffer share, round budget, teacher
    imbalance and teacher seed; the teachers of ``heldout_teachers`` are kept for the held-out set only.

    :param preset: the SSD-KD preset (data set, networks, steps per round).
    :param buffer_shares: replay-buffer capacity as a share of the training set.
    :param rounds: round budgets.
    :param imbalances: head / tail ratios of the teacher's training set (1 = balanced; 10 = the tail
        class kept a tenth of its examples).
    :param train_teachers: teacher seeds of the training instances.
    :param heldout_teachers: teacher seeds of the held-out instances (never trained or searched on).
    :param synth_share: share of the buffer made anew each round (a partial update, as in the paper).
    """

    preset: str
    buffer_shares: tuple[float, ...] = (0.01, 0.02, 0.05, 0.10)
    rounds: tuple[int, ...] = (8, 12, 16)
    imbalances: tuple[float, ...] = (1.0, 10.0)
    train_teachers: tuple[int, ...] = (0, 1, 2)
    heldout_teachers: tuple[int, ...] = (3, 4)
    synth_share: float = 0.5


FAMILIES: dict[str, Family] = {
    "digits": Family("digits"),
    "mnist1d": Family("mnist1d"),
    # the small end of the range only (13–26 samples kept on digits): a memory budget someone on a
    # device meets, and where the measured best knobs differ most from the paper's (see the README)
    "digits_small_buffer": Family("digits", buffer_shares=(0.01, 0.015, 0.02)),
    "mnist1d_small_buffer": Family("mnist1d", buffer_shares=(0.01, 0.015, 0.02)),
    # the same instances on the fast tier's presets (the -v1 ids)
    "digits_small_buffer_fast": Family("digits_fast", buffer_shares=(0.01, 0.015, 0.02)),
    "mnist1d_small_buffer_fast": Family("mnist1d_fast", buffer_shares=(0.01, 0.015, 0.02)),
    # the paper's regime: a buffer of 5–10 % of a 28 800-sample training set (1 440–2 880 samples, 22–45 KD
    # batches), so priority sampling chooses what a batch holds; balanced and long-tailed teachers
    "mnist1d_paper": Family("mnist1d_paper", buffer_shares=(0.05, 0.075, 0.10), imbalances=(1.0, 10.0, 100.0),
                            synth_share=0.125),
    # the validation tier: the paper's regime on Fashion-MNIST with convolutional networks (5 and 10 % of the
    # 54 000 training images: 2 700 and 5 400 samples, 21 and 42 KD batches), an eighth made each round, so
    # a run makes 1.5-2 buffers' worth; balanced and x10 long-tailed teachers
    "fashion_mnist_paper": Family("fashion_mnist_val", buffer_shares=(0.05, 0.10), rounds=(12, 16), imbalances=(1.0, 10.0),
                                  train_teachers=(0,), heldout_teachers=(1,), synth_share=0.125),
}


def instances(family: str, split: str, train_size: int) -> tuple[Scenario, ...]:
    """The instances of ``family``'s ``split``, in a fixed order.

    :param train_size: the data set's training-set size (the buffer shares are of it).
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown scenario family {family!r}: use one of {sorted(FAMILIES)}")
    fam = FAMILIES[family]
    teachers = fam.train_teachers if split == "train" else fam.heldout_teachers
    out = []
    for share, rounds, imbalance, teacher in itertools.product(fam.buffer_shares, fam.rounds, fam.imbalances, teachers):
        capacity = max(8, round(share * train_size))
        synth = max(4, int(fam.synth_share * capacity))  # floor: capacity // 2 at the default share
        tail = "" if imbalance == 1.0 else f"-lt{imbalance:g}"
        out.append(Scenario(f"{family}-buf{100 * share:g}%-r{rounds}{tail}-t{teacher}", fam.preset,
                            dict(buffer_capacity=capacity, synth_batch=synth, rounds=rounds, teacher_seed=teacher),
                            imbalance))
    return tuple(out)


@dataclass(frozen=True)
class ScenarioConfig:
    """A scenario env's configuration.

    :param family: which family of runs (see :data:`FAMILIES`).
    :param split: ``train`` (what policies are trained and searched on) or ``heldout`` (evaluation only).
    :param class_knobs: expose per-class synthesis weights.
    :param priority_knobs: expose per-class replay priority weights.
    :param replace_knob: expose the replace fraction.
    :param lr_knob: expose the student learning-rate multiplier.
    :param device: ``auto``, ``cpu`` or ``cuda``.
    """

    family: str = "digits"
    split: str = "train"
    class_knobs: bool = True
    priority_knobs: bool = True
    replace_knob: bool = True
    lr_knob: bool = True
    device: str = "auto"

    def __post_init__(self) -> None:
        check_fields(self)
        check_choice(self, "split", SPLITS)
        check_choice(self, "family", tuple(FAMILIES))


class ScenarioProcess(StepwiseProcess):
    """SSD-KD over a scenario set: ``reset(seed)`` draws an instance from the split and runs it.

    Each instance's process (its teacher and data) is built once and kept. The knobs are SSD-KD's; the
    observation is the instance's plus ``scenario/buffer_share`` and ``scenario/rounds`` (both in
    [0, 1]); ``final_metrics`` adds the instance's index in its split.

    :param config: the :class:`ScenarioConfig`.
    """

    Knobs = SSDKDKnobs

    def __init__(self, config: ScenarioConfig | None = None) -> None:
        super().__init__(config or ScenarioConfig())
        cfg = self.config
        base = preset(FAMILIES[cfg.family].preset)
        self._data: DatasetSplits = load_dataset(base.dataset)
        self.instances = instances(cfg.family, cfg.split, len(self._data.x_train))
        self._processes: dict[int, SSDKDProcess] = {}
        self.index = 0
        self.inner = self._process(0)
        self.num_classes = self.inner.num_classes

    def instance_config(self, index: int) -> SSDKDConfig:
        """The SSD-KD configuration of instance ``index``."""
        scenario = self.instances[index]
        cfg = self.config
        return replace(preset(scenario.preset), **scenario.overrides, class_knobs=cfg.class_knobs,
                       priority_knobs=cfg.priority_knobs, replace_knob=cfg.replace_knob, lr_knob=cfg.lr_knob,
                       device=cfg.device)

    def _process(self, index: int) -> SSDKDProcess:
        if index not in self._processes:
            config = self.instance_config(index)
            # the data split follows the teacher seed, as in a plain run; a long tail thins only the
            # training split the teacher learns from (validation and test stay balanced)
            data = self._data if config.teacher_seed == 0 else load_dataset(config.dataset, seed=config.teacher_seed)
            data = long_tailed(data, self.instances[index].imbalance, seed=config.teacher_seed)
            self._processes[index] = SSDKDProcess(config, data=data)
        return self._processes[index]

    @property
    def budget(self) -> int:
        return self.inner.budget

    def exposed_knobs(self) -> tuple[str, ...]:
        return self.inner.exposed_knobs()

    def _start(self, seed: int) -> None:
        self.index = self.instance_index(seed)
        self.inner = self._process(self.index)
        self.inner.reset(seed)

    def _update(self, knobs: SSDKDKnobs) -> Update:
        stats = self.inner.step(knobs)
        return Update(diverged=stats.diverged, extras=dict(stats.extras))

    def score(self) -> float:
        return self.inner.current_score

    def _observe(self, builder: StatsBuilder) -> None:
        self.inner._observe(builder)
        self.observe_instance(builder, self.inner.config)

    def observe_instance(self, builder: StatsBuilder, config: SSDKDConfig) -> None:
        """What a practitioner knows of the run before it starts: its buffer's share of the training set
        and its round budget (both in ``[0, 1]``)."""
        builder.add("scenario/buffer_share", config.buffer_capacity / len(self._data.x_train))
        builder.add("scenario/rounds", config.rounds / MAX_ROUNDS)

    def instance_index(self, seed: int) -> int:
        """The instance a run of ``seed`` draws."""
        return int(np.random.default_rng(derive_seed(seed, "scenario")).integers(len(self.instances)))

    def instance_process(self, index: int) -> SSDKDProcess:
        """The (kept) SSD-KD process of instance ``index``: its configuration, teacher and data."""
        return self._process(index)

    def stats(self, extras: dict[str, Any] | None = None, *, scored: bool = True) -> Stats:
        """The inner run's statistics with its phase timings (synthesis, kd) beside the lifecycle's."""
        stats = super().stats(extras, scored=scored)
        return replace(stats, timings={**self.inner.timings, **stats.timings})

    def final_metrics(self) -> dict[str, float]:
        return {**self.inner.final_metrics(), "scenario_index": float(self.index),
                "buffer_capacity": float(self.inner.config.buffer_capacity), "rounds": float(self.inner.config.rounds)}

    def render_samples(self) -> np.ndarray:
        return self.inner.render_samples()

    def clone(self) -> ScenarioProcess:
        twin = ScenarioProcess(self.config)
        twin._processes = {i: p.clone() for i, p in self._processes.items()}  # share teachers and data
        return twin

    @property
    def scenario(self) -> Scenario:
        """The instance of the current run."""
        return self.instances[self.index]


__all__ = ["FAMILIES", "Family", "MAX_ROUNDS", "Scenario", "ScenarioConfig", "ScenarioProcess", "instances"]
