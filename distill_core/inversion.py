"""Model inversion: synthesising inputs from a frozen teacher (DeepInversion / Fast-DFKD style).

Three pieces, shared by SSD-KD and its baselines:

* :class:`BatchNormStatsLoss` — the DeepInversion prior: the batch statistics a synthetic batch
  induces at every BatchNorm layer should match the teacher's running statistics;
* :class:`Generator` — a small conv (or MLP, for 1-D data) generator mapping a latent to a normalised input;
* :func:`adversarial_term` — Fast-DFKD's ``−KL(p_T ‖ p_S)`` where student and teacher still agree,
  or DFAD's ``−|z_T − z_S|₁`` (:data:`ADVERSARIAL_LOSSES`);
* :func:`activation_term` and :func:`information_entropy_term` — DAFL's priors: strong teacher features,
  and a batch whose mean prediction covers every class;
* :class:`ContrastiveTerm` — CMI's contrastive term: each sample's local view must be told apart from
  every other sample (this batch's and earlier rounds') by the teacher's features, so samples differ.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

_BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """``model``'s BatchNorm layers, in module order.

    :raises ValueError: the model has none.
    """
    layers = [m for m in model.modules() if isinstance(m, _BN_TYPES)]
    if not layers:
        raise ValueError(f"{type(model).__name__} has no BatchNorm layer: the inversion prior needs its running statistics")
    return layers


def first_batchnorm(model: nn.Module) -> nn.modules.batchnorm._BatchNorm:
    """``model``'s first BatchNorm layer (the one whose statistics are intensity and edges).

    :raises ValueError: the model has none.
    """
    return batchnorm_layers(model)[0]


class BatchNormStatsLoss:
    """Context manager that hooks every BatchNorm layer of ``model`` and accumulates
    ``Σ_l ‖μ_l − μ̂_l‖₂ + ‖σ²_l − σ̂²_l‖₂`` for each forward pass; the hooks are removed on exit.

    Usage::

        with BatchNormStatsLoss(teacher) as bn_loss:
            logits = teacher(x)
            loss = bn_loss.pop()  # the term of this forward pass (and clears it)

    :param model: a network with BatchNorm layers in eval mode (their running statistics are the target).
    :param first_weight: multiplier of the first BatchNorm layer's term. DeepInversion weights it up
        (×10): the first layer's statistics are the low-level ones (intensity, edges) that make a sample
        look like the data rather than like texture.
    :param momentum: Fast-DFKD's blend ``m``: the running statistics are matched by
        ``(1 − m) · batch + m · blended`` instead of the batch's alone, where ``blended`` (``blend``, kept
        by the caller across batches and advanced by :meth:`advance`) averages earlier batches. Each batch
        then only has to make up the past batches' error, not match the data set's statistics by itself.
    :param blend: the caller's blended statistics per layer index (``{}`` at the start of a run).
    """

    def __init__(self, model: nn.Module, first_weight: float = 1.0, *, momentum: float = 0.0,
                 blend: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = None) -> None:
        self.layers = batchnorm_layers(model)
        if not first_weight >= 0:
            raise ValueError(f"first_weight must be >= 0, got {first_weight}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self._weights = {id(layer): (first_weight if i == 0 else 1.0) for i, layer in enumerate(self.layers)}
        self._index = {id(layer): i for i, layer in enumerate(self.layers)}
        self.momentum = momentum
        self.blend = {} if blend is None else blend
        self._last: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._terms: list[torch.Tensor] = []
        self._paused = False

    def _hook(self, module: nn.modules.batchnorm._BatchNorm, inputs: tuple[torch.Tensor, ...], _output: torch.Tensor) -> None:
        if self._paused:
            return
        x = inputs[0]
        dims = [d for d in range(x.dim()) if d != 1]  # every dim but the channels
        mean = x.mean(dim=dims)
        var = x.var(dim=dims, unbiased=False)
        index = self._index[id(module)]
        self._last[index] = (mean.detach(), var.detach())
        if self.momentum > 0 and index in self.blend:
            past_mean, past_var = self.blend[index]
            mean = (1 - self.momentum) * mean + self.momentum * past_mean
            var = (1 - self.momentum) * var + self.momentum * past_var
        term = torch.norm(mean - module.running_mean, 2) + torch.norm(var - module.running_var, 2)
        self._terms.append(self._weights[id(module)] * term)

    def advance(self) -> None:
        """Fold the last forward pass's batch statistics into ``blend`` (after a batch is final)."""
        for index, (mean, var) in self._last.items():
            if index in self.blend:
                past_mean, past_var = self.blend[index]
                mean = self.momentum * past_mean + (1 - self.momentum) * mean
                var = self.momentum * past_var + (1 - self.momentum) * var
            self.blend[index] = (mean, var)

    def __enter__(self) -> BatchNormStatsLoss:
        self._handles = [layer.register_forward_hook(self._hook) for layer in self.layers]
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._terms = []

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Forward passes inside add no term and leave the blend's statistics alone (e.g. a second view
        of the same batch, whose statistics are not the batch's)."""
        self._paused = True
        try:
            yield
        finally:
            self._paused = False

    def pop(self) -> torch.Tensor:
        """The summed term of the forward passes since the last call, then cleared."""
        if not self._terms:
            raise RuntimeError("no forward pass through the hooked model since the last pop()")
        total = torch.stack(self._terms).sum()
        self._terms = []
        return total


