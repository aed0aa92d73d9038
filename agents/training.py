"""Training an agent on a distill-gym env with SB3's machinery: Monitor, VecNormalize, EvalCallback on
held-out seeds, CheckpointCallback, CSV / TensorBoard logs, a progress bar, and resuming after a kill."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym

import envs  # noqa: F401  (registers the ids)
from agents.registry import agent_class, is_learning, load_hyperparams, make_agent, split_zoo_settings
from envs.wrappers import SeedCycle, normalize_vec_env

DEFAULT_EVAL_SEEDS = tuple(range(10_000, 10_005))


@dataclass
class TrainResult:
    """What :func:`train_agent` produced."""

    agent: Any
    model_path: Path | None
    vecnormalize_path: Path | None
    timesteps: int
    seconds: float
    resumed_from: Path | None = None


def make_train_env(env_id: str, env_kwargs: dict[str, Any], seed: int, monitor_dir: Path | None, normalize: bool,
                   n_envs: int = 1, vec_env_cls: Any = None) -> Any:
    """A Monitor-wrapped VecEnv (optionally VecNormalize'd) for training."""
    from stable_baselines3.common.env_util import make_vec_env

    importable = env_id if ":" in env_id else f"envs:{env_id}"  # subprocess workers import envs first
    venv = make_vec_env(importable, n_envs=n_envs, seed=seed, env_kwargs=env_kwargs,
                        monitor_dir=str(monitor_dir) if monitor_dir else None, vec_env_cls=vec_env_cls)
    return normalize_vec_env(venv) if normalize else venv


def make_eval_env(env_id: str, env_kwargs: dict[str, Any], seeds: tuple[int, ...], train_env: Any) -> Any:
    """An evaluation VecEnv that cycles through fixed held-out ``seeds`` (sharing normalisation stats)."""
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    venv = DummyVecEnv([lambda: Monitor(SeedCycle(gym.make(env_id, **env_kwargs), seeds))])
    if isinstance(train_env, VecNormalize):
        venv = VecNormalize(venv, norm_obs=True, norm_reward=False, training=False)
        venv.obs_rms = train_env.obs_rms
    return venv


def latest_checkpoint(folder: Path) -> tuple[Path, int] | None:
    """The newest ``*_<steps>_steps.zip`` in ``folder`` and its step count."""
    found = []
    for path in folder.glob("*_steps.zip"):
        match = re.search(r"_(\d+)_steps\.zip$", path.name)
        if match:
            found.append((int(match.group(1)), path))
    if not found:
        return None
    steps, path = max(found)
    return path, steps


def train_agent(
    agent_name: str,
    env_id: str,
    *,
    out: Path,
    seed: int = 0,
    timesteps: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    hyperparams: dict[str, Any] | None = None,
    normalize: bool | None = None,
    eval_seeds: tuple[int, ...] = DEFAULT_EVAL_SEEDS,
    eval_freq: int | None = None,
    checkpoint_freq: int | None = None,
    resume: bool = False,
    progress_bar: bool = True,
    tensorboard: bool = True,
    device: str = "auto",
    verbose: int = 0,
) -> TrainResult:
    """Train ``agent_name`` on ``env_id`` and save it under ``out``.

    Baselines are "trained" instantly (nothing to learn). For learning agents: Monitor logs go to
    ``out/monitor``, evaluations on ``eval_seeds`` to ``out/eval``, checkpoints (with VecNormalize
    statistics and replay buffers) to ``out/checkpoints``, CSV and TensorBoard logs to ``out/logs``;
    the final model to ``out/model.zip``. With ``resume`` the newest checkpoint is loaded and training
    continues to the same total.

    :param timesteps: total environment steps (default: the YAML's ``n_timesteps``).
    :param normalize: VecNormalize on/off (default: the YAML's ``normalize``).
    :param eval_freq: steps between evaluations (default: 4 evaluations per run).
    :param checkpoint_freq: steps between checkpoints (default: 4 per run).
    """
    from stable_baselines3.common.callbacks import CallbackList, CheckpointCallback, EvalCallback
    from stable_baselines3.common.logger import configure

    out = Path(out)
    env_kwargs = dict(env_kwargs or {})
    start = time.perf_counter()
    if not is_learning(agent_name):
        env = gym.make(env_id, **env_kwargs)
        return TrainResult(make_agent(agent_name, env, seed=seed, hyperparams=hyperparams), None, None, 0, 0.0)

    merged = {**load_hyperparams(agent_name, env_id), **(hyperparams or {})}
    _, zoo = split_zoo_settings(merged)
    timesteps = int(timesteps if timesteps is not None else zoo.get("n_timesteps", 2000))
    normalize = bool(zoo.get("normalize", False) if normalize is None else normalize)
    merged.pop("normalize", None)
    merged.pop("n_timesteps", None)

    train_env = make_train_env(env_id, env_kwargs, seed, out / "monitor", normalize)
    eval_env = make_eval_env(env_id, env_kwargs, tuple(eval_seeds), train_env)
    checkpoints = out / "checkpoints"
    resumed_from = None
    done_steps = 0
    if resume and (found := latest_checkpoint(checkpoints)):
        resumed_from, done_steps = found
        agent = agent_class(agent_name).load(str(resumed_from), env=train_env, device=device)
        stats = resumed_from.with_name(resumed_from.name.replace("rl_model_", "rl_model_vecnormalize_").replace(".zip", ".pkl"))
        if normalize and stats.exists():
            from stable_baselines3.common.vec_env import VecNormalize

            train_env = VecNormalize.load(str(stats), train_env.venv)
            agent.set_env(train_env)
            eval_env.obs_rms = train_env.obs_rms
        replay = resumed_from.with_name(resumed_from.name.replace("rl_model_", "rl_model_replay_buffer_").replace(".zip", ".pkl"))
        if replay.exists() and hasattr(agent, "load_replay_buffer"):
            agent.load_replay_buffer(str(replay))
    else:
        # train_env is already normalised as decided here; make_agent must not apply the YAML's choice again
        agent = make_agent(agent_name, train_env, seed=seed, env_id=env_id, hyperparams=merged, verbose=verbose,
                           device=device, normalize=False)
    formats = ["csv"] + (["tensorboard"] if tensorboard and _has_tensorboard() else [])
    agent.set_logger(configure(str(out / "logs"), formats))

    eval_freq = eval_freq or max(1, timesteps // 4)
    checkpoint_freq = checkpoint_freq or max(1, timesteps // 4)
    callbacks = CallbackList([
        EvalCallback(eval_env, n_eval_episodes=len(eval_seeds), eval_freq=eval_freq, log_path=str(out / "eval"),
                     best_model_save_path=None, deterministic=True, verbose=0),
        CheckpointCallback(save_freq=checkpoint_freq, save_path=str(checkpoints), save_replay_buffer=True,
                           save_vecnormalize=True),
    ])
    remaining = max(0, timesteps - done_steps)
    agent.learn(total_timesteps=remaining, callback=callbacks, progress_bar=progress_bar,
                reset_num_timesteps=resumed_from is None)
    model_path = out / "model.zip"
    agent.save(str(model_path))
    vecnormalize_path = None
    if normalize:
        vecnormalize_path = out / "vecnormalize.pkl"
        train_env.save(str(vecnormalize_path))
    return TrainResult(agent, model_path, vecnormalize_path, timesteps, time.perf_counter() - start, resumed_from)


def _has_tensorboard() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


class NormalizedPolicy:
    """A trained agent plus the VecNormalize statistics it was trained with, usable on a plain env:
    ``predict`` normalises the observation first (as the training VecEnv did)."""

    def __init__(self, agent: Any, vecnormalize: Any) -> None:
        self.agent = agent
        self.vecnormalize = vecnormalize

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True) -> Any:
        return self.agent.predict(self.vecnormalize.normalize_obs(observation), state=state,
                                  episode_start=episode_start, deterministic=deterministic)


def load_trained(agent_name: str, folder: Path, env: gym.Env) -> Any:
    """Load ``folder/model.zip`` (and ``vecnormalize.pkl`` if present) as a policy for the plain ``env``."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from agents.registry import load_agent

    folder = Path(folder)
    agent = load_agent(agent_name, folder / "model.zip")
    stats = folder / "vecnormalize.pkl"
    if stats.exists():
        vecnormalize = VecNormalize.load(str(stats), DummyVecEnv([lambda: env]))
        vecnormalize.training = False
        return NormalizedPolicy(agent, vecnormalize)
    return agent
