"""The predictive-validity study's numbers, table and scatter: small pure functions over the rows (gains in
points of final test accuracy over the paper's constants, paired seed by seed), plotting apart."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.evaluation.episodes import BASELINE, METRIC
from agents.evaluation.statistics import bootstrap_ci, spearman
from agents.evaluation.validity import ValidityResult, learner_groups, tier_name

#: how many of the fast tier's best-ranked policies are re-read on the validation tier
TOP = 3
#: a policy the fast tier scores within this many points of the constants is one it would keep: the
#: agreement among those says whether it ranks the viable policies, not only the ones that break a student
VIABLE = 2.0


def gain_matrix(rows: Sequence[dict[str, Any]], tier: str, policies: Sequence[str], seeds: Sequence[int],
                metric: str = METRIC) -> np.ndarray:
    """``(policies, seeds)`` paired gains in points over :data:`BASELINE` on ``tier`` (NaN where a run is missing).

    :raises ValueError: the baseline lacks a seed (no gain could be paired).
    """
    score = {(r["policy"], r["seed"]): 100.0 * float(r.get(metric, np.nan)) for r in rows if r["tier"] == tier}
    missing = [s for s in seeds if (BASELINE, s) not in score]
    if missing:
        raise ValueError(f"{tier}: the constants were not run on seeds {missing}; no gain can be paired there")
    return np.array([[score.get((p, s), np.nan) - score[(BASELINE, s)] for s in seeds] for p in policies])


def rank_agreement(fast: np.ndarray, valid: np.ndarray, *, reps: int = 2000, seed: int = 0,
                   level: float = 0.95) -> tuple[float, float, float]:
    """Spearman's ρ between two tiers' mean gains over policies, with a bootstrap CI that resamples the
    policies and, within each tier, the test seeds (both sources of the ρ's noise).

    :param fast: ``(policies, seeds)`` gains on the fast tier.
    :param valid: ``(policies, seeds)`` gains on the validation tier (same policies, in the same order).
    :return: ``(ρ, low, high)``.
    """
    rho = spearman(np.nanmean(fast, axis=1), np.nanmean(valid, axis=1))
    rng = np.random.default_rng(seed)
    n, sf, sv = fast.shape[0], fast.shape[1], valid.shape[1]
    draws = []
    for _ in range(reps):
        p = rng.integers(n, size=n)
        f = np.nanmean(fast[p][:, rng.integers(sf, size=sf)], axis=1)
        v = np.nanmean(valid[p][:, rng.integers(sv, size=sv)], axis=1)
        draws.append(spearman(f, v))
    draws = np.array(draws)
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return rho, float("nan"), float("nan")
    tail = (1 - level) / 2
    return rho, float(np.quantile(draws, tail)), float(np.quantile(draws, 1 - tail))


def policy_kind(label: str) -> str:
    """``constant``, ``random``, ``oracle`` or ``learner`` from a study label."""
    if label == BASELINE:
        return "constant"
    for kind in ("random", "oracle"):
        if label.startswith(kind + "-"):
            return kind
    return "learner"


def agreement_table(result: ValidityResult) -> list[dict[str, Any]]:
    """Per fast tier: ρ over every policy and over those that keep the learning rate at the constants
    (``-lr_fixed`` random settings, the oracles of groups without it, learners of groups that hold it) and over those it
    scores above ``-VIABLE``, with CIs, and the validation gain of the :data:`TOP` policies it ranks best; with each
    policy's mean gain on both tiers (``labels``, ``fast_means``, ``validation_means``) for the scatter."""
    cfg = result.config
    seeds, policies = list(cfg.test_seeds), [p for p in result.policies if p != BASELINE]
    valid = gain_matrix(result.rows, cfg.validation_id, policies, seeds)
    held = {f"{g.label}-seed{s}" for g in learner_groups(cfg) if g.holds_learning_rate for s in cfg.learner_seeds}
    fixed = [i for i, p in enumerate(policies)
             if p.endswith("-lr_fixed") or p in held or (policy_kind(p) == "oracle" and "learning_rate" not in p)]
    valid_means = np.nanmean(valid, axis=1)
    table = []
    for env_id in cfg.fast_ids:
        fast = gain_matrix(result.rows, env_id, policies, seeds)
        rho = rank_agreement(fast, valid, reps=cfg.resamples, seed=cfg.bootstrap_seed)
        rho_fixed = rank_agreement(fast[fixed], valid[fixed], reps=cfg.resamples, seed=cfg.bootstrap_seed)
        means = np.nanmean(fast, axis=1)
        viable = np.flatnonzero(means > -VIABLE)
        rho_viable = rank_agreement(fast[viable], valid[viable], reps=cfg.resamples, seed=cfg.bootstrap_seed)
        order = np.argsort(-means)[:TOP]
        table.append({"tier": env_id, "policies": len(policies), "rho": rho, "lr_fixed_policies": len(fixed),
                      "rho_lr_fixed": rho_fixed, "viable_policies": len(viable), "rho_viable": rho_viable,
                      "labels": policies, "fast_means": means.tolist(), "validation_means": valid_means.tolist(),
                      "top": [{"policy": policies[i], "fast_gain": float(means[i]),
                               "validation_gain": float(valid_means[i]),
                               "validation_ci": bootstrap_ci(valid[i][np.isfinite(valid[i])], resamples=cfg.resamples,
                                                             seed=cfg.bootstrap_seed)} for i in order]})
    return table


def learner_table(result: ValidityResult) -> list[dict[str, Any]]:
    """Per learner and tier: the IQM of its paired gains over its training seeds × test seeds with rliable's
    stratified-bootstrap CI, and the mean gain's bootstrap CI."""
    from agents.evaluation.aggregate import iqm_intervals

    cfg = result.config
    seeds = list(cfg.test_seeds)
    table = []
    for group in learner_groups(cfg):
        name = group.label
        labels = [f"{name}-seed{s}" for s in cfg.learner_seeds]
        if not set(labels) <= set(result.policies):  # a study reported in part (--policies)
            continue
        for env_id in (cfg.validation_id, *cfg.fast_ids):
            gains = gain_matrix(result.rows, env_id, labels, seeds)
            point, low, high = iqm_intervals({name: gains}, reps=cfg.resamples, seed=cfg.bootstrap_seed)[name]
            table.append({"learner": name, "tier": env_id, "iqm": point, "iqm_ci": (low, high), "mean": float(gains.mean()),
                          "mean_ci": bootstrap_ci(gains.mean(axis=0), resamples=cfg.resamples, seed=cfg.bootstrap_seed)})
    return table


def gains_csv(result: ValidityResult) -> str:
    """One line per (tier, policy): its kind, mean paired gain in points and bootstrap CI, mean accuracy."""
    cfg = result.config
    seeds = list(cfg.test_seeds)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["tier", "policy", "kind", "gain_pp", "ci_low", "ci_high", "accuracy", "seeds"])
    for env_id in (cfg.validation_id, *cfg.fast_ids):
        gains = gain_matrix(result.rows, env_id, result.policies, seeds)
        acc = {p: [100.0 * float(r[METRIC]) for r in result.rows if r["tier"] == env_id and r["policy"] == p] for p in result.policies}
        for policy, row in zip(result.policies, gains):
            low, high = bootstrap_ci(row[np.isfinite(row)], resamples=cfg.resamples, seed=cfg.bootstrap_seed)
            writer.writerow([tier_name(env_id), policy, policy_kind(policy), f"{np.nanmean(row):.3f}", f"{low:.3f}",
                             f"{high:.3f}", f"{np.mean(acc[policy]):.3f}", len(acc[policy])])
    return buffer.getvalue()


