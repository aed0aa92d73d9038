"""Configurations of every condensation method per data set and images-per-class, and the evaluation
recipe each is judged with: the one home of condensation presets. The Fashion-MNIST entries are the ones
``scripts/bench_condense.py`` runs, sized so that one run fits 20 minutes on 2 CPU cores; the digits
entries keep tests to seconds. An ``"episode"`` entry says how the env of that data set shortens the
plain run (``condense_config(..., episode=True)``, which also scores after every update: the reward).
"""

from __future__ import annotations

from typing import Any

from distill_core.condense.dc import DCConfig
from distill_core.condense.dd import DDConfig
from distill_core.condense.dm import DMConfig
from distill_core.condense.evaluator import EvalRecipe

_CONFIG_CLASSES: dict[str, type] = {"dm": DMConfig, "dc": DCConfig, "dsa": DCConfig, "dd": DDConfig}

# DC and DSA on Fashion-MNIST. DC runs 1000 iterations of 256 real images per class on a GPU; within 20
# minutes per run (evaluation included) one CPU core affords 16 of 64 real images per class at 10 per
# class, and 300 at 1 per class (~11 min). A cosine decay of the pixels' learning rate measured, for DC,
# 70.92 % against 70.47 % at a constant rate at 1 per class and, with a 5× step (lr 0.5), 79.56 % against
# 78.81 % at 10 per class (24 cheaper iterations of 32 real images and 5 inner epochs: 78.95 %); for DSA
# 71.10 % against 70.38 % and 80.74 % against 79.86 %.
_GRADIENT_MATCHING_FASHION_MNIST: dict[str, Any] = dict(
    iterations=16, real_batch=64, score_every=4, inner_loop=10, lr_images=0.5, lr_schedule="cosine",
    ipc1=dict(iterations=300, score_every=50, lr_images=0.1))

#: method → dataset → fields for every images-per-class (``"ipc<N>"`` keys override for one size).
_CONFIGS: dict[str, dict[str, dict[str, Any]]] = {
    "dm": {
        "digits": dict(iterations=20),  # the plain run is episode-sized already
        # DM takes 20 000 updates of 256 real images per class; one CPU core affords 800 of 64 within 20
        # minutes at 10 per class. With so few, a larger pixel step decaying to 0 reaches further: at 10
        # per class 400 updates at lr 1 gave 80.62 %, 800 at lr 1 81.12 %, 400 at lr 5 81.21 %, at lr 20
        # 80.97 %, 800 at lr 5 with cosine decay 81.60 % (the benchmark run)
        "fashion_mnist": dict(iterations=800, real_batch=64, lr_images=5.0, lr_schedule="cosine", score_every=200,
                              score_epochs=100, ipc1=dict(iterations=400, real_batch=128, lr_images=1.0,
                                                          lr_schedule="constant", score_every=50),
                              episode=dict(iterations=100)),
    },
    "dc": {
        "digits": dict(iterations=10, net_width=32, net_depth=2, real_batch=32),
        "fashion_mnist": _GRADIENT_MATCHING_FASHION_MNIST,  # 16 iterations: episode-sized already
    },
    "dsa": {
        "digits": dict(iterations=10, net_width=32, net_depth=2, real_batch=32, dsa=True),
        "fashion_mnist": dict(_GRADIENT_MATCHING_FASHION_MNIST, dsa=True),
    },
    "dd": {
        # 8×8 digits: two conv blocks (8 → 4 → 2); larger step sizes converge in a few dozen updates
        "digits": dict(iterations=100, net_depth=2, init_lr=0.1, lr_images=0.1, lr_lrs=0.01, real_batch=128,
                       episode=dict(iterations=50)),
        "fashion_mnist": dict(iterations=1000, score_every=250, episode=dict(iterations=200)),
    },
}

#: method → evaluation recipe fields (DSA and DM are evaluated with DSA augmentation, as in their papers).
_RECIPES: dict[str, dict[str, Any]] = {
    "dsa": dict(dsa=True),
    "dm": dict(dsa=True),
}


def config_class(method: str) -> type:
    """The configuration dataclass of a learned ``method``."""
    if method not in _CONFIG_CLASSES:
        raise ValueError(f"unknown learned condensation method {method!r}: use {', '.join(_CONFIG_CLASSES)}")
    return _CONFIG_CLASSES[method]


def condense_config(method: str, dataset: str, images_per_class: int, *, episode: bool = False, **overrides: Any) -> Any:
    """The configuration of a learned ``method`` for ``dataset`` at ``images_per_class``.

    Data sets without an entry get the method's defaults; ``overrides`` win over everything.

    :param episode: the env's episode of this run: the data set's ``"episode"`` entry applied and the set
        scored after every update (the reward of every step).
    """
    config_cls = config_class(method)
    fields = dict(_CONFIGS[method].get(dataset, {}))
    fields.update(fields.pop(f"ipc{images_per_class}", {}))
    shorter = fields.pop("episode", {})
    if episode:
        fields.update(shorter, score_every=1)
    fields = {k: v for k, v in fields.items() if not k.startswith("ipc")}
    fields.update(dataset=dataset, images_per_class=images_per_class, **overrides)
    return config_cls(**fields)


def eval_recipe(method: str, dataset: str, images_per_class: int, **overrides: Any) -> EvalRecipe:
    """The evaluation recipe a set made by ``method`` is judged with (coreset baselines get the plain one)."""
    fields = dict(_RECIPES.get(method, {}))
    if dataset == "digits":
        fields.setdefault("epochs", 100)  # 8×8 inputs: a short schedule is enough and keeps tests quick
    fields.update(overrides)
    return EvalRecipe(**fields)
