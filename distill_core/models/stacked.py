"""N copies of one MLP-shaped network with their weights stacked on a leading run axis.

At the sizes the learning presets use (8×8 digits, 1-D signals, a dozen new samples a round) a round's
time is per-operation overhead, not arithmetic; stacking the weights of N runs and doing every layer as
one batched matrix product (``torch.bmm``) pays that overhead once for N runs. Each run keeps its own
weights, BatchNorm statistics and running averages; nothing mixes across the run axis, so N = 1 is the
same computation as one network (up to the order of floating-point sums).

A network is a sequence of ``Linear``, ``BatchNorm1d``, ``ReLU``, ``LeakyReLU`` and ``Flatten`` layers
(:func:`layer_sequence`); convolutional networks are refused (they are compute-bound, where stacking
does not pay). Inputs are ``(N, B, ...)``; a ``mask`` ``(N, B)`` marks the real rows of a padded batch
(runs that make different numbers of samples): BatchNorm statistics are taken over those rows only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from distill_core.inversion import Generator
from distill_core.models.base import ZooModel

#: floats a Linear layer's outputs are padded to a multiple of (64 bytes)
_ALIGN = 16
_SUPPORTED = (nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.LeakyReLU, nn.Flatten)


def layer_sequence(model: nn.Module) -> list[nn.Module]:
    """The layers of ``model`` in order: a zoo MLP's features and classifier, or an MLP generator's
    projection and body.

    :raises ValueError: the network has a layer that cannot be stacked (a convolution, say).
    """
    if isinstance(model, ZooModel):
        layers = [*model.features, model.classifier] if isinstance(model.features, nn.Sequential) else [model.features]
    elif isinstance(model, Generator):
        layers = [model.project, *model.body] if not model.is_image else [model]
    else:
        layers = [model]
    bad = [type(layer).__name__ for layer in layers if not isinstance(layer, _SUPPORTED)]
    if bad:
        raise ValueError(f"{type(model).__name__} has layers that cannot be stacked across runs ({', '.join(sorted(set(bad)))}): "
                         "lockstep runs need MLP-shaped networks (an 'mlp_bn' teacher and student, generator='mlp')")
    return layers


def masked_moments(x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-run mean and biased variance over the batch axis of ``x`` ``(N, B, F)``, counting only the
    rows where ``mask`` ``(N, B)`` is 1; also the counts ``(N, 1)``."""
    if mask is None:  # (x - mean)² by hand: Tensor.var over a middle axis is ten times slower here
        mean = x.mean(1)
        return mean, ((x - mean[:, None]) ** 2).mean(1), x.new_full((x.shape[0], 1), float(x.shape[1]))
    weights = mask[..., None]
    count = weights.sum(1).clamp_min(1.0)
    mean = (x * weights).sum(1) / count
    var = (((x - mean[:, None]) ** 2) * weights).sum(1) / count
    return mean, var, count


