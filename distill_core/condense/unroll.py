"""Dataset distillation's unroll and replay: the machinery a DD set needs that does not depend on the
process that learned it.

:func:`unroll` takes plain gradient-descent steps from θ₀ with one step size per inner step and
:func:`unrolled_loss` is DD's outer loss on real data (both differentiable through the whole unroll);
:func:`train_with_schedule` replays a finished set's learned schedule and :func:`evaluate_dd` is its
evaluation protocol, the counterpart of :func:`~distill_core.condense.evaluator.evaluate_synthetic`.

It lives apart from :mod:`distill_core.condense.dd` because the evaluator hands every DD set to
:func:`evaluate_dd`, and the process module builds on the evaluator: replay here, below both, keeps the
imports one-way.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from distill_core.common.batching import PREDICT_BATCH
from distill_core.common.device import resolve_device
from distill_core.common.seeding import derive_seed, seeded
from distill_core.condense.synthetic_set import SyntheticSet
from distill_core.data import DatasetSplits
from distill_core.kd import evaluate
from distill_core.models import build_model


# ---------------------------------------------------------------------- the unroll
def softplus_inverse(y: float) -> float:
    """``raw`` with ``softplus(raw) = y`` (``y > 0``)."""
    return y + math.log(-math.expm1(-y))


def unroll(net: nn.Module, params: dict[str, torch.Tensor], images: torch.Tensor, labels: torch.Tensor,
           lrs: torch.Tensor, *, steps: int, create_graph: bool = True) -> dict[str, torch.Tensor]:
    """θ_T: ``len(lrs)`` full-batch GD steps from ``params`` (θ₀), step ``t`` on image batch ``t % steps``
    (rows ``[b·n, (b+1)·n)``, ``n = len(images) // steps``) with step size ``lrs[t]``.

    :param net: the architecture (its own parameters are not used: ``params`` replace them).
    :param params: θ₀, parameter name → tensor; must require grad.
    :param create_graph: keep the graph of every inner gradient, so θ_T is differentiable w.r.t. the
        images, the step sizes and θ₀ (exact backprop through the unroll); ``False`` to just replay.
    """
    if len(images) % steps:
        raise ValueError(f"{len(images)} images do not split into {steps} equal batches")
    per_step = len(images) // steps
    for t in range(len(lrs)):
        b = t % steps
        xb, yb = images[b * per_step:(b + 1) * per_step], labels[b * per_step:(b + 1) * per_step]
        loss = F.cross_entropy(functional_call(net, params, (xb,)), yb)
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=create_graph)
        lr = lrs[t]
        params = {name: p - lr * g for (name, p), g in zip(params.items(), grads)}
        if not create_graph:
            params = {name: p.detach().requires_grad_() for name, p in params.items()}
    return params


def unrolled_loss(net: nn.Module, params: dict[str, torch.Tensor], images: torch.Tensor, labels: torch.Tensor,
                  lrs: torch.Tensor, x_real: torch.Tensor, y_real: torch.Tensor, *, steps: int,
                  class_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """DD's outer loss: the cross-entropy of θ_T (see :func:`unroll`) on real data, a weighted mean with
    weight ``class_weights[y]`` per sample (plain mean without weights). Differentiable w.r.t. ``images``,
    ``lrs`` and ``params``.

    :return: ``(loss, per_sample_losses)``; the per-sample losses are detached.
    """
    final = unroll(net, params, images, labels, lrs, steps=steps, create_graph=True)
    per_sample = F.cross_entropy(functional_call(net, final, (x_real,)), y_real, reduction="none")
    if class_weights is None:
        loss = per_sample.mean()
    else:
        w = class_weights[y_real]
        loss = (w * per_sample).sum() / w.sum()
    return loss, per_sample.detach()


def build_net(arch: str, width: int, depth: int, data: DatasetSplits, seed: int, device: torch.device) -> nn.Module:
    """The network DD unrolls, initialised from ``seed`` (θ₀ is a function of the seed alone).

    :param arch: a stateless architecture (:data:`distill_core.condense.dd.DD_ARCHS`).
    :param width: channels per block.
    :param depth: conv blocks.
    :param data: gives the input shape and the number of classes.
    :param seed: the initialisation's seed.
    :param device: where the network lives.
    """
    with seeded(seed):
        return build_model(arch, input_shape=data.input_shape, num_classes=data.num_classes, width=width,
                           depth=depth).to(device)


def params_of(net: nn.Module) -> dict[str, torch.Tensor]:
    """``net``'s parameters as fresh leaves that require grad: a θ₀ for :func:`unroll`, detached from ``net``.

    :param net: the network whose current parameters are copied.
    """
    return {name: p.detach().clone().requires_grad_() for name, p in net.named_parameters()}


# ---------------------------------------------------------------------- replay and evaluation
def train_with_schedule(synthetic: SyntheticSet, data: DatasetSplits, *, seed: int = 0,
                        device: str | torch.device = "cpu") -> nn.Module:
    """The network a DD set trains: θ₀ rebuilt from ``synthetic.meta`` (the run's fixed initialisation; for
    a set distilled with random initialisations, a fresh one drawn from ``seed``), then the learned step
    sizes ``synthetic.lrs`` replayed on the set's batches in their order.

    :raises ValueError: the set carries no learned schedule (not made by DD).
    """
    meta = synthetic.meta
    missing = [k for k in ("arch", "width", "depth", "init", "init_seed", "steps") if k not in meta]
    if synthetic.lrs is None or missing:
        raise ValueError(f"this {synthetic.method!r} set has no DD schedule to replay"
                         + (f" (meta lacks {', '.join(missing)})" if missing else " (no lrs)"))
    device = resolve_device(device)
    init_seed = meta["init_seed"] if meta["init"] == "fixed" else derive_seed(seed, "dd-init")
    net = build_net(meta["arch"], meta["width"], meta["depth"], data, init_seed, device)
    with torch.enable_grad():
        final = unroll(net, params_of(net), synthetic.x.detach().to(device), synthetic.y.to(device),
                       synthetic.lrs.detach().to(device), steps=meta["steps"], create_graph=False)
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(final[name])
    return net


def evaluate_dd(synthetic: SyntheticSet, data: DatasetSplits, *, num_models: int = 3, seed: int = 0, split: str = "test",
                device: str | torch.device = "cpu") -> dict:
    """DD's evaluation protocol: replay the learned schedule (:func:`train_with_schedule`) and report the
    accuracy on a real split. With a fixed initialisation every replay is the same network, so it is
    trained once (``num_models`` = 1, std 0); with random initialisations, ``num_models`` seeded ones.

    :param split: ``"test"`` (report) or ``"val"`` (model selection / rewards; keeps the test set unseen).
    :return: ``{"mean", "std", "accuracies", "arch", "recipe", "num_models"}`` (accuracies as fractions),
        the keys of :func:`~distill_core.condense.evaluator.evaluate_synthetic`.
    """
    if split not in ("test", "val"):
        raise ValueError(f"split must be 'test' or 'val', got {split!r}")
    if num_models < 1:
        raise ValueError(f"num_models must be >= 1, got {num_models}")
    device = resolve_device(device)
    x_eval, y_eval = (data.x_test, data.y_test) if split == "test" else (data.x_val, data.y_val)
    fixed = synthetic.meta.get("init") == "fixed"
    num_models = 1 if fixed else num_models
    accuracies = []
    for k in range(num_models):
        model = train_with_schedule(synthetic, data, seed=derive_seed(seed, "eval-model", k), device=device)
        accuracies.append(evaluate(model, x_eval.to(device), y_eval, batch_size=PREDICT_BATCH)["accuracy"])
    meta = synthetic.meta
    recipe = {"protocol": "dd-replay", "init": meta.get("init"), "init_seed": meta.get("init_seed") if fixed else None,
              "steps": meta.get("steps"), "epochs": meta.get("epochs"), "inner_steps": len(synthetic.lrs),
              "lrs": [float(v) for v in synthetic.lrs]}
    return {"mean": float(np.mean(accuracies)), "std": float(np.std(accuracies)), "accuracies": accuracies,
            "arch": meta.get("arch"), "recipe": recipe, "num_models": num_models}
