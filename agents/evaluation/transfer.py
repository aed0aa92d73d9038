"""Transfer: the policies of a headroom run, unchanged, on another env (another data set or teacher).

A policy that beats the paper's constants only on the scenarios it was trained on has learned those
scenarios; one that still beats them on a data set it never saw has learned something about the
method. :func:`run_transfer` reads a finished headroom run (``headroom.json``: the searched static
action and schedule, the trained learners' folders), runs every policy as it is on the held-out seeds
of ``env_id`` — paired with ``constant`` on the same seeds — and summarises like the headroom
benchmark. Nothing is re-searched or re-trained; the learners keep their observation normalisation.

    result = run_transfer(TransferConfig(Path("runs/bench/headroom/SSDKD-Digits-SmallBuffer-Scenarios-v0/headroom.json"),
                                         "DistillGym/SSDKD-MNIST1D-SmallBuffer-Scenarios-v0", {"split": "heldout"}),
                          Runner("local"))
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agents.evaluation.backends import Runner
from agents.evaluation.episodes import (BASELINE, DEFAULT_EVAL_SEEDS, METRIC, OBJECTIVE, PolicySpec, cached_env,
                                        evaluate_policies)
from agents.evaluation.plots import plot_differences
from agents.evaluation.reports import json_safe, rho_text, seed_text, summary_table
from agents.evaluation.statistics import PolicySummary, rank_correlations, summarise


@dataclass
class TransferConfig:
    """What to carry over, and where to.

    :param source: the headroom run's ``headroom.json``.
    :param env_id: the env the policies are run on.
    :param env_kwargs: its configuration (e.g. ``split=heldout``).
    :param eval_seeds: the seeds every policy runs on.
    :param policies: which of the source's policies (default: all it evaluated).
    :param resamples: bootstrap resamples; ``bootstrap_seed`` its seed.
    """

    source: Path
    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    eval_seeds: tuple[int, ...] = DEFAULT_EVAL_SEEDS
    policies: tuple[str, ...] | None = None
    resamples: int = 10_000
    bootstrap_seed: int = 0


@dataclass
class TransferResult:
    """What :func:`run_transfer` found: per-episode rows (their traces apart), summaries, correlations."""

    config: TransferConfig
    source_env_id: str
    specs: list[PolicySpec]
    rows: list[dict[str, Any]]
    traces: list[dict[str, Any]]
    summaries: list[PolicySummary]
    correlations: dict[str, Any]
    seconds: float


def source_policies(report: dict[str, Any], names: tuple[str, ...] | None = None) -> list[PolicySpec]:
    """The policies a headroom report evaluated (``constant`` first), or the ``names`` among them.

    :raises ValueError: a name the report does not hold, or a learner whose folder is gone.
    """
    specs = [PolicySpec(**p) for p in report["policies"]]
    by_label = {s.label: s for s in specs}
    if names is not None:
        missing = [n for n in names if n not in by_label]
        if missing:
            raise ValueError(f"the headroom run has no policy {missing}: it evaluated {list(by_label)}")
        specs = [by_label[n] for n in dict.fromkeys((BASELINE, *names))]
    for spec in specs:
        if spec.model_dir is not None and not (Path(spec.model_dir) / "model.zip").is_file():
            raise ValueError(f"{spec.label}'s trained model is gone ({spec.model_dir}/model.zip): rerun the headroom "
                             f"benchmark with --out kept, or leave {spec.label} out")
    return specs


def run_transfer(config: TransferConfig, runner: Runner, *, progress: bool = True) -> TransferResult:
    """Run the source's policies unchanged on ``config.env_id`` and compare each with ``constant``.

    :raises ValueError: a missing or foreign report, or an env whose actions or observations differ from
        the source env's (a policy cannot act there unchanged).
    """
    start = time.perf_counter()
    try:
        report = json.loads(Path(config.source).read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read the headroom report {config.source}: {err}; run scripts/bench_headroom.py first") from err
    if "policies" not in report or "config" not in report:
        raise ValueError(f"{config.source} is not a headroom report (no 'policies' / 'config'): pass the headroom.json "
                         "that scripts/bench_headroom.py wrote")
    source_env_id = report["config"]["env_id"]
    source = cached_env(source_env_id, report["config"]["eval_env_kwargs"]).unwrapped
    target = cached_env(config.env_id, config.env_kwargs).unwrapped
    for what in ("action_names", "observation_names"):
        if tuple(getattr(source, what)) != tuple(getattr(target, what)):
            raise ValueError(f"{config.env_id} has other {what.replace('_', ' ')} than {source_env_id}: "
                             f"its policies cannot act there unchanged")
    specs = source_policies(report, config.policies)
    rows = evaluate_policies(specs, config.env_id, config.env_kwargs, config.eval_seeds, runner, progress=progress)
    traces = [row.pop("trace") for row in rows]
    summaries = summarise(rows, metric=METRIC, objective=OBJECTIVE, resamples=config.resamples, seed=config.bootstrap_seed)
    return TransferResult(config, source_env_id, specs, rows, traces, summaries, rank_correlations(rows, METRIC),
                          time.perf_counter() - start)


def markdown_report(result: TransferResult) -> str:
    """The summary table and the rank correlations, as markdown."""
    cfg = result.config
    corr = result.correlations
    return "\n".join([
        f"## Transfer from {result.source_env_id} to {cfg.env_id}", "",
        f"The policies searched and trained on {result.source_env_id}, unchanged, on {len(cfg.eval_seeds)} held-out "
        f"seeds ({seed_text(cfg.eval_seeds)}) of {cfg.env_id} ({cfg.env_kwargs or 'its defaults'}); differences are "
        f"final test accuracy minus `{BASELINE}`'s on the same seed, in percentage points.", "",
        summary_table(result.summaries), "",
        f"Spearman ρ(return, final test accuracy): {rho_text(corr['over_policies'])} over {corr['policies']} policies, "
        f"{rho_text(corr['over_episodes'])} over {corr['episodes']} episodes. {result.seconds:.0f} s.", ""])


def write_report(result: TransferResult, out: Path) -> dict[str, Path]:
    """Write ``transfer.json``, ``transfer.md``, ``transfer.png`` and the traces (``episodes.jsonl``)."""
    from agents.rollout import EpisodeTrace, runtime_info, write_traces
    from distill_core.common.report import write_json, write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"config": {**asdict(result.config), "source": str(result.config.source)}, "source_env_id": result.source_env_id,
               "runtime": runtime_info(), "policies": [asdict(s) for s in result.specs],
               "summaries": [asdict(s) for s in result.summaries], "correlations": result.correlations,
               "seconds": result.seconds, "episodes": result.rows}
    paths = {"json": write_json(json_safe(payload), out / "transfer.json"),
             "md": write_text(markdown_report(result), out / "transfer.md")}
    paths["png"] = plot_differences(result.summaries, out / "transfer.png", ylabel="Δ final test accuracy (pp)",
                                    title=f"{result.source_env_id}'s policies on {result.config.env_id}: final test "
                                          f"accuracy minus {BASELINE}'s, paired over {len(result.config.eval_seeds)} seeds")
    paths["traces"] = write_traces([EpisodeTrace(**t) for t in result.traces], out / "episodes.jsonl")
    return paths
