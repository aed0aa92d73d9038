"""The demo `make demo` runs — the main job on the embedded digits data:

1. load (or train once and cache) the digits teacher;
2. train PPO on the fast tier's one-decision id ``DistillGym/SSDKD-Digits-SmallBuffer-Schedule-v1``:
   each episode is one whole SSD-KD run of a practitioner's size (a replay buffer of 1–2 % of the
   training set, 8–16 rounds, one of several teachers, some trained on long-tailed data), and PPO picks,
   from what is known before the run (its buffer share and round budget), a schedule of α, β, γ, the
   diversity strength, the replace fraction and the student's learning-rate multiplier (the zero action
   is the paper's constants). Its YAML block trains 656 runs, 16 at a time in lockstep, split over two
   worker processes;
3. evaluate PPO (acting its schedules out round by round) and ``constant`` (the paper's knobs) on the
   same 30 held-out seeds of the held-out instances (teachers no policy has seen), paired;
4. say what PPO learned: its mean paired difference to the paper's constants with a 95 % CI, whether
   that CI excludes zero, and where its knobs moved from the paper's; write
   ``runs/demo/{headroom.md, headroom.json, headroom.png}``.

    python scripts/demo.py [--timesteps N] [--eval-seeds 2000-2029] [--out runs/demo]

One torch thread per process: digits-sized networks run faster on one, and a second thread thrashes on
a busy machine.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import numpy as np

from agents.evaluation import HeadroomConfig, Runner, run_headroom, write_report
from agents.evaluation.cli import parse_seeds
from agents.evaluation.episodes import cached_env
from agents.evaluation.oracles import knob_values
from distill_core.data import load_dataset
from distill_core.teachers import get_teacher

ENV_ID = "DistillGym/SSDKD-Digits-SmallBuffer-Scenarios-v1"
#: the learner: PPO choosing one schedule per run (see agents.evaluation.learners)
LEARNER = "ppo_schedule"


def verdict(summary) -> str:
    """One plain sentence: did the learned policy beat the paper's constants on the held-out seeds?"""
    low, high = summary.diff_bootstrap
    diff = f"{100 * summary.diff_mean:+.2f} points (95 % CI {100 * low:+.2f} to {100 * high:+.2f})"
    if summary.episodes < 5:
        return f"PPO: {diff} over the paper's constants on {summary.episodes} seed(s): too few to tell."
    if low > 0:
        return f"PPO learned something: {diff} of final student test accuracy over the paper's constants."
    if high < 0:
        return f"PPO is worse than the paper's constants: {diff}; it has not learned a better policy yet."
    return f"PPO did not learn anything measurable: {diff} over the paper's constants, a CI that contains zero."


def learned_knobs(result, env) -> str:
    """Where PPO's knobs sat on its held-out episodes beside the paper's: the mean over the first and
    the last third of every episode's rounds, so a learned schedule shows as a change within the run."""
    episodes = [np.asarray(t["actions"], dtype=np.float32) for t in result.traces if t["agent"] == LEARNER]
    third = [max(1, len(a) // 3) for a in episodes]
    early = knob_values(env, np.concatenate([a[:k] for a, k in zip(episodes, third)]).mean(axis=0))
    late = knob_values(env, np.concatenate([a[-k:] for a, k in zip(episodes, third)]).mean(axis=0))
    paper = knob_values(env, np.zeros(env.action_space.shape, np.float32))
    return "PPO's knobs on its held-out episodes (paper → PPO's mean over the first third → the last third of the rounds): " + ", ".join(
        f"{name} {paper[name]:.3g} → {early[name]:.3g} → {late[name]:.3g}" for name in paper)


def main(argv: list[str] | None = None) -> list:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timesteps", type=int, default=None, help="PPO training steps: runs, 16 per update (default: its YAML block's)")
    parser.add_argument("--train-seeds", nargs="+", default=["1000-1001"], help="seeds of PPO's learning curve")
    parser.add_argument("--eval-seeds", nargs="+", default=["2000-2029"], help="held-out seeds (never trained on)")
    parser.add_argument("--out", default="runs/demo")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    start = time.perf_counter()
    data = load_dataset("digits")
    teacher = get_teacher("digits", data=data)
    print(data.describe())
    print(f"teacher {teacher.spec.arch}: test accuracy {100 * teacher.metrics['test_accuracy']:.2f} % "
          f"({'cached' if teacher.from_cache else 'trained now'}: {teacher.path})\n")
    config = HeadroomConfig(env_id=ENV_ID, train_env_kwargs={"split": "train"}, eval_env_kwargs={"split": "heldout"},
                            train_seeds=parse_seeds(args.train_seeds), eval_seeds=parse_seeds(args.eval_seeds),
                            policies=("constant", LEARNER), timesteps={LEARNER: args.timesteps})
    print(f"training PPO on {ENV_ID}'s one-decision id (training instances) for {args.timesteps or 'its YAML block’s'} runs, then evaluating "
          f"{LEARNER} and constant on {len(config.eval_seeds)} held-out seeds of the held-out instances ...")
    result = run_headroom(config, Runner("local"), out=Path(args.out))
    paths = write_report(result, Path(args.out))
    print()
    print(Path(paths["md"]).read_text())
    ppo = next(s for s in result.summaries if s.policy == LEARNER)
    print(verdict(ppo))
    print(learned_knobs(result, cached_env(ENV_ID, config.eval_env_kwargs)))
    # one training seed: its verdict moves with the float rounding of the CPU's kernels (docs/benchmarks.md)
    print(f"\nwrote {', '.join(str(p) for p in paths.values())} in {time.perf_counter() - start:.0f} s (1 torch thread per "
          f"process, {torch.backends.cpu.get_cpu_capability()} CPU kernels)")
    return result.summaries


if __name__ == "__main__":
    main()
