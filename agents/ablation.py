"""Ablations: agents × training seeds → train where learning, then evaluate every agent on the same
held-out seeds; summarise with 95 % confidence intervals. Jobs run in this process (``local``) or as
Ray tasks (``ray``: a local cluster, or an existing one via its address) — Ray is how a sweep outgrows
one machine."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.backends import BACKENDS, Runner  # noqa: F401  (BACKENDS: the scripts' choices)
from agents.statistics import t_half_width


@dataclass
class Job:
    """One (agent, training seed) cell of an ablation."""

    agent: str
    train_seed: int
    env_id: str
    env_kwargs: dict[str, Any]
    eval_seeds: tuple[int, ...]
    out: str
    timesteps: int | None = None
    hyperparams: dict[str, Any] = field(default_factory=dict)


def run_job(job: Job) -> dict[str, Any]:
    """Train (if the agent learns) and evaluate on the held-out seeds; return the rows and timings.

    Runs in a fresh worker under Ray, so it imports what it needs and pins torch to one thread
    (one job per core; several threads per job would fight over the cores).
    """
    import gymnasium as gym
    import torch

    import envs  # noqa: F401
    from agents.registry import is_learning
    from agents.rollout import run_episode, write_traces
    from agents.training import load_trained, train_agent

    torch.set_num_threads(1)
    out = Path(job.out) / f"{job.agent}_s{job.train_seed}"
    start = time.perf_counter()
    trained = train_agent(job.agent, job.env_id, out=out, seed=job.train_seed, timesteps=job.timesteps,
                          env_kwargs=job.env_kwargs, hyperparams=job.hyperparams, eval_seeds=job.eval_seeds,
                          progress_bar=False, tensorboard=False)
    train_seconds = time.perf_counter() - start
    env = gym.make(job.env_id, **job.env_kwargs)
    policy = load_trained(job.agent, out, env) if is_learning(job.agent) else trained.agent
    traces = [run_episode(env, policy, seed, env_id=job.env_id, env_kwargs=job.env_kwargs, agent_name=job.agent)
              for seed in job.eval_seeds]
    write_traces(traces, out / "traces.jsonl")
    rows = [{"agent": job.agent, "train_seed": job.train_seed, "eval_seed": t.seed, "return": t.episode_return,
             **{k: v for k, v in {**t.outcome, **t.timings}.items() if isinstance(v, (int, float, bool))}} for t in traces]
    return {"agent": job.agent, "train_seed": job.train_seed, "train_seconds": train_seconds,
            "eval_seconds": sum(t.timings["seconds"] for t in traces), "rows": rows,
            "monitor_dir": str(out / "monitor"), "eval_log": str(out / "eval" / "evaluations.npz")}


def run_jobs(jobs: list[Job], backend: str = "local", address: str | None = None, num_cpus: int | None = None) -> list[dict[str, Any]]:
    """Run ``jobs`` here one after another, or as Ray tasks (one CPU each; see :class:`agents.backends.Runner`)."""
    with Runner(backend, address=address, num_cpus=num_cpus) as runner:
        return runner.map(run_job, jobs)


def confidence_interval(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the Student-t confidence interval (half-width 0 for one value)."""
    arr = np.asarray(values, dtype=np.float64)
    return (float(arr.mean()) if len(arr) else float("nan")), t_half_width(arr, level=level)


@dataclass
class AgentSummary:
    agent: str
    episodes: int
    accuracy_mean: float
    accuracy_ci: float
    return_mean: float
    return_ci: float
    train_seconds: float
    eval_seconds: float


def summarise(results: list[dict[str, Any]]) -> list[AgentSummary]:
    """Per agent: final student test accuracy and return, mean ± 95 % CI over all evaluation episodes."""
    by_agent: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for result in results:
        by_agent[result["agent"]].append(result)
    summaries = []
    for agent, agent_results in by_agent.items():
        rows = [row for r in agent_results for row in r["rows"]]
        acc = confidence_interval([row.get("test_accuracy", float("nan")) for row in rows])
        ret = confidence_interval([row["return"] for row in rows])
        summaries.append(AgentSummary(agent, len(rows), *acc, *ret, sum(r["train_seconds"] for r in agent_results),
                                      sum(r["eval_seconds"] for r in agent_results)))
    return summaries


def summary_table(summaries: list[AgentSummary]) -> str:
    from distill_core.common.report import markdown_table

    return markdown_table(
        ["agent", "episodes", "final test acc % (95 % CI)", "return (95 % CI)", "train s", "eval s"],
        [[s.agent, s.episodes, f"{100 * s.accuracy_mean:.2f} ± {100 * s.accuracy_ci:.2f}",
          f"{s.return_mean:.4f} ± {s.return_ci:.4f}", f"{s.train_seconds:.0f}", f"{s.eval_seconds:.0f}"] for s in summaries])


def write_outputs(results: list[dict[str, Any]], out: Path, title: str = "") -> list[AgentSummary]:
    """CSV of every episode, markdown summary, bar chart with CIs, learning curves of the learners."""
    import csv

    from distill_core.common.plots import bar_plot, line_plot

    out.mkdir(parents=True, exist_ok=True)
    rows = [row for r in results for row in r["rows"]]
    keys = sorted({k for row in rows for k in row}, key=lambda k: (k not in ("agent", "train_seed", "eval_seed"), k))
    with (out / "episodes.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    summaries = summarise(results)
    with (out / "summary.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(asdict(summaries[0])))
        writer.writeheader()
        writer.writerows(asdict(s) for s in summaries)
    (out / "summary.md").write_text(summary_table(summaries) + "\n")
    bar_plot({s.agent: 100 * s.accuracy_mean for s in summaries}, out / "accuracy.png",
             errors={s.agent: 100 * s.accuracy_ci for s in summaries}, ylabel="final student test accuracy %",
             title=title or "ablation: mean ± 95 % CI over held-out seeds")
    curves = {}
    for r in results:
        log = Path(r["eval_log"])
        if log.exists():
            data = np.load(log)
            curves[f"{r['agent']} s{r['train_seed']}"] = (data["timesteps"].tolist(), data["results"].mean(axis=1).tolist())
    if curves:
        line_plot(curves, out / "learning_curves.png", xlabel="environment steps", ylabel="mean eval return (held-out seeds)",
                  title="learning curves (EvalCallback on held-out seeds)")
    return summaries