class StackedNet:
    """N copies of a layer sequence (see the module docstring), one slot per run.

    :param template: a network of the shape to stack (its weights are not used).
    :param num_runs: N.
    :param device: where the stacked tensors live.
    :param trainable: make the weights leaf tensors that require grad (a student, a generator).
    """

    def __init__(self, template: nn.Module, num_runs: int, device: torch.device | str = "cpu", *, trainable: bool) -> None:
        self.num_runs = int(num_runs)
        self.device = torch.device(device)
        self.kinds: list[tuple[str, float]] = []
        self.params: list[torch.Tensor] = []  # trainable tensors, in layer order
        self._layers: list[dict[str, torch.Tensor]] = []
        for layer in layer_sequence(template):
            entry: dict[str, torch.Tensor] = {}
            if isinstance(layer, nn.Linear):
                # outputs padded with zero columns to a multiple of 16 floats: every run's block then starts
                # 64-byte aligned, and a batched product of a misaligned block (10 classes) rounds otherwise
                # than the same product alone; the padding stays zero (its gradient is zero)
                self.kinds.append(("linear", float(layer.out_features)))
                padded = -(-layer.out_features // _ALIGN) * _ALIGN
                entry["weight"] = self._zeros(layer.in_features, padded, trainable=trainable)
                if layer.bias is not None:
                    entry["bias"] = self._zeros(padded, trainable=trainable)
            elif isinstance(layer, nn.BatchNorm1d):
                self.kinds.append(("bn", float(layer.eps)))
                entry["momentum"] = torch.tensor(layer.momentum if layer.momentum is not None else 0.1)
                if layer.affine:
                    entry["weight"] = self._zeros(layer.num_features, trainable=trainable)
                    entry["bias"] = self._zeros(layer.num_features, trainable=trainable)
                entry["running_mean"] = self._zeros(layer.num_features, trainable=False)
                entry["running_var"] = self._zeros(layer.num_features, trainable=False)
            elif isinstance(layer, nn.LeakyReLU):
                self.kinds.append(("leaky_relu", float(layer.negative_slope)))
            elif isinstance(layer, nn.ReLU):
                self.kinds.append(("relu", 0.0))
            else:
                self.kinds.append(("flatten", 0.0))
            self._layers.append(entry)
        self.params = [t for entry in self._layers for k, t in entry.items() if t.requires_grad]

    def _zeros(self, *shape: int, trainable: bool) -> torch.Tensor:
        tensor = torch.zeros(self.num_runs, *shape, device=self.device)
        return tensor.requires_grad_(trainable)

    # ------------------------------------------------------------------ slots
    @torch.no_grad()
    def load_slot(self, slot: int, model: nn.Module) -> None:
        """Copy ``model``'s weights and BatchNorm statistics into run ``slot``."""
        for entry, layer in zip(self._layers, layer_sequence(model)):
            if isinstance(layer, nn.Linear):
                entry["weight"][slot, :, : layer.out_features].copy_(layer.weight.T)
                if "bias" in entry:
                    entry["bias"][slot, : layer.out_features].copy_(layer.bias)
            for name in ("running_mean", "running_var"):
                if name in entry:
                    entry[name][slot].copy_(getattr(layer, name))
            if isinstance(layer, nn.BatchNorm1d) and "weight" in entry:
                entry["weight"][slot].copy_(layer.weight)
                entry["bias"][slot].copy_(layer.bias)

    @torch.no_grad()
    def export_slot(self, slot: int, model: nn.Module) -> nn.Module:
        """Copy run ``slot``'s weights and statistics into ``model`` (of the template's shape) and return it."""
        for entry, layer in zip(self._layers, layer_sequence(model)):
            if isinstance(layer, nn.Linear):
                layer.weight.copy_(entry["weight"][slot, :, : layer.out_features].T)
                if "bias" in entry:
                    layer.bias.copy_(entry["bias"][slot, : layer.out_features])
            for name in ("running_mean", "running_var"):
                if name in entry:
                    getattr(layer, name).copy_(entry[name][slot])
            if isinstance(layer, nn.BatchNorm1d) and "weight" in entry:
                layer.weight.copy_(entry["weight"][slot])
                layer.bias.copy_(entry["bias"][slot])
        return model

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor, *, batch_stats: bool, mask: torch.Tensor | None = None,
                update_running: torch.Tensor | None = None, bn_inputs: list | None = None,
                runs: slice | None = None) -> torch.Tensor:
        """Every run's network on its own batch.

        :param x: ``(N, B, ...)`` inputs (``N`` the runs selected by ``runs``).
        :param batch_stats: BatchNorm normalises with the batch's statistics (training mode) instead of
            the running ones (evaluation mode).
        :param mask: ``(N, B)`` 1 for real rows, 0 for padding (batch statistics count real rows only).
        :param update_running: ``(N,)`` booleans: runs whose running statistics take this batch's
            (PyTorch's rule: momentum, unbiased variance); ``None`` = none.
        :param bn_inputs: a list that receives, per BatchNorm layer, the (masked) mean and biased
            variance of its input and the layer's running statistics (the inversion prior reads them).
        :param runs: a slice of the run axis to compute (default all).
        """
        sel = runs if runs is not None else slice(None)
        for (kind, arg), entry in zip(self.kinds, self._layers):
            if kind == "linear":
                if "bias" in entry:
                    x = torch.baddbmm(entry["bias"][sel][:, None, :], x, entry["weight"][sel])
                else:
                    x = torch.bmm(x, entry["weight"][sel])
                if x.shape[-1] != int(arg):
                    x = x[..., : int(arg)]
            elif kind == "bn":
                running_mean, running_var = entry["running_mean"][sel], entry["running_var"][sel]
                if batch_stats or bn_inputs is not None:
                    mean, var, count = masked_moments(x, mask)
                if bn_inputs is not None:
                    bn_inputs.append((mean, var, running_mean, running_var))
                if batch_stats:
                    if update_running is not None:
                        with torch.no_grad():
                            momentum = float(entry["momentum"])
                            keep = update_running[:, None]
                            unbiased = var.detach() * count / (count - 1).clamp_min(1.0)
                            running_mean.copy_(torch.where(keep, (1 - momentum) * running_mean + momentum * mean.detach(), running_mean))
                            running_var.copy_(torch.where(keep, (1 - momentum) * running_var + momentum * unbiased, running_var))
                    x = (x - mean[:, None]) / torch.sqrt(var[:, None] + arg)
                else:
                    x = (x - running_mean[:, None]) / torch.sqrt(running_var[:, None] + arg)
                if "weight" in entry:
                    x = x * entry["weight"][sel][:, None] + entry["bias"][sel][:, None]
            elif kind == "relu":
                x = F.relu(x)
            elif kind == "leaky_relu":
                x = F.leaky_relu(x, arg)
            else:
                x = x.reshape(x.shape[0], x.shape[1], -1)
        return x


