"""The sensitivity map's report (computing stays in :mod:`agents.evaluation.sensitivity`): env × (group,
kind) as a markdown table of paired gains with their 95 % CIs, each cell's details, and a heat map."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.evaluation.sensitivity import KNOB_GROUPS


def group_label(group: str) -> str:
    """``selection + modulation`` for ``selection_modulation``, ``learning rate`` for ``learning_rate``."""
    return " + ".join(group.split("_")) if group == "selection_modulation" else group.replace("_", " ")


def env_label(env_id: str) -> str:
    """``SSDKD-MNIST1D-Paper-Scenarios-v1`` for ``DistillGym/SSDKD-MNIST1D-Paper-Scenarios-v1``."""
    return env_id.split("/")[-1]


def gain_matrix(results: Sequence[dict[str, Any]]) -> tuple[list[str], list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Rows (``env (kind)``), columns (groups), and the gain, CI low and CI high of every cell (NaN where a
    group was not searched or the env exposes none of its knobs)."""
    groups = [g for g in KNOB_GROUPS if any(c["group"] == g for r in results for c in r["cells"])]
    rows = [(r, kind) for r in results for kind in r["config"]["kinds"]]
    shape = (len(rows), len(groups))
    gain, low, high = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    for i, (result, kind) in enumerate(rows):
        for cell in result["cells"]:
            if cell["kind"] == kind and cell["group"] in groups:
                j = groups.index(cell["group"])
                gain[i, j], (low[i, j], high[i, j]) = cell["gain"], cell["ci"]
    labels = [f"{env_label(r['config']['env_id'])} ({kind})" for r, kind in rows]
    return labels, groups, gain, low, high


def compact_knobs(values: dict[str, float]) -> str:
    """``alpha 0.6, class_priority 0.41–2.3 (10)``: scalar knobs by value, a per-class knob's entries
    (``name/i``) as their range and count."""
    groups: dict[str, list[float]] = {}
    for name, value in values.items():
        groups.setdefault(name.split("/")[0], []).append(float(value))
    return ", ".join(f"{name} {v[0]:.3g}" if len(v) == 1 else f"{name} {min(v):.3g}–{max(v):.3g} ({len(v)})"
                     for name, v in groups.items())


def sensitivity_markdown(results: Sequence[dict[str, Any]]) -> str:
    """The map as a table (gain in points of final test accuracy, its 95 % CI; ``—``: the env exposes no
    knob of the group), then every cell's searched knobs, best values and timings."""
    labels, groups, gain, low, high = gain_matrix(results)
    lines = ["| env (search) | constants' test acc % | " + " | ".join(group_label(g) for g in groups) + " |",
             "|---|---|" + "---|" * len(groups)]
    constants = [r["constants_accuracy"] for r in results for _ in r["config"]["kinds"]]
    for i, label in enumerate(labels):
        cells = ["—" if np.isnan(gain[i, j]) else f"{gain[i, j]:+.2f} [{low[i, j]:+.2f}, {high[i, j]:+.2f}]"
                 for j in range(len(groups))]
        lines.append(f"| {label} | {100 * constants[i]:.2f} | " + " | ".join(cells) + " |")
    lines += ["", "| env | group | search | dims | best knobs (start → end) | val acc: constants → best (search seeds) | "
              "wins | diverged | search s | eval s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for result in results:
        for c in result["cells"]:
            knobs = " → ".join(compact_knobs(kv) for kv in c["knobs"])
            lines.append(f"| {env_label(result['config']['env_id'])} | {c['group']} | {c['kind']} | {len(c['dims'])} | {knobs} | "
                         f"{100 * c['constants_search_value']:.2f} → {100 * c['best_search_value']:.2f} (trial {c['best_trial']}) | "
                         f"{100 * c['win_rate']:.0f} % | {c['diverged']} | {c['search_seconds']:.0f} | {c['eval_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def plot_sensitivity(results: Sequence[dict[str, Any]], path: Path, *, title: str) -> Path:
    """A heat map of the paired gains (diverging colours centred on 0), each cell labelled with its gain and
    CI; a bold label where the CI excludes 0; grey where the group was not searched."""
    import matplotlib.pyplot as plt

    from distill_core.common.plots import save_figure

    labels, groups, gain, low, high = gain_matrix(results)
    span = max(0.5, float(np.nanmax(np.abs(np.concatenate([low.ravel(), high.ravel()])))) if np.isfinite(gain).any() else 1.0)
    fig, ax = plt.subplots(figsize=(2.3 * len(groups) + 3.5, 0.75 * len(labels) + 1.8))
    cmap = plt.get_cmap("RdBu").with_extremes(bad="#dddddd")
    image = ax.imshow(np.ma.masked_invalid(gain), cmap=cmap, vmin=-span, vmax=span, aspect="auto")
    for i in range(len(labels)):
        for j in range(len(groups)):
            if np.isnan(gain[i, j]):
                ax.text(j, i, "—", ha="center", va="center", fontsize=9)
                continue
            clear = low[i, j] > 0 or high[i, j] < 0
            ax.text(j, i, f"{gain[i, j]:+.2f}\n[{low[i, j]:+.2f}, {high[i, j]:+.2f}]", ha="center", va="center",
                    fontsize=8, fontweight="bold" if clear else "normal")
    ax.set_xticks(range(len(groups)), ["\n".join(textwrap.wrap(group_label(g), 12)) for g in groups])
    ax.set_yticks(range(len(labels)), ["\n".join(textwrap.wrap(label, 32)) for label in labels], fontsize=8)
    fig.colorbar(image, ax=ax, label="paired gain over the constants (pp)")
    ax.set_title("\n".join(textwrap.wrap(title, 70)), fontsize=9)
    return save_figure(fig, path)


__all__ = ["compact_knobs", "env_label", "gain_matrix", "group_label", "plot_sensitivity", "sensitivity_markdown"]
