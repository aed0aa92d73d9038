"""Agents for distill-gym envs: SB3 and sb3-contrib algorithms and non-learning baselines behind one
registry (an ablation is a list of names), plus training, rollout and ablation helpers."""

from agents.baselines import BaselinePolicy, ConstantPolicy, RandomPolicy, SchedulePolicy
from agents.registry import agent_class, is_learning, list_agents, load_agent, load_hyperparams, make_agent

__all__ = ["BaselinePolicy", "ConstantPolicy", "RandomPolicy", "SchedulePolicy", "agent_class", "is_learning",
           "list_agents", "load_agent", "load_hyperparams", "make_agent"]
