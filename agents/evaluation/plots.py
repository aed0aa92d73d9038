"""Plots of evaluations (computing stays in :mod:`agents.evaluation.statistics` and
:mod:`agents.evaluation.aggregate`): paired differences to the baseline per policy."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from agents.evaluation.episodes import BASELINE
from agents.evaluation.statistics import PolicySummary


def plot_differences(summaries: Sequence[PolicySummary], path: Path, *, title: str, ylabel: str) -> Path:
    """A bar per policy (the baseline left out): its mean paired difference in percentage points, with
    the bootstrap CI as an (asymmetric) error bar; green/red when the CI excludes 0, grey otherwise."""
    import distill_core.common.plots  # noqa: F401  (headless matplotlib)
    import matplotlib.pyplot as plt

    shown = [s for s in summaries if s.policy != BASELINE]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.0 * len(shown) + 2.5), 4.2))
    if shown:
        means = np.array([100 * s.diff_mean for s in shown])
        low = np.array([100 * s.diff_bootstrap[0] for s in shown])
        high = np.array([100 * s.diff_bootstrap[1] for s in shown])
        colors = ["tab:green" if lo > 0 else "tab:red" if hi < 0 else "tab:gray" for lo, hi in zip(low, high)]
        bars = ax.bar([s.policy for s in shown], means, color=colors,
                      yerr=np.nan_to_num(np.vstack([means - low, high - means])), capsize=5)
        ax.bar_label(bars, labels=[f"{m:+.2f}" for m in means], padding=3, fontsize=8)
        span = np.nanmax(np.abs(np.concatenate([low, high, means]))) if np.isfinite(np.concatenate([low, high])).any() else 1.0
        ax.set_ylim(-1.25 * max(span, 0.5), 1.25 * max(span, 0.5))
        plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    else:
        ax.text(0.5, 0.5, f"only {BASELINE} was evaluated", ha="center", va="center", transform=ax.transAxes)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_ylabel(ylabel)
    ax.set_title("\n".join(textwrap.wrap(title, 60)), fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_leaderboard(entries: Sequence, profiles: dict, path: Path, *, title: str) -> Path:
    """Three panels: each policy's IQM gain over the constants with its 95 % CI; its probability of
    improvement over the constants with its CI; the performance profile (share of runs × seeds whose gain
    exceeds τ, with CI bands)."""
    import distill_core.common.plots  # noqa: F401  (headless matplotlib)
    import matplotlib.pyplot as plt

    shown = [e for e in entries if e.policy != BASELINE and e.runs]
    fig, axes = plt.subplots(1, 3, figsize=(15.0, max(3.6, 0.42 * len(shown) + 2.0)))
    names = [f"{e.policy} ({e.runs})" for e in shown]
    y = np.arange(len(shown))
    colours = plt.get_cmap("tab10")
    for ax, value, ci, label, ref in ((axes[0], "iqm", "iqm_ci", "IQM gain over constant (points)", 0.0),
                                      (axes[1], "improvement", "improvement_ci", "P(better than constant)", 0.5)):
        points = np.array([getattr(e, value) for e in shown], dtype=float)
        low = np.array([getattr(e, ci)[0] for e in shown], dtype=float)
        high = np.array([getattr(e, ci)[1] for e in shown], dtype=float)
        ax.errorbar(points, y, xerr=np.nan_to_num(np.vstack([points - low, high - points])), fmt="o", capsize=4,
                    color="black", ecolor="tab:blue")
        ax.axvline(ref, color="grey", linewidth=0.8, linestyle="--")
        ax.set_yticks(y, names if ax is axes[0] else [""] * len(shown))
        ax.set_xlabel(label)
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    taus = np.asarray(profiles.get("taus", []))
    for i, e in enumerate(shown):
        profile = profiles.get(e.policy)
        if profile is None:
            continue
        ci = np.asarray(profile["ci"])
        axes[2].plot(taus, profile["profile"], label=e.policy, color=colours(i % 10))
        axes[2].fill_between(taus, ci[0], ci[1], color=colours(i % 10), alpha=0.15)
    axes[2].axvline(0.0, color="grey", linewidth=0.8, linestyle="--")
    axes[2].set_xlabel("τ (gain over constant, points)")
    axes[2].set_ylabel("share of runs × seeds with gain > τ")
    if shown:
        axes[2].legend(fontsize=7, loc="lower left")
    fig.suptitle("\n".join(textwrap.wrap(title + " (runs: training seeds; 95 % stratified-bootstrap CIs)", 150)), fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