#: ``conv``: convolutional for images, an MLP otherwise (the published setting); ``mlp``: an MLP always
GENERATOR_KINDS = ("conv", "mlp")


class Generator(nn.Module):
    """A small generator: latent ``z`` → an input in the data set's normalised space.

    ``kind="conv"``: for images ``(C, H, W)`` the DCGAN-like generator of DAFL / Fast-DFKD (linear → two
    upsample-conv-BN blocks → conv); for any other shape, a two-layer MLP. ``kind="mlp"``: the two-layer
    MLP for every shape (for small images the convolutions cost more than they give, and an MLP
    generator can be stacked across runs as one batched matrix product). Images end in a sigmoid and
    are then normalised with the data set's mean and std, so every sample is a valid picture.

    :param output_shape: the data set's input shape.
    :param mean: per-channel normalisation mean.
    :param std: per-channel normalisation std.
    :param latent_dim: size of ``z``.
    :param width: base number of channels (images) or hidden units (MLP: ``4 × width``).
    :param kind: ``conv`` or ``mlp`` (see above; :data:`GENERATOR_KINDS`).
    """

    def __init__(
        self,
        output_shape: tuple[int, ...],
        mean: tuple[float, ...],
        std: tuple[float, ...],
        latent_dim: int = 64,
        width: int = 64,
        kind: str = "conv",
    ) -> None:
        super().__init__()
        if kind not in GENERATOR_KINDS:
            raise ValueError(f"unknown generator kind {kind!r}: use one of {GENERATOR_KINDS}")
        self.output_shape = tuple(output_shape)
        self.latent_dim = latent_dim
        self.kind = kind
        #: the output is a picture (sigmoid, then the data set's normalisation)
        self.is_picture = len(output_shape) == 3
        self.is_image = kind == "conv" and self.is_picture and output_shape[1] % 4 == 0 and output_shape[2] % 4 == 0
        channels = output_shape[0]
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, *[1] * (len(output_shape) - 1)))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, *[1] * (len(output_shape) - 1)))
        if self.is_image:
            h, w = output_shape[1] // 4, output_shape[2] // 4
            self.init_shape = (2 * width, h, w)
            self.project = nn.Linear(latent_dim, 2 * width * h * w)
            self.body = nn.Sequential(
                nn.BatchNorm2d(2 * width),
                nn.Upsample(scale_factor=2),
                nn.Conv2d(2 * width, 2 * width, 3, padding=1, bias=False),
                nn.BatchNorm2d(2 * width),
                nn.LeakyReLU(0.2),
                nn.Upsample(scale_factor=2),
                nn.Conv2d(2 * width, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.LeakyReLU(0.2),
                nn.Conv2d(width, channels, 3, padding=1),
            )
        else:
            self.init_shape = (4 * width,)
            self.project = nn.Linear(latent_dim, 4 * width)
            self.body = nn.Sequential(
                nn.BatchNorm1d(4 * width),
                nn.LeakyReLU(0.2),
                nn.Linear(4 * width, math.prod(output_shape)),
            )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.body(self.project(z).view(len(z), *self.init_shape))
        if self.is_image:
            return (torch.sigmoid(h) - self.mean) / self.std
        if self.kind == "mlp" and self.is_picture:
            return (torch.sigmoid(h.view(len(z), *self.output_shape)) - self.mean) / self.std
        return h.view(len(z), *self.output_shape)


#: ``kl_agree``: Fast-DFKD / CMI's ``−KL(p_T ‖ p_S)`` where both predict the same class; ``l1``: DFAD's
#: ``−mean |z_T − z_S|`` over the logits, everywhere
ADVERSARIAL_LOSSES = ("kl_agree", "l1")


def adversarial_term(student_logits: torch.Tensor, teacher_logits: torch.Tensor, kind: str = "kl_agree") -> torch.Tensor:
    """Per-sample adversarial term (minimised by the generator): samples the student does not yet imitate.

    ``kl_agree`` (Fast-DFKD / CMI): ``−KL(p_T ‖ p_S)`` where student and teacher predict the same class,
    else 0 — samples on which the student agrees with the teacher but should not be comfortable.
    ``l1`` (DFAD): ``−mean |z_T − z_S|`` over the logits, on every sample.
    """
    if kind == "l1":
        return -(teacher_logits - student_logits).abs().mean(dim=1)
    if kind != "kl_agree":
        raise ValueError(f"unknown adversarial loss {kind!r}: use one of {ADVERSARIAL_LOSSES}")
    log_p_t = F.log_softmax(teacher_logits, dim=1)
    log_p_s = F.log_softmax(student_logits, dim=1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1)
    agree = (teacher_logits.argmax(1) == student_logits.argmax(1)).float()
    return -kl * agree.detach()


def activation_term(features: torch.Tensor) -> torch.Tensor:
    """Per-sample DAFL activation loss ``−mean |f_T(x)|`` over the teacher's penultimate features:
    real inputs excite the teacher's features strongly, so the generator is rewarded for that."""
    return -features.flatten(1).abs().mean(dim=1)


def information_entropy_term(logits: torch.Tensor) -> torch.Tensor:
    """DAFL's information-entropy loss of a batch: ``−H(mean softmax)``, lowest when the batch's mean
    prediction is uniform over the classes (a balanced batch), whatever each sample's own confidence."""
    mean_p = F.softmax(logits, dim=1).mean(dim=0)
    return (mean_p * torch.log(mean_p.clamp_min(1e-12))).sum()


class ContrastiveTerm(nn.Module):
    """CMI's contrastive loss (Fang et al., 2021), on the teacher's penultimate features.

    A projection head maps features to a unit sphere; for each sample, its local view (a random resized
    crop) must pick out its own global view among the batch's and a bank of earlier samples' (InfoNCE at
    ``temperature``). Minimised over the generator and the head, it pushes samples apart in the
    teacher's feature space — diversity the class and BatchNorm terms do not ask for.

    :param feature_dim: size of the teacher's features.
    :param temperature: InfoNCE temperature (CMI: 0.1–0.2).
    :param bank_size: how many earlier samples' projections are kept as negatives.
    :param projection_dim: the head's output size.
    """

    def __init__(self, feature_dim: int, temperature: float = 0.1, bank_size: int = 4096, projection_dim: int = 128) -> None:
        super().__init__()
        self.temperature = float(temperature)
        self.bank_size = int(bank_size)
        self.head = nn.Sequential(nn.Linear(feature_dim, 256), nn.ReLU(inplace=True), nn.Linear(256, projection_dim))
        self.register_buffer("bank", torch.zeros(0, projection_dim))

    def project(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(features.flatten(1)), dim=1)

    def forward(self, global_features: torch.Tensor, local_features: torch.Tensor) -> torch.Tensor:
        """The batch's mean InfoNCE loss; the global projections are kept for :meth:`remember`."""
        g, l = self.project(global_features), self.project(local_features)
        self._last = g.detach()
        candidates = torch.cat([g, self.bank.to(g)], dim=0)
        logits = l @ candidates.T / self.temperature
        return F.cross_entropy(logits, torch.arange(len(g), device=g.device))

    def remember(self) -> None:
        """Add the last batch's global projections to the bank of negatives (oldest dropped first)."""
        if getattr(self, "_last", None) is not None:
            self.bank = torch.cat([self._last, self.bank], dim=0)[: self.bank_size]
            self._last = None


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean anisotropic total variation of images ``(N, C, H, W)`` (DeepInversion's smoothness prior)."""
    if x.dim() != 4:
        return x.new_zeros(())
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
