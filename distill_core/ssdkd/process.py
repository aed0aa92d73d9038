"""SSD-KD — Small Scale Data-Free Knowledge Distillation (Liu et al., CVPR 2024) — as a step-wise process.

The paper published no code; this is our reconstruction (``docs/design.md``). One round:

1. **Targets.** Draw ``b`` target classes, favouring classes the replay buffer lacks.
2. **Inversion.** ``g_steps`` Adam steps on the generator and a fresh latent batch, minimising
   ``λ_bn·L_BN + mean_i φ_i·(λ_oh·CE(T(x_i), y_i) + λ_adv·ℓ_adv,i)``.
3. **Modulation.** ``φ_i = φ_div(ĉ_i)·φ_diff(x_i)``, detached (see :mod:`distill_core.ssdkd.modulation`).
4. **Partial buffer update.** New samples enter at max priority; once full, as many are evicted —
   lowest priority first within the most over-represented classes.
5. **Priority sampling + KD.** ``kd_steps`` student updates on batches drawn with ``P(i) ∝ p_i^α``,
   importance weights ``(N·P(i))^−β / max w``; sampled priorities become their fresh KL.

The same harness runs the baselines by configuration (:func:`memory_bank_config`,
:func:`deep_inversion_config`, :func:`real_kd_config`), so every method shares one code path and one
set of measurements. Running the paper's setting is::

    process = SSDKDProcess(SSDKDConfig(dataset="digits"))
    process.reset(seed=0)
    while not process.done:
        stats = process.step(process.Knobs())
"""

from __future__ import annotations

import copy
import math
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from distill_core.augment import augment_batch, mix_batch, random_resized_crop
from distill_core.common.device import resolve_device
from distill_core.common.frames import sample_frame
from distill_core.common.seeding import derive_seed, seeded, torch_generator
from distill_core.data import DatasetSplits, load_dataset
from distill_core.inversion import (BatchNormStatsLoss, ContrastiveTerm, Generator, activation_term, adversarial_term,
                                    information_entropy_term, total_variation)
from distill_core.kd import class_means, evaluate, kd_loss, predict_logits
from distill_core.models import build_model
from distill_core.process import StatsBuilder, StepwiseProcess, Update, knob
from distill_core.ssdkd.modulation import modulation_weights, smoothed_histogram, target_distribution
from distill_core.ssdkd.config import SSDKDConfig
from distill_core.ssdkd.replay_buffer import BufferStats, ReplayBuffer
from distill_core.ssdkd.warm_generator import warm_generator_state
from distill_core.teachers import DEFAULT_STUDENTS, DEFAULT_TEACHERS, Teacher, get_teacher

