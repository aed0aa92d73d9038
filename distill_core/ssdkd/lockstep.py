"""SSD-KD for N runs at once: the rounds of N runs advanced together, their networks stacked.

At the learning presets' sizes (MLP teacher, student and generator; a dozen new samples and a KD batch of
64 a round) a round is hundreds of small operations whose cost is overhead, so one round of N runs costs
little more than one round of one (``docs/benchmarks.md``). Each run keeps everything its own: weights,
BatchNorm statistics and priors, optimiser state (:class:`~distill_core.models.stacked.StackedAdam` and
``StackedSGD`` hold a step count and a learning rate per run), replay buffer, probe and random streams,
drawn in the same order as :class:`~distill_core.ssdkd.process.SSDKDProcess` draws them. A run in slot
``i`` started with seed ``s`` is therefore the serial run of seed ``s``, up to the order of floating-point
sums (``tests/test_lockstep.py`` measures how close). Runs may differ in round budget, buffer capacity,
new samples per round and teacher (scenario instances); samples of runs that make fewer are padded and
masked. Runs end and start independently (:meth:`LockstepSSDKD.start` on one slot).

The serial process stays the reference and the plain-algorithm API; this one supports the options the
learning presets use (generator synthesis, the BatchNorm prior, the one-hot, adversarial and modulation
terms, priority sampling) and refuses the others by name.

    engine = LockstepSSDKD(num_runs=8)
    for slot, seed in enumerate(range(8)):
        engine.start(slot, SSDKDProcess(config), seed)       # a process gives configuration, teacher, data
    while not engine.all_done:
        engine.step([SSDKDKnobs()] * 8)
    engine.final_metrics(0)
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from distill_core.common.seeding import derive_seed, seeded, torch_generator
from distill_core.inversion import Generator, adversarial_term
from distill_core.kd import evaluate
from distill_core.models import build_model
from distill_core.models.stacked import StackedAdam, StackedNet, StackedSGD
from distill_core.process import StatsBuilder, check_knobs
from distill_core.ssdkd.config import SSDKDConfig
from distill_core.ssdkd.modulation import diversity_weights, smoothed_histogram, target_distribution
from distill_core.ssdkd.process import RunTotals, SSDKDKnobs, SSDKDProcess, observe_run, probe_is_finite, probe_statistics
from distill_core.ssdkd.replay_buffer import ReplayBuffer

#: fields a run may set for itself; every other field must be the same in all runs of one engine
PER_RUN_FIELDS = ("rounds", "synth_batch", "buffer_capacity", "teacher_seed", "evict", "class_knobs", "priority_knobs",
                  "replace_knob", "lr_knob", "use_diversity", "use_difficulty", "use_priority")
#: settings lockstep runs do not implement, and the value they must have
UNSUPPORTED = {"synthesis": "generator", "meta_generator": False, "warm_generator_steps": 0, "lambda_cr": 0.0, "lambda_act": 0.0, "lambda_ie": 0.0,
               "bn_momentum": 0.0, "lambda_tv": 0.0, "inv_max_shift": 0, "inv_hflip": False, "kd_max_shift": 0,
               "kd_hflip": False, "kd_mix": "none", "score": "probe_kl", "shared_probe": True}


def check_lockstep_config(config: SSDKDConfig) -> None:
    """Refuse a configuration lockstep runs do not implement, naming the setting and what to do."""
    for name, wanted in UNSUPPORTED.items():
        if getattr(config, name) != wanted:
            raise ValueError(f"lockstep SSD-KD runs need {name}={wanted!r} (got {getattr(config, name)!r}); "
                             "run this configuration with the serial SSDKDProcess (gymnasium.make) instead")


@dataclass
class Run:
    """One slot's run: its configuration, teacher, data, random streams, buffer and progress."""

    process: SSDKDProcess
    seed: int
    torch_gen: torch.Generator
    np_rng: np.random.Generator
    buffer: ReplayBuffer
    rounds_done: int = 0
    kd_steps_done: int = 0
    generator_resets: int = 0
    diverged: bool = False
    score: float = float("nan")
    probe: dict[str, Any] = field(default_factory=dict)
    totals: RunTotals = field(default_factory=RunTotals)

    @property
    def config(self) -> SSDKDConfig:
        return self.process.config

    @property
    def done(self) -> bool:
        return self.diverged or self.rounds_done >= self.config.rounds


