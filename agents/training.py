"""Training an agent on a distill-gym env with SB3's machinery: Monitor, VecNormalize, EvalCallback on
held-out seeds, CheckpointCallback, CSV / TensorBoard logs, a progress bar, and resuming after a kill.

Resuming continues every log rather than restarting it: the Monitor CSV, ``eval/evaluations.npz`` and
``logs/progress.csv`` keep the first part's rows up to the checkpoint resumed from (rows after it belong
to steps that are trained again) and the new rows follow. A checkpoint that cannot be read (a kill while
it was written) is skipped with a warning for the previous one.
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym

import envs  # noqa: F401  (registers the ids)
from agents.checkpoints import load_checkpoint, make_logger, preload_evaluations, trim_logs
from agents.registry import is_learning, load_hyperparams, make_agent, split_zoo_settings
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


def make_worker_env(env_id: str, threads: int = 1, **env_kwargs: Any) -> gym.Env:
    """``gym.make(env_id, **env_kwargs)`` in a vector env's worker, on ``threads`` torch threads.

    A ``forkserver`` or ``spawn`` worker starts a fresh torch with one thread per core, so two workers on
    a 2-core machine would run four threads and thrash (measured: ``make demo``'s 1 024 PPO steps took
    521 s so, against about 2 minutes at one thread per worker).
    """
    import torch

    torch.set_num_threads(threads)
    return gym.make(env_id, **env_kwargs)


def make_train_env(env_id: str, env_kwargs: dict[str, Any], seed: int, monitor_dir: Path | None, normalize: bool,
                   n_envs: int = 1, vec_env_cls: Any = None, *, append_monitor: bool = False,
                   gamma: float = 0.99, vector_workers: int = 1) -> Any:
    """A Monitor-wrapped VecEnv (optionally VecNormalize'd) for training.

    :param vec_env_cls: SB3's ``DummyVecEnv`` (default) or ``SubprocVecEnv``, whose workers start with
        ``forkserver`` (``spawn`` where there is none): forking a process that has run torch can deadlock.
    :param append_monitor: continue the Monitor CSVs in ``monitor_dir`` (resuming) instead of rewriting them.
    :param gamma: the agent's discount, for VecNormalize's reward scaling.
    :param vector_workers: processes an id's native vector env splits its ``n_envs`` runs over.
    """
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import SubprocVecEnv

    from envs import has_vector_env

    if has_vector_env(env_id):  # the fast tier: n_envs runs stepped together in this process (lockstep)
        venv = make_native_vec_env(env_id, env_kwargs, seed, n_envs, monitor_dir, vector_workers)
        return normalize_vec_env(venv, gamma=gamma) if normalize else venv
    importable = env_id if ":" in env_id else f"envs:{env_id}"  # subprocess workers import envs first
    vec_env_kwargs: dict[str, Any] = {}
    make: Any = importable
    if isinstance(vec_env_cls, type) and issubclass(vec_env_cls, SubprocVecEnv):
        # SB3's default as well; stated so that a change of that default cannot bring fork back
        vec_env_kwargs["start_method"] = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        make = functools.partial(make_worker_env, importable)  # one torch thread per worker (one per core)
    starts: dict[int, float] = {}
    if append_monitor and monitor_dir is not None:
        starts = {rank: t for rank in range(n_envs)
                  if (t := _monitor_start(Path(monitor_dir) / f"{rank}.{Monitor.EXT}")) is not None}
    # Monitor appends without writing a header, so only when every rank's file has one
    appending = bool(starts) and len(starts) == n_envs
    venv = make_vec_env(make, n_envs=n_envs, seed=seed, env_kwargs=env_kwargs,
                        monitor_dir=str(monitor_dir) if monitor_dir else None, vec_env_cls=vec_env_cls,
                        vec_env_kwargs=vec_env_kwargs, monitor_kwargs={"override_existing": not appending})
    if appending:
        for rank, t_start in starts.items():
            # episode times ("t") stay relative to the header's t_start, as SB3's load_results reads them
            venv.set_attr("t_start", t_start, indices=[rank])
    return normalize_vec_env(venv, gamma=gamma) if normalize else venv


def make_native_vec_env(env_id: str, env_kwargs: dict[str, Any], seed: int, n_envs: int, monitor_dir: Path | None,
                        workers: int = 1) -> Any:
    """An id's native vector env (``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")``) as
    an SB3 ``VecEnv``, its runs split over ``workers`` processes, seeded (env ``i`` with ``seed + i``)
    and monitored (one ``monitor.csv``)."""
    from stable_baselines3.common.vec_env import VecMonitor

    from agents.vector import GymVectorToSB3

    venv = GymVectorToSB3(gym.make_vec(env_id.split(":")[-1], num_envs=n_envs, vectorization_mode="vector_entry_point",
                                       workers=workers, **env_kwargs))
    venv.seed(seed)
    if monitor_dir is not None:
        Path(monitor_dir).mkdir(parents=True, exist_ok=True)
    return VecMonitor(venv, filename=str(Path(monitor_dir) / "monitor.csv") if monitor_dir is not None else None)


def make_eval_env(env_id: str, env_kwargs: dict[str, Any], seeds: tuple[int, ...], train_env: Any) -> Any:
    """An evaluation VecEnv that cycles through fixed held-out ``seeds`` (sharing normalisation stats)."""
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor, VecNormalize

    from agents.vector import GymVectorToSB3

    venv = DummyVecEnv([lambda: Monitor(SeedCycle(gym.make(env_id, **env_kwargs), seeds))])
    if isinstance(train_env.unwrapped if isinstance(train_env, VecNormalize) else train_env, GymVectorToSB3):
        # the same wrappers as a native training env's (VecMonitor), so SB3 can sync their VecNormalize statistics
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "already wrapped with a Monitor": the evaluation reads that one
            venv = VecMonitor(venv)
    if isinstance(train_env, VecNormalize):
        venv = VecNormalize(venv, norm_obs=True, norm_reward=False, training=False)
        venv.obs_rms = train_env.obs_rms
    return venv


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
    the final model to ``out/model.zip``. With ``resume`` the newest readable checkpoint is loaded
    (an unreadable one is skipped with a warning), training continues to the same total and every log
    continues too (see the module's docstring); with no readable checkpoint training starts afresh.

    :param timesteps: total environment steps (default: the YAML's ``n_timesteps``).
    :param env_kwargs: the env's configuration, over the YAML's ``env_kwargs`` (the evaluation env drops
        ``seed_pool``: it runs the held-out ``eval_seeds``).
    :param normalize: VecNormalize on/off (default: the YAML's ``normalize``).
    :param eval_freq: steps between evaluations (default: 4 evaluations per run).
    :param checkpoint_freq: steps between checkpoints (default: 4 per run).
    """
    from stable_baselines3.common.callbacks import CallbackList, CheckpointCallback, EvalCallback

    out = Path(out)
    env_kwargs = dict(env_kwargs or {})
    start = time.perf_counter()
    if not is_learning(agent_name):
        env = gym.make(env_id, **env_kwargs)
        return TrainResult(make_agent(agent_name, env, seed=seed, hyperparams=hyperparams), None, None, 0, 0.0)

    merged = {**load_hyperparams(agent_name, env_id), **(hyperparams or {})}
    algo_kwargs, zoo = split_zoo_settings(merged)
    timesteps = int(timesteps if timesteps is not None else zoo.get("n_timesteps", 2000))
    normalize = bool(zoo.get("normalize", False) if normalize is None else normalize)
    merged.pop("normalize", None)
    merged.pop("n_timesteps", None)
    gamma = float(algo_kwargs.get("gamma", 0.99))
    # the zoo's env_kwargs: how this learner trains (e.g. a paired reward on a pool of run seeds); the
    # caller's settings win. The evaluation env keeps the reward but never the pool: it runs held-out seeds
    zoo_env_kwargs = zoo.get("env_kwargs") or {}
    if not isinstance(zoo_env_kwargs, dict):
        raise ValueError(f"env_kwargs must be a YAML mapping, got {zoo_env_kwargs!r} (hyperparameters of {agent_name} on {env_id})")
    env_kwargs = {**zoo_env_kwargs, **env_kwargs}
    eval_env_kwargs = {k: v for k, v in env_kwargs.items() if k != "seed_pool"}
    # the zoo's n_envs: that many envs stepped in worker processes (one core each), so a 2-core machine
    # collects experience twice as fast; one env stays in-process
    n_envs = int(zoo.get("n_envs", 1))
    if n_envs < 1:
        raise ValueError(f"n_envs must be >= 1, got {n_envs} (hyperparameters of {agent_name} on {env_id})")
    vector_workers = int(zoo.get("vector_workers", 1))
    vec_env_cls = None
    from envs import has_vector_env

    if n_envs > 1 and not has_vector_env(env_id):
        from stable_baselines3.common.vec_env import SubprocVecEnv

        vec_env_cls = SubprocVecEnv

    checkpoints_dir = out / "checkpoints"
    loaded = load_checkpoint(agent_name, checkpoints_dir, normalize=normalize, device=device) if resume else None
    if loaded is not None:
        trim_logs(out, loaded.steps, n_envs)
        train_env = make_train_env(env_id, env_kwargs, seed, out / "monitor", False, n_envs, vec_env_cls, append_monitor=True,
                                   vector_workers=vector_workers)
        if normalize:
            loaded.vecnormalize.set_venv(train_env)
            train_env = loaded.vecnormalize
        agent = loaded.agent
        agent.set_env(train_env)
    else:
        train_env = make_train_env(env_id, env_kwargs, seed, out / "monitor", normalize, n_envs, vec_env_cls, gamma=gamma,
                                   vector_workers=vector_workers)
        # train_env is already normalised as decided here; make_agent must not apply the YAML's choice again
        agent = make_agent(agent_name, train_env, seed=seed, env_id=env_id, hyperparams=merged, verbose=verbose,
                           device=device, normalize=False)
    eval_env = make_eval_env(env_id, eval_env_kwargs, tuple(eval_seeds), train_env)
    agent.set_logger(make_logger(out / "logs", append=loaded is not None, tensorboard=tensorboard))

    eval_freq = eval_freq or max(1, timesteps // 4)
    checkpoint_freq = checkpoint_freq or max(1, timesteps // 4)
    # SB3's callbacks count vector steps (n_envs timesteps each); ours are timesteps
    evaluation = EvalCallback(eval_env, n_eval_episodes=len(eval_seeds), eval_freq=max(1, eval_freq // n_envs),
                              log_path=str(out / "eval"),
                              best_model_save_path=None, deterministic=True, verbose=0)
    if loaded is not None:
        preload_evaluations(evaluation, out / "eval" / "evaluations.npz")
    callbacks = CallbackList([
        evaluation,
        CheckpointCallback(save_freq=max(1, checkpoint_freq // n_envs), save_path=str(checkpoints_dir), save_replay_buffer=True,
                           save_vecnormalize=True),
    ])
    remaining = max(0, timesteps - (loaded.steps if loaded else 0))
    try:
        agent.learn(total_timesteps=remaining, callback=callbacks, progress_bar=progress_bar,
                    reset_num_timesteps=loaded is None)
    except BaseException as err:
        train_env.close()  # no worker process outlives a failed run
        if hasattr(err, "add_note"):
            err.add_note(f"training stopped; its checkpoints are in {checkpoints_dir}: the same command with "
                         "resume=True (--resume) goes on from the newest")
        raise
    finally:
        eval_env.close()
    model_path = out / "model.zip"
    agent.save(str(model_path))
    vecnormalize_path = None
    if normalize:
        vecnormalize_path = out / "vecnormalize.pkl"
        train_env.save(str(vecnormalize_path))
    return TrainResult(agent, model_path, vecnormalize_path, timesteps, time.perf_counter() - start,
                       loaded.path if loaded else None)


def _monitor_start(path: Path) -> float | None:
    """The ``t_start`` in a Monitor CSV's header line, or ``None`` when the file has no header."""
    try:
        with open(path) as handle:
            first = handle.readline()
    except OSError:
        return None
    if not first.startswith("#"):
        return None
    try:
        return float(json.loads(first[1:])["t_start"])
    except (ValueError, KeyError):
        return None


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
