"""Run episodes of any agent — a trained model folder or a baseline name — and record JSON-lines traces;
or replay a trace and report whether it reproduces.

    python scripts/rollout.py --agent constant --seeds 1 2 3 --trace runs/rollouts/constant.jsonl
    python scripts/rollout.py --agent ppo --model runs/policies/DistillGym_SSDKD-Digits-v0/ppo_s0 --seeds 1 2
    python scripts/rollout.py --replay runs/rollouts/constant.jsonl
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gymnasium as gym

from envs import registered_config
from agents.registry import is_learning, list_agents, make_agent
from agents.rollout import read_traces, replay, run_episode, write_traces
from agents.training import load_trained
from distill_core.common.cli import parse_overrides
from distill_core.common.report import markdown_table


#: mismatches printed per episode (the rest are counted)
SHOWN_MISMATCHES = 10


def replay_file(path: str) -> int:
    """Replay every episode of ``path``; print a table, then what differed field by field.

    :param path: a trace file written by this script.
    :returns: 0 when every episode reproduced, 1 when one did not, 2 when the file is not a complete trace.
    """
    try:
        traces = read_traces(path)
    except (OSError, ValueError) as err:  # a message, not a traceback: the file is the problem
        print(f"rollout.py: error: {err}", file=sys.stderr)
        return 2
    rows, failed = [], []
    for n, trace in enumerate(traces, start=1):
        try:
            result = replay(trace)
        except (ValueError, gym.error.Error) as err:  # e.g. an env id or configuration this install lacks
            print(f"rollout.py: error: cannot replay episode {n} of {path} ({trace.env_id}): {err}", file=sys.stderr)
            return 2
        rows.append([trace.agent, trace.seed, result.steps, result.reproduced, f"{result.max_observation_diff:.3g}",
                     f"{result.max_reward_diff:.3g}", len(result.mismatches)])
        if not result.reproduced:
            failed.append((trace, result))
    print(markdown_table(["agent", "seed", "steps", "reproduced", "max obs diff", "max reward diff", "fields differing"], rows))
    for trace, result in failed:
        print(f"\n{trace.agent} seed {trace.seed} did not reproduce:")
        for note in result.runtime_notes:
            print(f"  (runtime: {note})")
        for mismatch in result.mismatches[:SHOWN_MISMATCHES]:
            print(f"  {mismatch}")
        if len(result.mismatches) > SHOWN_MISMATCHES:
            print(f"  ... and {len(result.mismatches) - SHOWN_MISMATCHES} more fields")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agent", choices=list_agents())
    parser.add_argument("--model", default=None, help="folder of a trained agent (model.zip [+ vecnormalize.pkl])")
    parser.add_argument("--env-id", default="DistillGym/SSDKD-Digits-v0")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="env configuration overrides")
    parser.add_argument("--trace", default=None, help="JSON-lines file to write (default runs/rollouts/<agent>.jsonl)")
    parser.add_argument("--replay", default=None,
                        help="re-run a recorded trace file and check it reproduces (exit 1 if not, 2 if the file is not a complete trace)")
    args = parser.parse_args(argv)

    if args.replay:
        return replay_file(args.replay)

    if not args.agent:
        parser.error("--agent is required unless --replay is given")
    try:
        env_kwargs = parse_overrides(args.set, type(registered_config(args.env_id)))
    except ValueError as err:
        parser.error(str(err))
    env = gym.make(args.env_id, **env_kwargs)
    if is_learning(args.agent):
        if not args.model:
            parser.error(f"{args.agent} learns: pass --model <folder of a trained agent> (see scripts/train_policy.py)")
        policy = load_trained(args.agent, Path(args.model), env)
    else:
        policy = make_agent(args.agent, env, seed=args.seeds[0])
    traces = [run_episode(env, policy, seed, env_id=args.env_id, env_kwargs=env_kwargs, agent_name=args.agent) for seed in args.seeds]
    path = write_traces(traces, args.trace or f"runs/rollouts/{args.agent}.jsonl")
    print(markdown_table(["agent", "seed", "steps", "return", "final test acc %", "seconds"],
                         [[t.agent, t.seed, t.outcome["steps"], f"{t.episode_return:.4f}",
                           f"{100 * t.outcome.get('test_accuracy', float('nan')):.2f}", f"{t.timings['seconds']:.1f}"] for t in traces]))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