class LockstepSSDKD:
    """N SSD-KD runs advanced one round at a time, together (see the module docstring).

    :param num_runs: N, the slots.
    :param device: ``cpu`` or ``cuda`` (the processes' own device must match).
    :param pad_to: pad every round's new samples to at least this many rows. Runs that make fewer
        samples than others are padded anyway; a width that does not depend on the batch-mates (the
        largest ``synth_batch`` a source can draw) makes a run's every number independent of which
        other runs share its batch: slot ``i`` of N is then bit for bit the run alone (N = 1).
    """

    def __init__(self, num_runs: int, device: str | torch.device = "cpu", *, pad_to: int = 0) -> None:
        if isinstance(num_runs, bool) or not isinstance(num_runs, int) or num_runs < 1:
            raise ValueError(f"num_runs must be a positive int, got {num_runs!r}")
        self.num_runs = num_runs
        self.device = torch.device(device)
        self.pad_to = int(pad_to)
        self.runs: list[Run | None] = [None] * num_runs
        self._shared: SSDKDConfig | None = None
        self._teacher_of: list[int | None] = [None] * num_runs
        self.timings = {"synthesis_seconds": 0.0, "kd_seconds": 0.0, "probe_seconds": 0.0}

    # ------------------------------------------------------------------ building
    def _build(self, process: SSDKDProcess) -> None:
        """Allocate the stacked networks and optimisers for runs shaped like ``process``'s."""
        cfg, data, n = process.config, process.data, self.num_runs
        self._shared = cfg
        self._input_shape = tuple(data.input_shape)
        self._num_classes = process.num_classes
        self._student_arch = process.student_arch
        self._teacher_arch = process.teacher.spec.arch
        with seeded(0):  # shapes only: their weights are never used, and the caller's random state stays as it was
            self._template_student = build_model(process.student_arch, input_shape=data.input_shape, num_classes=process.num_classes)
            self._template_generator = Generator(data.input_shape, data.mean, data.std, cfg.latent_dim, cfg.gen_width, cfg.generator)
        self.teacher = StackedNet(process.teacher.model, n, self.device, trainable=False)
        self.student = StackedNet(self._template_student, n, self.device, trainable=True)
        self.generator = StackedNet(self._template_generator, n, self.device, trainable=True)
        self._picture = self._template_generator.is_picture and cfg.generator == "mlp"
        self._mean = self._template_generator.mean.to(self.device)
        self._std = self._template_generator.std.to(self.device)
        self._g_opt = StackedAdam(self.generator.params, cfg.g_lr, betas=(0.5, 0.999))
        self._kd_opt = StackedSGD(self.student.params, momentum=0.9, weight_decay=cfg.kd_weight_decay, nesterov=True)
        dim = int(np.prod(data.input_shape))
        self._probe_x = torch.zeros(n, cfg.probe_size, dim, device=self.device)
        self._probe_logits = torch.zeros(n, cfg.probe_size, process.num_classes, device=self.device)

    def _check_compatible(self, process: SSDKDProcess) -> None:
        cfg, shared = process.config, self._shared
        assert shared is not None
        for f in dataclasses.fields(SSDKDConfig):
            if f.name not in PER_RUN_FIELDS and f.name != "dataset" and getattr(cfg, f.name) != getattr(shared, f.name):
                raise ValueError(f"lockstep runs must share {f.name} (this run has {getattr(cfg, f.name)!r}, the "
                                 f"engine's {getattr(shared, f.name)!r}): group runs by it, one engine per group")
        same = (tuple(process.data.input_shape) == self._input_shape and process.num_classes == self._num_classes
                and process.student_arch == self._student_arch and process.teacher.spec.arch == self._teacher_arch)
        if not same:
            raise ValueError("lockstep runs must share the input shape, the classes and the teacher and student "
                             f"architectures ({self._input_shape}, {self._num_classes}, {self._teacher_arch} → "
                             f"{self._student_arch}); this run has {tuple(process.data.input_shape)}, "
                             f"{process.num_classes}, {process.teacher.spec.arch} → {process.student_arch}")

    # ------------------------------------------------------------------ runs
    def start(self, slot: int, process: SSDKDProcess, seed: int) -> None:
        """Start run ``seed`` of ``process``'s configuration, teacher and data in ``slot`` (whatever ran
        there ends). Its random choices are those of ``process.reset(seed)``."""
        if not 0 <= slot < self.num_runs:
            raise IndexError(f"slot {slot} outside 0..{self.num_runs - 1}")
        check_lockstep_config(process.config)
        if process.device != self.device:
            raise ValueError(f"the process runs on {process.device}, the lockstep engine on {self.device}")
        if self._shared is None:
            self._build(process)
        else:
            self._check_compatible(process)
        cfg, seed = process.config, int(seed)
        if self._teacher_of[slot] != id(process.teacher.model):
            self.teacher.load_slot(slot, process.teacher.model)
            self._teacher_of[slot] = id(process.teacher.model)
        with seeded(derive_seed(seed, "student-init")):
            student = build_model(self._student_arch, input_shape=self._input_shape, num_classes=self._num_classes)
        self.student.load_slot(slot, student)
        self._kd_opt.reset_slot(slot)
        run = Run(process, seed, torch_generator(derive_seed(seed, "torch"), self.device),
                  np.random.default_rng(derive_seed(seed, "numpy")),
                  ReplayBuffer(cfg.buffer_capacity, process.data.input_shape, self._num_classes, device=self.device, evict=cfg.evict))
        self.runs[slot] = run
        self._new_generator(slot)
        probe_x, probe_logits = process.shared_probe()
        self._probe_x[slot].copy_(probe_x.reshape(len(probe_x), -1))
        self._probe_logits[slot].copy_(probe_logits)
        run.probe = self._probe_stats([slot])[slot]
        run.score = -run.probe["kl"]

    def _new_generator(self, slot: int) -> None:
        run = self.runs[slot]
        data, cfg = run.process.data, run.config
        with seeded(derive_seed(run.seed, "generator", run.generator_resets)):
            generator = Generator(data.input_shape, data.mean, data.std, cfg.latent_dim, cfg.gen_width, cfg.generator)
        run.generator_resets += 1
        self.generator.load_slot(slot, generator)
        self._g_opt.reset_slot(slot)

    def run(self, slot: int) -> Run:
        """The run in ``slot`` (``RuntimeError`` if none was started)."""
        run = self.runs[slot]
        if run is None:
            raise RuntimeError(f"no run was started in slot {slot}: call start(slot, process, seed)")
        return run

    @property
    def all_done(self) -> bool:
        """Every started run has spent its budget or diverged."""
        return all(run is None or run.done for run in self.runs)

    # ------------------------------------------------------------------ one round
    def step(self, knobs: list[SSDKDKnobs | None]) -> list[dict[str, Any] | None]:
        """One round of every run whose ``knobs`` entry is not ``None`` (and that is not done).

        :return: per slot, the round's facts (``skipped``, ``diverged``, ``gain``, losses), or ``None``.
        """
        if len(knobs) != self.num_runs:
            raise ValueError(f"step needs one knob setting (or None) per slot: {self.num_runs}, got {len(knobs)}")
        active = []
        for slot, k in enumerate(knobs):
            if k is None:
                continue
            run = self.run(slot)
            if run.done:
                raise RuntimeError(f"the run in slot {slot} is over: start another before stepping it")
            check_knobs(k, SSDKDKnobs, run.process.all_knob_specs)
            active.append(slot)
        if not active:
            return [None] * self.num_runs
        with torch.enable_grad():
            tick = time.perf_counter()
            synth = self._synthesize(active, knobs)
            self.timings["synthesis_seconds"] += time.perf_counter() - tick
            tick = time.perf_counter()
            kd = self._distill(active, knobs)
            self.timings["kd_seconds"] += time.perf_counter() - tick
        tick = time.perf_counter()
        scored = [s for s in active if not self.runs[s].diverged]
        probes = self._probe_stats(scored)
        self.timings["probe_seconds"] += time.perf_counter() - tick
        out: list[dict[str, Any] | None] = [None] * self.num_runs
        for slot in active:
            run = self.runs[slot]
            run.rounds_done += 1
            previous = run.score
            where = "kd_loss" if run.diverged else ""
            if slot in probes and probe_is_finite(probes[slot]):
                run.probe = probes[slot]
                run.score = -run.probe["kl"]
            elif slot in probes:  # as the serial process: the last finite probe is kept
                run.diverged, where = True, "probe"
            record = {"round": run.rounds_done, "samples_made": run.totals.samples_made, **synth[slot], **kd[slot]}
            run.totals.history.append(record)
            out[slot] = {**record, "skipped": synth[slot]["skipped"], "diverged": run.diverged, "diverged_in": where,
                         "gain": run.score - previous, "score": run.score, "probe_agreement": run.probe["agreement"],
                         "probe_kl": run.probe["kl"]}
        return out

    def _synthesize(self, active: list[int], knobs: list[SSDKDKnobs | None]) -> dict[int, dict[str, Any]]:
        cfg = self._shared
        n, c, dim = self.num_runs, self._num_classes, self._template_generator.latent_dim
        counts = {s: max(1, round(knobs[s].replace_fraction * self.runs[s].config.synth_batch)) for s in active}
        width = max(self.pad_to, *counts.values())
        latent = torch.zeros(n, width, dim, device=self.device)
        targets = torch.zeros(n, width, dtype=torch.long, device=self.device)
        mask = torch.ones(n, width, device=self.device)  # idle slots compute on zeros, weighted 0
        weight = torch.zeros(n, device=self.device)
        gamma = torch.zeros(n, 1, device=self.device)
        class_weight = torch.ones(n, c, device=self.device)
        adversarial = torch.zeros(n, 1, device=self.device)
        for s in active:
            run, k, m = self.runs[s], knobs[s], counts[s]
            share = smoothed_histogram(run.buffer.class_counts())
            strength = k.diversity if run.config.use_diversity else 0.0
            weights = None if k.class_weights is None else np.asarray(k.class_weights)
            probs = torch.as_tensor(target_distribution(share, strength, weights), dtype=torch.float32, device=self.device)
            targets[s, :m] = torch.multinomial(probs, m, replacement=True, generator=run.torch_gen)
            latent[s, :m] = torch.randn(m, dim, generator=run.torch_gen, device=self.device)
            mask[s, m:] = 0.0
            weight[s] = 1.0
            if run.config.use_difficulty and k.gamma > 0:
                gamma[s] = k.gamma
            if run.config.use_diversity and k.diversity > 0:
                class_weight[s] = torch.as_tensor(diversity_weights(share, k.diversity), dtype=torch.float32)
            adversarial[s] = float(cfg.lambda_adv > 0 and run.rounds_done >= cfg.adv_warmup)
        active_mask = weight > 0
        latent.requires_grad_()
        z_opt = torch.optim.Adam([latent], lr=cfg.z_lr, betas=(0.5, 0.999))
        finite = torch.ones(n, dtype=torch.bool, device=self.device)
        losses = torch.full((n,), float("nan"), device=self.device)
        real = mask.sum(1).clamp_min(1.0)
        for _ in range(cfg.g_steps):
            x = self._render(latent, mask)
            bn_inputs: list = []
            t_logits = self.teacher.forward(x, batch_stats=False, mask=mask, bn_inputs=bn_inputs)
            prior = torch.zeros(n, device=self.device)
            for i, (mean, var, running_mean, running_var) in enumerate(bn_inputs):
                term = torch.linalg.vector_norm(mean - running_mean, dim=-1) + torch.linalg.vector_norm(var - running_var, dim=-1)
                prior = prior + (cfg.bn_first_weight if i == 0 else 1.0) * term
            per_sample = cfg.lambda_oh * F.cross_entropy(t_logits.reshape(-1, c), targets.reshape(-1), reduction="none").view(n, width)
            if cfg.lambda_adv > 0 and bool(adversarial.any()):
                s_logits = self.student.forward(x, batch_stats=False)
                per_sample = per_sample + cfg.lambda_adv * adversarial * _adversarial(s_logits, t_logits, cfg.adv_loss)
            with torch.no_grad():  # φ = φ_diff · φ_div, detached, mean 1 over each run's real samples
                p_target = F.softmax(t_logits, -1).gather(-1, targets[..., None]).squeeze(-1)
                phi = (1.0 - p_target).clamp_min(1e-6) ** gamma
                phi = phi * class_weight.gather(1, t_logits.argmax(-1))
                phi = phi / ((phi * mask).sum(1, keepdim=True) / real[:, None]).clamp_min(1e-12)
            loss = cfg.lambda_bn * prior + (per_sample * phi * mask).sum(1) / real
            with torch.no_grad():
                finite &= torch.isfinite(loss)
                losses = loss.detach()
            z_opt.zero_grad(set_to_none=True)
            self._g_opt.zero_grad()
            (loss * weight).nan_to_num(0.0).sum().backward()
            z_opt.step()
            self._g_opt.step(active_mask & finite)
        with torch.no_grad():
            x = self._render(latent.detach(), mask)
            t_logits = self.teacher.forward(x, batch_stats=False)
            finite &= torch.isfinite(x).flatten(1).all(1)
        out: dict[int, dict[str, Any]] = {}
        finite_cpu, losses_cpu = finite.cpu().tolist(), losses.cpu().tolist()
        for s in active:
            run, m = self.runs[s], counts[s]
            if not finite_cpu[s]:
                self._new_generator(s)  # a NaN poisons Adam's moments and the weights: start the generator afresh
                run.totals.skipped_rounds += 1
                out[s] = {"skipped": True, "inversion_loss": float("nan")}
                continue
            run.buffer.add(x[s, :m].reshape(m, *self._input_shape), t_logits[s, :m])
            run.totals.samples_made += m
            out[s] = {"skipped": False, "inversion_loss": losses_cpu[s]}
        return out

    def _render(self, latent: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The generators' samples ``(N, B, D)`` (flattened), as :class:`Generator` renders them."""
        h = self.generator.forward(latent, batch_stats=True, mask=mask)
        if not self._picture:
            return h
        n, b = h.shape[:2]
        pictures = (torch.sigmoid(h.view(n, b, *self._input_shape)) - self._mean) / self._std
        return pictures.reshape(n, b, -1)

    def _distill(self, active: list[int], knobs: list[SSDKDKnobs | None]) -> dict[int, dict[str, Any]]:
        cfg = self._shared
        n, dim, b = self.num_runs, int(np.prod(self._input_shape)), cfg.kd_batch
        learning = [s for s in active if len(self.runs[s].buffer) > 0]
        out: dict[int, dict[str, Any]] = {s: {"kd_loss": float("nan")} for s in active}
        if not learning:
            return out
        on = torch.zeros(n, dtype=torch.bool)
        on[learning] = True
        totals = dict.fromkeys(learning, 0.0)
        x = torch.zeros(n, b, dim, device=self.device)
        t_logits = torch.zeros(n, b, self._num_classes, device=self.device)
        w = torch.zeros(n, b, device=self.device)
        for _ in range(cfg.kd_steps):
            indices = {}
            for s in learning:
                run, k = self.runs[s], knobs[s]
                use = run.config.use_priority
                priority = None if k.class_priority is None else np.asarray(k.class_priority)
                batch = run.buffer.sample(b, alpha=k.alpha if use else 0.0, beta=k.beta if use else 0.0, rng=run.np_rng,
                                          class_weights=priority)
                x[s] = batch.x.reshape(b, dim)
                t_logits[s] = batch.teacher_logits
                w[s] = batch.weights
                indices[s] = batch.indices
            on_device = on.to(self.device)
            s_logits = self.student.forward(x, batch_stats=True, update_running=on_device)
            log_p_s = F.log_softmax(s_logits / cfg.temperature, -1)
            log_p_t = F.log_softmax(t_logits / cfg.temperature, -1)
            per_sample = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1) * cfg.temperature ** 2
            loss = (w * per_sample).mean(1)
            finite = torch.isfinite(loss).cpu()
            lr = torch.zeros(n, dtype=torch.float64)
            for s in learning:
                run = self.runs[s]
                if not finite[s]:
                    run.diverged = True  # the run ends; its weights no longer matter
                    continue
                lr[s] = _cosine_lr(run.config, run.kd_steps_done) * knobs[s].lr_scale
            self._kd_opt.zero_grad()
            (loss * on_device).nan_to_num(0.0).sum().backward()
            self._kd_opt.step(lr)
            losses = loss.detach().cpu().tolist()
            scaled = (per_sample.detach() / cfg.temperature ** 2).cpu().numpy()
            for s in list(learning):
                run = self.runs[s]
                if run.diverged:
                    learning.remove(s)
                    on[s] = False
                    totals.pop(s)
                    continue
                run.kd_steps_done += 1
                if run.config.use_priority:
                    run.buffer.update_priorities(indices[s], scaled[s])
                totals[s] += losses[s]
            if not learning:
                break
        for s, total in totals.items():
            out[s] = {"kd_loss": total / cfg.kd_steps}
        return out

    # ------------------------------------------------------------------ measuring
    @torch.no_grad()
    def _probe_stats(self, slots: list[int]) -> dict[int, dict[str, Any]]:
        if not slots:
            return {}
        s_logits = self.student.forward(self._probe_x, batch_stats=False)
        return {s: probe_statistics(s_logits[s], self._probe_logits[s], self._num_classes) for s in slots}

    def observe(self, slot: int, builder: StatsBuilder) -> None:
        """Add run ``slot``'s SSD-KD observation (as :class:`SSDKDProcess` observes it) to ``builder``."""
        run = self.run(slot)
        observe_run(builder, run.buffer, run.probe, self._num_classes)

    def student_model(self, slot: int) -> torch.nn.Module:
        """Run ``slot``'s student as an ordinary zoo network (a copy, in eval mode)."""
        with seeded(0):  # overwritten below
            model = build_model(self._student_arch, input_shape=self._input_shape, num_classes=self._num_classes).to(self.device)
        return self.student.export_slot(slot, model).eval()

    def final_metrics(self, slot: int) -> dict[str, float]:
        """Run ``slot``'s student on the real test split (accuracy, agreement, KL) and its validation
        accuracy, as :meth:`SSDKDProcess.final_metrics` reports them: never a reward."""
        run = self.run(slot)
        data, student = run.process.data, self.student_model(slot)
        metrics = evaluate(student, data.x_test.to(self.device), data.y_test, run.process.teacher.model)
        val = evaluate(student, data.x_val.to(self.device), data.y_val)["accuracy"]
        return {f"test_{k}": v for k, v in metrics.items()} | {"val_accuracy": val, "samples_made": run.totals.samples_made}


def _cosine_lr(config: SSDKDConfig, step: int) -> float:
    """The student's learning rate at KD step ``step`` of a run: cosine annealing over the whole run."""
    return config.kd_lr * (1 + np.cos(np.pi * step / (config.rounds * config.kd_steps))) / 2


def _adversarial(student_logits: torch.Tensor, teacher_logits: torch.Tensor, kind: str) -> torch.Tensor:
    """:func:`distill_core.inversion.adversarial_term` over ``(N, B, C)`` logits."""
    n, b, c = teacher_logits.shape
    return adversarial_term(student_logits.reshape(-1, c), teacher_logits.reshape(-1, c), kind).view(n, b)


__all__ = ["LockstepSSDKD", "PER_RUN_FIELDS", "Run", "UNSUPPORTED", "check_lockstep_config"]
