"""The leaderboard's numbers and files: the tidy per-episode scores (``scores.csv``, one row per policy,
training seed and held-out seed, for anyone to re-analyse), rliable's aggregates over training seeds ×
held-out seeds (``leaderboard.json``, ``leaderboard.md``) and the plot (``leaderboard.png``).

The score of an episode is its gain over the paper's constants on the same held-out seed, in
percentage points of final test accuracy (paired: the seed's luck cancels); the probability of
improvement compares final accuracies with the constants' seed by seed.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.evaluation.aggregate import iqm_intervals, performance_profiles, probability_of_improvement
from agents.evaluation.episodes import BASELINE
from agents.evaluation.leaderboard import LeaderboardResult
from agents.evaluation.reports import interval_text, json_safe, seed_text

#: the tidy file's leading columns (final metrics follow, sorted)
SCORE_COLUMNS = ("policy", "kind", "run", "seed", "instance", "gain_pp")
#: thresholds of the performance profile, in points of gain over the constants
PROFILE_TAUS = tuple(float(t) for t in np.linspace(-10.0, 10.0, 41))


def score_matrices(rows: Sequence[dict[str, Any]], metric: str, *, gains: bool = True) -> dict[str, np.ndarray]:
    """Per policy, a ``(runs, held-out seeds)`` matrix: the gain over ``constant`` on the same seed in
    percentage points (``gains``), or ``metric`` itself. Runs and seeds are sorted.

    :raises ValueError: a policy run that lacks a seed the constants were evaluated on, or the reverse.
    """
    by: dict[str, dict[int, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for row in rows:
        by[row["policy"]][row["run"]][row["seed"]] = float(row.get(metric, math.nan))
    if BASELINE not in by:
        raise ValueError(f"no {BASELINE!r} rows: the leaderboard compares every policy with the paper's constants")
    reference = next(iter(by[BASELINE].values()))
    seeds = sorted(reference)
    out = {}
    for policy, runs in by.items():
        matrix = []
        for run in sorted(runs):
            if sorted(runs[run]) != seeds:
                raise ValueError(f"{policy} run {run} was evaluated on other seeds than {BASELINE}: not paired")
            matrix.append([runs[run][s] - reference[s] if gains else runs[run][s] for s in seeds])
        out[policy] = np.array(matrix) * (100.0 if gains else 1.0)
    return out


@dataclass
class LeaderboardEntry:
    """One policy's line: gains over the constants in points, accuracy as a fraction.

    :param runs: finished training seeds; ``failed``: those that raised.
    :param iqm: the IQM of the gains over runs × held-out seeds, with its stratified-bootstrap CI.
    :param improvement: P(final accuracy > the constants' on a seed), with its CI.
    """

    policy: str
    kind: str
    runs: int
    failed: int
    episodes: int
    accuracy_mean: float
    gain_mean: float
    iqm: float
    iqm_ci: tuple[float, float]
    improvement: float
    improvement_ci: tuple[float, float]
    diverged: int
    train_seconds: float


def leaderboard_entries(result: LeaderboardResult) -> tuple[list[LeaderboardEntry], dict[str, Any]]:
    """The entries in the config's order, and the performance profiles (``taus``, and per policy the
    profile and its CI)."""
    cfg = result.config
    gains = score_matrices(result.rows, cfg.metric)
    accuracy = score_matrices(result.rows, cfg.metric, gains=False)
    iqms = iqm_intervals(gains, reps=cfg.reps, seed=cfg.bootstrap_seed)
    others = {k: v for k, v in accuracy.items() if k != BASELINE}
    poi = probability_of_improvement(others, accuracy[BASELINE], reps=cfg.reps, seed=cfg.bootstrap_seed) if others else {}
    profiles = performance_profiles(gains, PROFILE_TAUS, reps=cfg.reps, seed=cfg.bootstrap_seed)
    failed = defaultdict(int)
    for record in result.failed:
        failed[record["policy"]] += 1
    train = defaultdict(list)
    for cell in result.cells:
        if cell["train"].get("seconds") is not None:
            train[cell["policy"]].append(float(cell["train"]["seconds"]))
    entries = []
    for policy in cfg.policies:
        if policy not in gains:
            entries.append(LeaderboardEntry(policy, "", 0, failed[policy], 0, math.nan, math.nan, math.nan, (math.nan,) * 2,
                                            math.nan, (math.nan,) * 2, 0, math.nan))
            continue
        own = [r for r in result.rows if r["policy"] == policy]
        p, lo, hi = poi.get(policy, (math.nan, math.nan, math.nan))
        entries.append(LeaderboardEntry(
            policy, own[0]["kind"], gains[policy].shape[0], failed[policy], len(own), float(accuracy[policy].mean()),
            float(gains[policy].mean()), iqms[policy][0], iqms[policy][1:], p, (lo, hi),
            sum(bool(r.get("diverged")) for r in own), float(np.mean(train[policy])) if train[policy] else math.nan))
    return entries, {"taus": list(PROFILE_TAUS), **{k: {"profile": v[0].tolist(), "ci": v[1].tolist()} for k, v in profiles.items()}}


def scores_csv(result: LeaderboardResult) -> str:
    """The tidy file: one line per (policy, run, held-out seed), the gain over the constants in points and
    every final metric."""
    gains = score_matrices(result.rows, result.config.metric)
    seeds = sorted({r["seed"] for r in result.rows if r["policy"] == BASELINE})
    runs = {p: sorted({r["run"] for r in result.rows if r["policy"] == p}) for p in gains}
    metrics = sorted({k for r in result.rows for k, v in r.items() if isinstance(v, (int, float)) and k not in SCORE_COLUMNS}
                     - {"scenario_index"})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*SCORE_COLUMNS, *metrics])
    for row in result.rows:
        gain = gains[row["policy"]][runs[row["policy"]].index(row["run"]), seeds.index(row["seed"])]
        instance = row.get("scenario_index")
        writer.writerow([row["policy"], row["kind"], row["run"], row["seed"], "" if instance is None else int(instance),
                         f"{gain:.6g}", *(row.get(k, "") for k in metrics)])
    return buffer.getvalue()


def markdown_report(result: LeaderboardResult, entries: Sequence[LeaderboardEntry]) -> str:
    """The leaderboard as markdown: what was compared on what, the table, the failed runs."""
    from distill_core.common.report import markdown_table

    cfg = result.config
    table = markdown_table(
        ["policy", "kind", "runs", "failed", "episodes", "final test acc %", "mean gain (pp)",
         "IQM gain (pp)", "95 % CI", "P(better than constant)", "95 % CI", "diverged", "training s / run"],
        [[e.policy, e.kind, e.runs, e.failed, e.episodes, f"{100 * e.accuracy_mean:.2f}",
          "0 (reference)" if e.policy == BASELINE else f"{e.gain_mean:+.2f}",
          "" if e.policy == BASELINE else f"{e.iqm:+.2f}",
          "" if e.policy == BASELINE else interval_text(tuple(v / 100 for v in e.iqm_ci)),
          "" if e.policy == BASELINE else f"{e.improvement:.2f}",
          "" if e.policy == BASELINE else f"[{e.improvement_ci[0]:.2f}, {e.improvement_ci[1]:.2f}]",
          e.diverged, "" if not math.isfinite(e.train_seconds) else f"{e.train_seconds:.0f}"] for e in entries])
    lines = [f"## Leaderboard on {cfg.env_id}", "",
             f"{len(cfg.eval_seeds)} held-out seeds ({seed_text(cfg.eval_seeds)}, {cfg.eval_env_kwargs}), the same for every "
             f"policy; training seeds {seed_text(cfg.train_seeds)} for learners and random. Gain: final {cfg.metric.replace('_', ' ')} "
             f"minus `{BASELINE}`'s on the same seed, in points. IQM over runs × seeds with 95 % stratified-bootstrap CIs "
             f"(runs and seeds resampled, {cfg.reps} replications, seed {cfg.bootstrap_seed}); P(better than constant): "
             "rliable's probability of improvement over the constants' accuracy, seed by seed.", "", table, ""]
    if result.searches:
        lines.append(f"Oracles: {cfg.sampler} (seed {cfg.search_seed}), {cfg.trials} trials on {len(cfg.search_seeds)} "
                     f"training seeds ({seed_text(cfg.search_seeds)}, {cfg.train_env_kwargs}), maximising {cfg.objective}; "
                     + "; ".join(f"{k} best trial {s['best']['number']} ({s['seconds']:.0f} s)" for k, s in result.searches.items())
                     + ".")
        lines.append("")
    if result.failed:
        lines += ["Failed runs (retried when the leaderboard is started again):"]
        lines += [f"- {f['policy']} seed {f['run']}: {f['error']}" for f in result.failed]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_leaderboard(result: LeaderboardResult, out: Path) -> dict[str, Path]:
    """Write ``scores.csv``, ``leaderboard.json``, ``leaderboard.md`` and ``leaderboard.png`` into ``out``."""
    from distill_core.common.report import write_json, write_text

    from agents.evaluation.plots import plot_leaderboard
    from agents.rollout import runtime_info

    out = Path(out)
    entries, profiles = leaderboard_entries(result)
    paths = {"scores": write_text(scores_csv(result), out / "scores.csv")}
    paths["json"] = write_json(json_safe({
        "format": "distill-gym/leaderboard-report/v1", "config": asdict(result.config), "runtime": runtime_info(),
        "entries": [asdict(e) for e in entries], "profiles": profiles, "cells": result.cells, "failed": result.failed,
        "searches": {k: {key: s[key] for key in ("kind", "dims", "best", "seconds", "spec")} for k, s in result.searches.items()},
        "seconds": result.seconds}), out / "leaderboard.json")
    paths["md"] = write_text(markdown_report(result, entries), out / "leaderboard.md")
    paths["png"] = plot_leaderboard(entries, profiles, out / "leaderboard.png",
                                    title=f"{result.config.env_id}: gain over the paper's constants")
    return paths
