"""Reports of evaluations: markdown tables and JSON of a headroom run, and the text helpers every report
uses (percentages, signed points, intervals, seed ranges)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from agents.evaluation.episodes import BASELINE, METRIC, OBJECTIVE
from agents.evaluation.headroom import HeadroomResult
from agents.evaluation.learners import WHOLE_RUN_LEARNERS
from agents.evaluation.plots import plot_differences
from agents.evaluation.statistics import PolicySummary

#: the headroom JSON's format tag
REPORT_FORMAT = "distill-gym/headroom/v1"


def markdown_report(result: HeadroomResult) -> str:
    """The summary table, the rank correlations, the searched knobs and the notes, as markdown."""
    from distill_core.common.report import markdown_table

    cfg = result.config
    metric = cfg.metric.replace("_", " ")
    lines = [f"## Headroom on {cfg.env_id}", "",
             f"{len(cfg.eval_seeds)} held-out seeds ({seed_text(cfg.eval_seeds)}), the same for every policy; "
             f"differences are final {metric} minus `{BASELINE}`'s on the same seed, in percentage points "
             f"(bootstrap: {cfg.resamples} resamples, seed {cfg.bootstrap_seed}; t: paired Student-t).", "",
             summary_table(result.summaries, cfg.metric, cfg.objective), ""]
    corr = result.correlations
    lines += [f"Spearman ρ(return, final {metric}): {rho_text(corr['over_policies'])} over {corr['policies']} policies "
              f"(means), {rho_text(corr['over_episodes'])} over {corr['episodes']} episodes.", ""]
    if result.searches:
        lines += [f"Searches: {cfg.sampler} (seed {cfg.search_seed}), {cfg.trials} trials each on "
                  f"{len(cfg.train_seeds)} training seeds ({seed_text(cfg.train_seeds)}), maximising the mean "
                  f"{cfg.objective}; trial 0 is the constants."]
        for kind, s in result.searches.items():
            constants = s.trials[0]["value"]
            lines.append(f"- {kind}: best trial {s.best['number']}, {cfg.objective} {s.best['value']:.4f} "
                         f"(constants {constants if constants is None else f'{constants:.4f}'}) over {', '.join(s.space.dims)}; "
                         f"{s.seconds:.0f} s")
        lines.append("")
    columns = list(result.knob_table)
    if len(columns) > 1:
        entries = list(result.knob_table["constant"])
        lines += [markdown_table(["knob", *columns], [[e, *(f"{result.knob_table[c][e]:.4g}" for c in columns)] for e in entries]), ""]
    if result.learners:
        lines += ["Learners: " + ", ".join(learner_text(k, v) for k, v in result.learners.items()), ""]
    lines += [f"Note: {note}." for note in result.notes]
    return "\n".join(lines).rstrip() + "\n"


def learner_text(name: str, learner: dict[str, Any]) -> str:
    """``ppo 11000 steps (1512 s)``, ``ppo_schedule on DistillGym/...-Schedule-v0 832 steps (...)`` or
    ``ppo trained before in <folder>``."""
    where = f" on {learner['env_id']}" if name in WHOLE_RUN_LEARNERS and learner.get("env_id") else ""
    if learner.get("trained_before"):
        return f"{name} trained before in {learner['model_dir']}"
    return f"{name}{where} {learner['timesteps']} steps ({learner['seconds']:.0f} s)"


def summary_table(summaries: Sequence[PolicySummary], metric: str = METRIC, objective: str = OBJECTIVE) -> str:
    """The policies' summaries as a markdown table (differences to :data:`BASELINE` in points)."""
    from distill_core.common.report import markdown_table

    rows = [[s.policy, s.episodes, percent_text(s.metric_mean), "0 (reference)" if s.policy == BASELINE else points_text(s.diff_mean),
             "" if s.policy == BASELINE else interval_text(s.diff_bootstrap), "" if s.policy == BASELINE else interval_text(s.diff_t),
             "" if s.policy == BASELINE else f"{100 * s.wins:.0f} %", percent_text(s.objective_mean), f"{s.return_mean:.4f}",
             s.diverged, f"{s.seconds_per_episode:.2f}"] for s in summaries]
    metric = metric.replace("_", " ")
    return markdown_table(["policy", "episodes", f"final {metric} %", f"Δ vs {BASELINE} (pp)", "bootstrap 95 % CI",
                           "t 95 % CI", "wins", f"{objective.replace('_', ' ')} %", "return (data-free)",
                           "diverged", "s / episode"], rows)


def percent_text(value: float) -> str:
    """A fraction as a percentage (– when not finite)."""
    return f"{100 * value:.2f}" if math.isfinite(value) else "–"


def points_text(value: float) -> str:
    """A difference of fractions in signed percentage points (– when not finite)."""
    return f"{100 * value:+.2f}" if math.isfinite(value) else "–"


def interval_text(bounds: tuple[float, float]) -> str:
    """An interval of differences in percentage points (– when not finite)."""
    return f"[{points_text(bounds[0])}, {points_text(bounds[1])}]" if all(map(math.isfinite, bounds)) else "–"


def rho_text(value: float) -> str:
    """A rank correlation for a report (a dash with the reason when it is not finite)."""
    return "– (too few or constant values)" if not math.isfinite(value) else f"{value:+.3f}"


def seed_text(seeds: Sequence[int]) -> str:
    """Seeds for a report: ``2000–2019`` for a run of consecutive seeds, else a list."""
    seeds = list(seeds)
    if seeds and seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}–{seeds[-1]}" if len(seeds) > 1 else str(seeds[0])
    return ", ".join(map(str, seeds))


def report_json(result: HeadroomResult) -> dict[str, Any]:
    """Everything of a run as JSON values (NaN as null): configuration, searches with every trial,
    learners, the policies evaluated, per-episode rows, summaries, correlations, knobs, notes, timings and
    the runtime (thread count, library versions)."""
    from agents.rollout import runtime_info

    return json_safe({
        "format": REPORT_FORMAT, "config": asdict(result.config), "runtime": runtime_info(),
        "searches": {k: s.to_json() for k, s in result.searches.items()}, "learners": result.learners,
        "policies": [asdict(s) for s in result.specs], "summaries": [asdict(s) for s in result.summaries],
        "correlations": result.correlations, "knobs": result.knob_table, "notes": result.notes,
        "seconds": result.seconds, "episodes": result.rows,
    })


def json_safe(value: Any) -> Any:
    """``value`` with tuples as lists, numpy scalars as Python ones and non-finite floats as ``None``."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_report(result: HeadroomResult, out: Path) -> dict[str, Path]:
    """Write ``headroom.json``, ``headroom.md``, ``headroom.png`` and the evaluation traces
    (``episodes.jsonl``) into ``out``; returns their paths by name."""
    from agents.rollout import EpisodeTrace, write_traces
    from distill_core.common.report import write_json, write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = result.config
    paths = {"json": write_json(report_json(result), out / "headroom.json")}
    paths["md"] = write_text(markdown_report(result), out / "headroom.md")
    paths["png"] = plot_differences(
        result.summaries, out / "headroom.png", ylabel=f"Δ final {cfg.metric.replace('_', ' ')} (pp)",
        title=f"{cfg.env_id}: final {cfg.metric.replace('_', ' ')} minus {BASELINE}'s, paired over "
              f"{len(cfg.eval_seeds)} held-out seeds (bootstrap 95 % CI)")
    paths["traces"] = write_traces([EpisodeTrace(**t) for t in result.traces], out / "episodes.jsonl")
    return paths