def rows_csv(result: ValidityResult) -> str:
    """Every episode's row: tier, policy, seed, final test and validation accuracy, return, diverged, seconds."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = ["policy", "seed", METRIC, "val_accuracy", "return", "diverged", "seconds"]
    writer.writerow(["tier", *columns])
    for row in result.rows:
        writer.writerow([tier_name(row["tier"]), *(row.get(c, "") for c in columns)])
    return buffer.getvalue()


def result_from_files(config_path: Path, rows_path: Path) -> ValidityResult:
    """A finished study read back from its ``config.json`` and ``rows.csv`` (as committed under
    ``docs/results/``), so its report and scatter can be made again without re-running it."""
    import dataclasses
    import json

    from agents.evaluation.validity import ValidityConfig

    settings = json.loads(Path(config_path).read_text())
    names = {f.name for f in dataclasses.fields(ValidityConfig)}
    config = ValidityConfig(**{k: v for k, v in settings.items() if k in names})
    ids = {tier_name(i): i for i in (config.validation_id, *config.fast_ids)}
    rows, policies = [], []
    with open(rows_path, newline="") as handle:
        for record in csv.DictReader(handle):
            rows.append({"tier": ids[record["tier"]], "policy": record["policy"], "seed": int(record["seed"]),
                         METRIC: float(record[METRIC]), "val_accuracy": float(record["val_accuracy"]),
                         "return": float(record["return"]), "diverged": record["diverged"] == "True",
                         "seconds": float(record["seconds"])})
            if record["policy"] not in policies:
                policies.append(record["policy"])
    return ValidityResult(config, rows, policies, float("nan"))


def markdown_report(result: ValidityResult, agreement: list[dict[str, Any]] | None = None) -> str:
    """The agreement table, the fast tier's best policies on the validation tier, and the learners.

    :param agreement: :func:`agreement_table` of ``result`` when it is at hand (its bootstrap is not cheap)."""
    def points_text(value: float) -> str:  # the gains here are in points already
        return f"{value:+.2f}" if np.isfinite(value) else "–"

    def interval_text(bounds: tuple[float, float]) -> str:
        return f"[{points_text(bounds[0])}, {points_text(bounds[1])}]"

    cfg = result.config
    lines = [f"Predictive validity: {len(result.policies)} policies on test seeds {cfg.test_seeds[0]}-{cfg.test_seeds[-1]} "
             f"({len(cfg.test_seeds)}) of every tier's held-out instances; validation tier {tier_name(cfg.validation_id)}; "
             f"gains in points of final test accuracy over the constants, paired by seed.", "",
             f"| fast tier | Spearman ρ (all policies) | 95 % CI | ρ, lr at ×1 | 95 % CI | ρ, above −{VIABLE:g} there | 95 % CI "
             "| its top 3 on the validation tier |",
             "|---|---|---|---|---|---|---|---|"]
    for entry in agreement if agreement is not None else agreement_table(result):
        rho, low, high = entry["rho"]
        fr, flow, fhigh = entry["rho_lr_fixed"]
        vr, vlow, vhigh = entry["rho_viable"]
        top = "; ".join(f"{t['policy']} {points_text(t['validation_gain'])} {interval_text(t['validation_ci'])}" for t in entry["top"])
        lines.append(f"| {tier_name(entry['tier'])} | {points_text(rho)} ({entry['policies']}) | {interval_text((low, high))} | "
                     f"{points_text(fr)} ({entry['lr_fixed_policies']}) | {interval_text((flow, fhigh))} | "
                     f"{points_text(vr)} ({entry['viable_policies']}) | {interval_text((vlow, vhigh))} | {top} |")
    lines += ["", "| learner | tier | IQM gain (training seeds × test seeds) | 95 % stratified-bootstrap CI | mean | 95 % CI |",
              "|---|---|---|---|---|---|"]
    for entry in learner_table(result):
        lines.append(f"| {entry['learner']} ({len(cfg.learner_seeds)} seeds) | {tier_name(entry['tier'])} | "
                     f"{points_text(entry['iqm'])} | {interval_text(entry['iqm_ci'])} | {points_text(entry['mean'])} | "
                     f"{interval_text(entry['mean_ci'])} |")
    return "\n".join(lines) + "\n"


def plot_validity(result: ValidityResult, path: Path, agreement: list[dict[str, Any]] | None = None) -> Path:
    """One scatter per fast tier: each policy's mean gain there (x) against on the validation tier (y); below
    it, the same for the policies the fast tier scores above ``-VIABLE`` (the ranking a user relies on)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from distill_core.common.plots import save_figure

    cfg = result.config
    colours = {"random": "tab:grey", "oracle": "tab:blue", "learner": "tab:orange"}
    table = {e["tier"]: e for e in (agreement if agreement is not None else agreement_table(result))}
    fig, axes = plt.subplots(2, len(cfg.fast_ids), figsize=(4.6 * len(cfg.fast_ids), 8.4), squeeze=False)
    for column, env_id in enumerate(cfg.fast_ids):
        entry = table[env_id]
        policies, fast, valid = entry["labels"], np.array(entry["fast_means"]), np.array(entry["validation_means"])
        for row, (key, what) in enumerate((("rho", "all policies"), ("rho_viable", f"above −{VIABLE:g} there"))):
            ax = axes[row][column]
            shown = np.ones(len(policies), bool) if row == 0 else fast > -VIABLE
            for kind, colour in colours.items():
                keep = [i for i, p in enumerate(policies) if policy_kind(p) == kind and shown[i]]
                ax.scatter(fast[keep], valid[keep], c=colour, label=kind, s=28, edgecolors="black", linewidths=0.4)
            ax.axhline(0, color="black", lw=0.6)
            ax.axvline(0, color="black", lw=0.6)
            rho, low, high = entry[key]
            ax.set_title(f"{tier_name(env_id)}, {what} ({int(shown.sum())})\nρ = {rho:+.2f} [{low:+.2f}, {high:+.2f}]",
                         fontsize=10)
            ax.set_xlabel("gain on the fast tier (points)")
            ax.grid(alpha=0.3)
    for row in axes:
        row[0].set_ylabel(f"gain on {tier_name(cfg.validation_id)} (points)")
    axes[0][0].legend(fontsize=8)
    return save_figure(fig, path)


def write_validity(result: ValidityResult, out: Path, header: str = "") -> dict[str, Path]:
    """``config.json``, ``report.md`` (``header`` first), ``gains.csv``, ``rows.csv`` and ``validity.png`` in ``out``
    (the first and ``rows.csv`` are what :func:`result_from_files` reads back)."""
    from distill_core.common.report import write_json, write_text

    out = Path(out)
    agreement = agreement_table(result)  # once, for the report and the scatter
    return {"config": write_json(result.config.settings(), out / "config.json"),  # the CellStore's own record
            "report": write_text(header + markdown_report(result, agreement), out / "report.md"),
            "gains": write_text(gains_csv(result), out / "gains.csv"),
            "rows": write_text(rows_csv(result), out / "rows.csv"),
            "plot": plot_validity(result, out / "validity.png", agreement)}


__all__ = ["TOP", "VIABLE", "agreement_table", "gain_matrix", "gains_csv", "learner_table", "markdown_report", "plot_validity",
           "policy_kind", "rank_agreement", "result_from_files", "rows_csv", "write_validity"]