class StackedAdam:
    """Adam over stacked tensors with a step count and a learning rate per run (PyTorch's update rule,
    no weight decay), so runs that start at different times keep their own bias corrections.

    :param params: tensors with the run axis first.
    :param lr: the learning rate.
    :param betas: Adam's ``(β1, β2)``.
    :param eps: added to the denominator.
    """

    def __init__(self, params: Sequence[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.params = list(params)
        self.lr, self.betas, self.eps = float(lr), betas, float(eps)
        num_runs = self.params[0].shape[0]
        self.steps = torch.zeros(num_runs, dtype=torch.float64)
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def reset_slot(self, slot: int) -> None:
        """Forget run ``slot``'s moments and step count (a fresh optimiser for a new run)."""
        self.steps[slot] = 0
        for m, v in zip(self.exp_avg, self.exp_avg_sq):
            m[slot].zero_()
            v[slot].zero_()

    @torch.no_grad()
    def step(self, active: torch.Tensor) -> None:
        """One update of the runs where ``active`` ``(N,)`` is true (the others stay as they are)."""
        beta1, beta2 = self.betas
        self.steps += active.to(self.steps.dtype).cpu()
        steps = self.steps.clamp_min(1.0)
        step_size = (self.lr / (1 - beta1 ** steps)).to(self.params[0].dtype)
        correction2 = torch.sqrt(1 - beta2 ** steps).to(self.params[0].dtype)
        step_size = torch.where(active.cpu(), step_size, torch.zeros_like(step_size)).to(self.params[0].device)
        correction2 = correction2.to(self.params[0].device)
        keep = active.to(self.params[0].device)
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            if p.grad is None:
                continue
            shape = (-1,) + (1,) * (p.dim() - 1)
            grad = p.grad
            gate = keep.view(shape)
            m.copy_(torch.where(gate, m.lerp(grad, 1 - beta1), m))
            v.copy_(torch.where(gate, v * beta2 + (1 - beta2) * grad * grad, v))
            denom = v.sqrt() / correction2.view(shape) + self.eps
            p.sub_(step_size.view(shape) * m / denom)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None


class StackedSGD:
    """SGD with (Nesterov) momentum and weight decay over stacked tensors, a learning rate per run
    (PyTorch's update rule with dampening 0).

    :param params: tensors with the run axis first.
    :param momentum: the momentum.
    :param weight_decay: L2 weight decay.
    :param nesterov: Nesterov momentum.
    """

    def __init__(self, params: Sequence[torch.Tensor], momentum: float, weight_decay: float, nesterov: bool = True) -> None:
        self.params = list(params)
        self.momentum, self.weight_decay, self.nesterov = float(momentum), float(weight_decay), nesterov
        self.buffers = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def reset_slot(self, slot: int) -> None:
        """Forget run ``slot``'s momentum (a fresh optimiser for a new run)."""
        for buf in self.buffers:
            buf[slot].zero_()

    @torch.no_grad()
    def step(self, lr: torch.Tensor) -> None:
        """One update with learning rate ``lr`` ``(N,)`` per run (0 leaves a run's weights and momentum alone)."""
        lr = lr.to(self.params[0].device, self.params[0].dtype)
        moving = lr > 0
        for p, buf in zip(self.params, self.buffers):
            if p.grad is None:
                continue
            shape = (-1,) + (1,) * (p.dim() - 1)
            d_p = p.grad + self.weight_decay * p if self.weight_decay else p.grad
            buf.copy_(torch.where(moving.view(shape), buf * self.momentum + d_p, buf))
            step = d_p + self.momentum * buf if self.nesterov else buf
            p.sub_(lr.view(shape) * step)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None