#: the seed every shared probe is inverted from (the probe then depends on the teacher and settings only)
SHARED_PROBE_SEED = 0
#: shared probes by teacher network (weakly: they go with the teacher), then by probe settings
SHARED_PROBES: weakref.WeakKeyDictionary[torch.nn.Module, dict[tuple, tuple[torch.Tensor, torch.Tensor]]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class SSDKDKnobs:
    """What an agent (or the paper) sets every round. Defaults are the paper-style constants.

    The configuration decides which an agent sees: the first four always, ``class_weights`` with
    ``class_knobs=True``, ``class_priority`` with ``priority_knobs=True``, ``replace_fraction`` with
    ``replace_knob=True``, ``lr_scale`` with ``lr_knob=True``; the others stay at their default.
    """

    alpha: float = knob(0.6, 0.0, 1.0, doc="priority exponent: P(i) ∝ p_i^α (0 = uniform)")
    beta: float = knob(0.4, 0.0, 1.0, doc="importance-sampling correction (1 = full)")
    gamma: float = knob(1.0, 0.0, 4.0, doc="difficulty focus of φ_diff = (1 − p_T(y|x))^γ")
    diversity: float = knob(1.0, 0.0, 2.0, doc="diversity strength of φ_div and of the target draw")
    class_weights: tuple[float, ...] | None = knob(1.0, 0.25, 4.0, "log", "synthesis target weight of each class",
                                                   per_class=True)
    class_priority: tuple[float, ...] | None = knob(1.0, 0.25, 4.0, "log", "replay priority weight of each class",
                                                    per_class=True)
    replace_fraction: float = knob(1.0, 0.1, 1.0, doc="share of the round's batch synthesised and inserted")
    lr_scale: float = knob(1.0, 0.1, 10.0, "log", "multiplier of the student's (cosine-scheduled) learning rate this round")


#: the knobs every SSD-KD env exposes; the configuration may add ``class_weights`` and ``replace_fraction``
BASE_KNOBS = ("alpha", "beta", "gamma", "diversity")


@torch.no_grad()
def probe_statistics(student_logits: torch.Tensor, teacher_logits: torch.Tensor, num_classes: int) -> dict[str, Any]:
    """Student–teacher agreement and KL(T ‖ S) on the probe, overall and per teacher-predicted class
    (a class the probe lacks gets agreement 1 and KL 0: nothing to fix there)."""
    agree = (student_logits.argmax(1) == teacher_logits.argmax(1)).double()
    kl = kd_loss(student_logits, teacher_logits, 1.0, reduction="none").double()
    classes = teacher_logits.argmax(1)
    return {"agreement": float(agree.mean()), "kl": float(kl.mean()),
            "class_agreement": class_means(agree, classes, num_classes, empty=1.0),
            "class_kl": class_means(kl, classes, num_classes)}


def probe_is_finite(probe: dict[str, Any]) -> bool:
    """Whether a probe's statistics are all finite (a NaN student makes them NaN: the run has diverged)."""
    return bool(np.isfinite(probe["kl"]) and np.isfinite(probe["agreement"]) and np.isfinite(probe["class_kl"]).all())


def observe_run(builder: StatsBuilder, buffer: ReplayBuffer | None, probe: dict[str, Any], num_classes: int) -> None:
    """An SSD-KD run's observation: replay-buffer statistics, student–teacher agreement and KL on the
    probe (zeros before a run), overall and per class."""
    names = BufferStats.names(num_classes)
    vector = buffer.stats().as_vector() if buffer is not None else np.zeros(len(names))
    for name, value in zip(names, vector):
        builder.add(f"buffer/{name}", value)
    builder.add("probe/agreement", probe["agreement"])
    builder.add("probe/kl", probe["kl"] / (1.0 + probe["kl"]))  # squashed to [0, 1)
    builder.extend("probe/agreement", probe["class_agreement"])  # per teacher-predicted class
    class_kl = probe["class_kl"]
    builder.extend("probe/kl", class_kl / (1.0 + class_kl))


def no_probe(num_classes: int) -> dict[str, Any]:
    """The probe statistics before any run: all zero."""
    zeros = np.zeros(num_classes)
    return {"agreement": 0.0, "kl": 0.0, "class_agreement": zeros, "class_kl": zeros}


@dataclass
class RunTotals:
    """Cumulative counts of a run (its times are the lifecycle's ``timings``)."""

    samples_made: int = 0
    skipped_rounds: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


class SSDKDProcess(StepwiseProcess):
    """SSD-KD on the run lifecycle of :class:`~distill_core.process.StepwiseProcess` (see the module docstring).

    Teacher and data are loaded once per process and shared by every run; ``reset`` re-initialises
    what the algorithm re-initialises (student, generator, buffer, probe set, optimisers).

    :param config: the run's :class:`SSDKDConfig`.
    :param teacher: an already loaded teacher (else the cached default for the config).
    :param data: an already loaded data set.
    """

    Knobs = SSDKDKnobs
    budget_field = "rounds"

    def __init__(self, config: SSDKDConfig | None = None, *, teacher: Teacher | None = None, data: DatasetSplits | None = None) -> None:
        super().__init__(config or SSDKDConfig())
        config = self.config
        self.device = resolve_device(config.device)
        self.data = data if data is not None else load_dataset(config.dataset, seed=config.teacher_seed)
        config.check_fits(self.data)  # before a teacher is loaded (or trained) and anything allocated
        self.teacher = teacher or get_teacher(
            config.dataset, config.teacher_arch or DEFAULT_TEACHERS[config.dataset][0], seed=config.teacher_seed,
            data=self.data, device=str(self.device),
        )
        self.teacher.model.to(self.device)
        self.student_arch = config.student_arch or DEFAULT_STUDENTS[self.teacher.spec.arch]
        self.num_classes = self.data.num_classes
        self.totals = RunTotals()
        self.buffer: ReplayBuffer | None = None
        self._probe = no_probe(self.num_classes)
        self._teacher_test_logits: torch.Tensor | None = None
        self._warm_state: dict[str, torch.Tensor] | None = None

    @property
    def round(self) -> int:
        """Rounds run so far."""
        return self.steps_taken

    def exposed_knobs(self) -> tuple[str, ...]:
        cfg = self.config
        return (BASE_KNOBS + (("class_weights",) if cfg.class_knobs else ()) + (("class_priority",) if cfg.priority_knobs else ())
                + (("replace_fraction",) if cfg.replace_knob else ()) + (("lr_scale",) if cfg.lr_knob else ()))

    # ------------------------------------------------------------------ run lifecycle
    def _start(self, seed: int) -> None:
        """A fresh run whose every random choice follows from ``seed``."""
        cfg = self.config
        self.totals = RunTotals()
        self._torch_gen = torch_generator(derive_seed(seed, "torch"), self.device)
        self._np_rng = np.random.default_rng(derive_seed(seed, "numpy"))
        with seeded(derive_seed(seed, "student-init")):
            self.student = build_model(self.student_arch, input_shape=self.data.input_shape, num_classes=self.num_classes).to(self.device)
        self._kd_optimizer = torch.optim.SGD(self.student.parameters(), lr=cfg.kd_lr, momentum=0.9, weight_decay=cfg.kd_weight_decay, nesterov=True)
        self._kd_schedule = torch.optim.lr_scheduler.CosineAnnealingLR(self._kd_optimizer, T_max=cfg.rounds * cfg.kd_steps)
        self._generator_resets = -1
        self._new_generator()
        self._bn_blend: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # bn_momentum's moving batch statistics
        self._contrast: ContrastiveTerm | None = None  # CMI's head and bank of negatives, one per run
        if cfg.lambda_cr > 0:
            with seeded(derive_seed(seed, "contrast-head")):
                self._contrast = ContrastiveTerm(self.teacher.model.classifier.in_features, cfg.cr_temperature).to(self.device)
            self._contrast_optimizer = torch.optim.Adam(self._contrast.parameters(), lr=cfg.g_lr, betas=(0.5, 0.999))
        self.buffer = ReplayBuffer(cfg.buffer_capacity, self.data.input_shape, self.num_classes, device=self.device, evict=cfg.evict)
        if cfg.synthesis == "real":
            self._real_order = torch.randperm(len(self.data.x_train), generator=torch_generator(derive_seed(seed, "real-subset")))
        self._make_probe(seed)
        self._probe = self._evaluate_probe()

    def _update(self, knobs: SSDKDKnobs) -> Update:
        """One round under ``knobs``. A non-finite inversion loss skips the round's synthesis (the
        generator is re-initialised and ``extras["skipped"]`` is set); a non-finite KD loss or probe ends
        the run as diverged (``extras["diverged_in"]``: ``kd_loss`` or ``probe``; the last finite probe is
        kept, so the observation stays finite). None raises."""
        cfg = self.config
        n_new = max(1, round(knobs.replace_fraction * cfg.synth_batch))
        with self.timed("synthesis"):
            x_new, t_logits, skipped, synth_info = self._synthesize_round(knobs, n_new)
            if not skipped:
                self.buffer.add(x_new, t_logits)
                self.totals.samples_made += len(x_new)
            else:
                self.totals.skipped_rounds += 1
        with self.timed("kd"):
            kd_info, diverged = self._distill(knobs)
        where = "kd_loss" if diverged else ""
        if not diverged:
            probe = self._evaluate_probe()
            if probe_is_finite(probe):
                self._probe = probe
            else:
                diverged, where = True, "probe"
        record = {"round": self.round + 1, "samples_made": self.totals.samples_made, **synth_info, **kd_info}
        self.totals.history.append(record)
        return Update(diverged=diverged, extras={"skipped": skipped, "probe_agreement": self._probe["agreement"],
                                                 "probe_kl": self._probe["kl"], "diverged_in": where, **record})

    def score(self) -> float:
        """``−KL(T ‖ S)`` on the probe set (default, data-free) or student validation accuracy (research
        mode), for the student as it was after the last round."""
        if self.config.score == "val_accuracy":
            return evaluate(self.student, self.data.x_val.to(self.device), self.data.y_val)["accuracy"]
        return -self._probe["kl"]

    @torch.no_grad()
    def _evaluate_probe(self) -> dict[str, Any]:
        s_logits = predict_logits(self.student, self._probe_x)  # eval mode, restored
        return probe_statistics(s_logits, self._probe_logits, self.num_classes)

    def _observe(self, builder: StatsBuilder) -> None:
        observe_run(builder, self.buffer, self._probe, self.num_classes)

    def final_metrics(self) -> dict[str, float]:
        """The student on the real test split (accuracy, agreement, KL) and its validation accuracy (what
        a search over policies may select on, keeping the test split for the report): never a reward."""
        x_test = self.data.x_test.to(self.device)
        if self._teacher_test_logits is None:  # the teacher is frozen: one pass a process, not one a run
            self._teacher_test_logits = predict_logits(self.teacher.model, x_test)
        metrics = evaluate(self.student, x_test, self.data.y_test, teacher_logits=self._teacher_test_logits)
        val = evaluate(self.student, self.data.x_val.to(self.device), self.data.y_val)["accuracy"]
        return {f"test_{k}": v for k, v in metrics.items()} | {"val_accuracy": val, "samples_made": self.totals.samples_made}

    def clone(self) -> SSDKDProcess:
        """A new process with the same configuration, sharing the (frozen) teacher and the data."""
        return SSDKDProcess(self.config, teacher=self.teacher, data=self.data)

    def render_samples(self, max_samples: int = 64) -> np.ndarray:
        """A grid (H, W, 3) uint8 of buffer samples (the probe before any), sorted by predicted class."""
        if self._seed is None:
            raise RuntimeError("call reset(seed) before rendering")
        x, classes = self.buffer.contents()
        if len(x) == 0:
            x, classes = self._probe_x, self._probe_logits.argmax(1)
        return sample_frame(self.data.denormalize(x.cpu()), classes.cpu(), max_samples)

    # ------------------------------------------------------------------ synthesis
    def _new_generator(self) -> None:
        cfg = self.config
        self._generator_resets += 1
        with seeded(derive_seed(self._seed, "generator", self._generator_resets)):
            self.generator = Generator(self.data.input_shape, self.data.mean, self.data.std, cfg.latent_dim, cfg.gen_width,
                                       cfg.generator).to(self.device)
        if cfg.warm_generator_steps > 0:  # every run starts from the teacher's warm generator
            if self._warm_state is None:  # looked up once a process (its key fingerprints the training data)
                self._warm_state = warm_generator_state(self)
            self.generator.load_state_dict(self._warm_state)
        self._g_optimizer = torch.optim.Adam(self.generator.parameters(), lr=cfg.g_lr, betas=(0.5, 0.999))

    def _meta_update(self, fast: Generator) -> None:
        """Fast-DFKD's first-order (FOMAML) outer step: the fast copy's last gradient, taken at its adapted
        weights, steps the meta-generator; its BatchNorm statistics follow the copy's."""
        self._g_optimizer.zero_grad(set_to_none=True)
        for meta_p, fast_p in zip(self.generator.parameters(), fast.parameters()):
            meta_p.grad = None if fast_p.grad is None else fast_p.grad.detach().clone()
        self._g_optimizer.step()
        for meta_b, fast_b in zip(self.generator.buffers(), fast.buffers()):
            meta_b.copy_(fast_b)

    def _draw_targets(self, n: int, knobs: SSDKDKnobs) -> torch.Tensor:
        cfg = self.config
        share = smoothed_histogram(self.buffer.class_counts())
        strength = knobs.diversity if cfg.use_diversity else 0.0
        weights = None if knobs.class_weights is None else np.asarray(knobs.class_weights)
        probs = torch.as_tensor(target_distribution(share, strength, weights), dtype=torch.float32, device=self.device)
        return torch.multinomial(probs, n, replacement=True, generator=self._torch_gen)

    def _synthesize_round(self, knobs: SSDKDKnobs, n: int) -> tuple[torch.Tensor, torch.Tensor, bool, dict[str, float]]:
        cfg = self.config
        if cfg.synthesis == "real":
            start = self.totals.samples_made
            x = self.data.x_train[self._real_order[start : start + n]].to(self.device)
            return x, predict_logits(self.teacher.model, x), False, {"inversion_loss": 0.0}
        targets = self._draw_targets(n, knobs)
        if cfg.synthesis == "pixels":
            latent = torch.randn(n, *self.data.input_shape, generator=self._torch_gen, device=self.device).requires_grad_()
            render, optimizers = (lambda v: v), [torch.optim.Adam([latent], lr=cfg.pixel_lr, betas=(0.5, 0.99))]
        else:
            latent = torch.randn(n, cfg.latent_dim, generator=self._torch_gen, device=self.device).requires_grad_()
            render, g_optimizer = self.generator, self._g_optimizer
            if cfg.meta_generator:  # Fast-DFKD: the round adapts a fast copy; the meta-generator learns from it
                render = copy.deepcopy(self.generator)
                g_optimizer = torch.optim.Adam(render.parameters(), lr=cfg.g_lr, betas=(0.5, 0.999))
            optimizers = [torch.optim.Adam([latent], lr=cfg.z_lr, betas=(0.5, 0.999)), g_optimizer]
        x, loss, finite = self.optimise_batch(render, latent, optimizers, targets, cfg.g_steps, knobs=knobs)
        if not finite:
            self._new_generator()  # a NaN poisons Adam's moments and the weights: start the generator afresh
            return x, x, True, {"inversion_loss": float("nan")}
        if cfg.meta_generator and cfg.synthesis == "generator":
            self._meta_update(render)
        return x, predict_logits(self.teacher.model, x), False, {"inversion_loss": loss}

    def optimise_batch(self, render: Any, latent: torch.Tensor, optimizers: list[torch.optim.Optimizer],
                        targets: torch.Tensor, steps: int, *, knobs: SSDKDKnobs | None,
                        gen: torch.Generator | None = None) -> tuple[torch.Tensor, float, bool]:
        """Minimise the inversion loss over ``latent`` (and whatever ``optimizers`` hold) for ``targets``.

        With ``knobs`` None (the probe) there is no modulation and no adversarial term, and neither the
        buffer nor the student is read (a shared probe is made before any run).
        :param gen: the random stream of the jitter (default: the run's).
        :return: the rendered samples (detached), the last loss, and whether everything stayed finite.
        """
        cfg = self.config
        teacher = self.teacher.model
        gen = gen if gen is not None else self._torch_gen
        share = smoothed_histogram(self.buffer.class_counts()) if knobs is not None else None
        adversarial = knobs is not None and cfg.lambda_adv > 0 and self.round >= cfg.adv_warmup
        blending = knobs is not None and cfg.bn_momentum > 0  # the probe is made apart from the buffer's batches
        jitter = cfg.inv_max_shift > 0 or cfg.inv_hflip
        contrasting = knobs is not None and self._contrast is not None  # the probe is made without it
        if contrasting:
            optimizers = [*optimizers, self._contrast_optimizer]
        with_features = cfg.lambda_act > 0 or contrasting
        if knobs is not None:
            self.student.eval()  # the student is only a critic here: keep its BatchNorm statistics out of it
        loss_value, finite = float("nan"), True
        with BatchNormStatsLoss(teacher, first_weight=cfg.bn_first_weight, momentum=cfg.bn_momentum if blending else 0.0,
                                blend=self._bn_blend if blending else None) as bn_loss:
            for _ in range(steps):
                x = render(latent)
                seen = augment_batch(x, gen, max_shift=cfg.inv_max_shift, hflip=cfg.inv_hflip) if jitter else x
                if with_features:  # DAFL's and CMI's terms read the features the classifier reads
                    features = teacher.embed(seen)
                    t_logits = teacher.classifier(features)
                else:
                    t_logits = teacher(seen)
                per_sample = cfg.lambda_oh * F.cross_entropy(t_logits, targets, reduction="none")
                if cfg.lambda_act > 0:
                    per_sample = per_sample + cfg.lambda_act * activation_term(features)
                if adversarial:
                    per_sample = per_sample + cfg.lambda_adv * adversarial_term(self.student(seen), t_logits, cfg.adv_loss)
                if knobs is not None:
                    per_sample = per_sample * modulation_weights(
                        t_logits, targets, share, gamma=knobs.gamma, diversity_strength=knobs.diversity,
                        use_difficulty=cfg.use_difficulty, use_diversity=cfg.use_diversity)
                loss = cfg.lambda_bn * bn_loss.pop() + per_sample.mean()
                if cfg.lambda_ie > 0:
                    loss = loss + cfg.lambda_ie * information_entropy_term(t_logits)
                if contrasting:
                    with bn_loss.paused():  # the local view's statistics are a crop's, not the batch's
                        local = teacher.embed(random_resized_crop(x, self._torch_gen))
                    loss = loss + cfg.lambda_cr * self._contrast(features, local)
                if cfg.lambda_tv > 0:
                    loss = loss + cfg.lambda_tv * total_variation(x)
                loss_value = loss.item()
                if not math.isfinite(loss_value):
                    finite = False
                    break
                for optimizer in optimizers:
                    optimizer.zero_grad(set_to_none=True)
                loss.backward()
                for optimizer in optimizers:
                    optimizer.step()
            if blending and finite:
                bn_loss.advance()  # the round's last batch joins the blend
            if contrasting and finite:
                self._contrast.remember()  # the round's final samples become the next rounds' negatives
        if knobs is not None:
            self.student.train()
        with torch.no_grad():
            x = render(latent).detach()
        return x, loss_value, finite and bool(torch.isfinite(x).all())

    def shared_probe(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The probe of ``shared_probe=True`` runs: inverted once per teacher and probe settings from a
        fixed seed, then kept (in memory, beside the teacher) for every run of every process that shares
        the teacher. Returns the samples and their teacher logits."""
        cfg = self.config
        key = (cfg.probe_size, cfg.probe_steps, cfg.latent_dim, cfg.gen_width, cfg.generator, cfg.g_lr, cfg.z_lr,
               cfg.lambda_bn, cfg.bn_first_weight, cfg.lambda_oh, cfg.lambda_act, cfg.lambda_ie, cfg.lambda_tv,
               cfg.inv_max_shift, cfg.inv_hflip, str(self.device))
        probes = SHARED_PROBES.setdefault(self.teacher.model, {})
        if key not in probes:
            probes[key] = self._invert_probe(SHARED_PROBE_SEED, torch_generator(derive_seed(SHARED_PROBE_SEED, "torch"), self.device))
        return probes[key]

    def _make_probe(self, seed: int) -> None:
        """A held-out synthetic probe set, class-balanced, inverted by its own generator (data-free):
        the run's own, or the teacher's shared one."""
        if self.config.shared_probe:
            self._probe_x, self._probe_logits = self.shared_probe()
        else:
            self._probe_x, self._probe_logits = self._invert_probe(seed, self._torch_gen)

    def _invert_probe(self, seed: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        with seeded(derive_seed(seed, "probe-generator")):
            generator = Generator(self.data.input_shape, self.data.mean, self.data.std, cfg.latent_dim, cfg.gen_width,
                                       cfg.generator).to(self.device)
        targets = torch.arange(cfg.probe_size, device=self.device) % self.num_classes
        z = torch.randn(cfg.probe_size, cfg.latent_dim, generator=gen, device=self.device).requires_grad_()
        optimizers = [torch.optim.Adam([z], lr=cfg.z_lr, betas=(0.5, 0.999)),
                      torch.optim.Adam(generator.parameters(), lr=cfg.g_lr, betas=(0.5, 0.999))]
        with torch.enable_grad():
            x, _, _ = self.optimise_batch(generator, z, optimizers, targets, cfg.probe_steps, knobs=None, gen=gen)
        return x, predict_logits(self.teacher.model, x)

    # ------------------------------------------------------------------ distillation
    def _distill(self, knobs: SSDKDKnobs) -> tuple[dict[str, float], bool]:
        """``kd_steps`` student updates; returns the mean KD loss and whether a loss became non-finite."""
        cfg = self.config
        if len(self.buffer) == 0:
            return {"kd_loss": float("nan")}, False
        alpha = knobs.alpha if cfg.use_priority else 0.0
        beta = knobs.beta if cfg.use_priority else 0.0
        priority = None if knobs.class_priority is None else np.asarray(knobs.class_priority)
        augmenting = cfg.kd_max_shift > 0 or cfg.kd_hflip or cfg.kd_mix != "none"
        self.student.train()
        total = 0.0
        for _ in range(cfg.kd_steps):
            batch = self.buffer.sample(cfg.kd_batch, alpha=alpha, beta=beta, rng=self._np_rng, class_weights=priority)
            x, t_logits = batch.x, batch.teacher_logits
            if augmenting:
                x = augment_batch(x, self._torch_gen, max_shift=cfg.kd_max_shift, hflip=cfg.kd_hflip)
                x = mix_batch(x, self._torch_gen, mode=cfg.kd_mix, prob=cfg.kd_mix_prob)
                with torch.no_grad():
                    t_logits = self.teacher.model(x)
            per_sample = kd_loss(self.student(x), t_logits, cfg.temperature, reduction="none")
            loss = (batch.weights * per_sample).mean()
            if not torch.isfinite(loss):
                return {"kd_loss": float("nan")}, True
            self._kd_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self._scaled_kd_step(knobs.lr_scale)
            if cfg.use_priority:
                self.buffer.update_priorities(batch.indices, per_sample.detach() / cfg.temperature**2)
            total += loss.item()
        return {"kd_loss": total / cfg.kd_steps}, False

    def _scaled_kd_step(self, scale: float) -> None:
        """One student update at ``scale`` × the cosine schedule's rate; the schedule itself is not
        rescaled (its recursion reads the unscaled rate back), so a round's scale does not carry over."""
        groups = self._kd_optimizer.param_groups
        scheduled = [group["lr"] for group in groups]
        for group, lr in zip(groups, scheduled):
            group["lr"] = lr * scale
        self._kd_optimizer.step()
        for group, lr in zip(groups, scheduled):
            group["lr"] = lr
        self._kd_schedule.step()
