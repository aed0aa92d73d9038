"""Checkpoints and logs of a training run: the newest checkpoint that loads completely (an unreadable one
is skipped with a warning), SB3's CSV log continued rather than truncated, and what a killed run logged
after its checkpoint trimmed, so a resumed run's logs hold every step once."""

from __future__ import annotations

import csv
import io
import os
import pickle
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.logger import CSVOutputFormat, Logger, make_output_format

from agents.registry import agent_class
from distill_core.common.files import atomic_write

#: what a checkpoint that cannot be read raises on loading (a truncated zip: BadZipFile or SB3's
#: "No data found in the saved file" AssertionError; a truncated pickle: EOFError / UnpicklingError;
#: a missing statistics or replay-buffer file: FileNotFoundError)
UNREADABLE_CHECKPOINT = (AssertionError, zipfile.BadZipFile, EOFError, pickle.UnpicklingError, ValueError, RuntimeError,
                         KeyError, OSError)


def checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """Every ``*_<steps>_steps.zip`` in ``folder`` with its step count, newest first."""
    found = []
    for path in Path(folder).glob("*_steps.zip"):
        match = re.search(r"_(\d+)_steps\.zip$", path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found, reverse=True)


def latest_checkpoint(folder: Path) -> tuple[Path, int] | None:
    """The newest ``*_<steps>_steps.zip`` in ``folder`` and its step count."""
    found = checkpoints(folder)
    return (found[0][1], found[0][0]) if found else None


def checkpoint_companions(model_zip: Path) -> tuple[Path, Path]:
    """The VecNormalize statistics and the replay buffer SB3's ``CheckpointCallback`` saves with ``model_zip``."""
    name = model_zip.name
    return (model_zip.with_name(name.replace("rl_model_", "rl_model_vecnormalize_").replace(".zip", ".pkl")),
            model_zip.with_name(name.replace("rl_model_", "rl_model_replay_buffer_").replace(".zip", ".pkl")))


@dataclass
class LoadedCheckpoint:
    """A checkpoint whose every part could be read."""

    agent: Any
    path: Path
    steps: int
    #: the VecNormalize statistics saved with it, not yet attached to a VecEnv (``set_venv``)
    vecnormalize: Any = None


def load_checkpoint(agent_name: str, folder: Path, *, normalize: bool, device: str = "auto") -> LoadedCheckpoint | None:
    """The newest checkpoint in ``folder`` that loads completely: the model, its VecNormalize statistics
    (when ``normalize``) and its replay buffer (off-policy agents). An unreadable one is skipped with a
    warning naming the file and the reason; ``None`` when none is left.

    The agent is loaded without an env (attach one with ``set_env``): the training env is built only
    once it is known which checkpoint, and so which step, training continues from.
    """
    found = checkpoints(folder)
    for index, (steps, path) in enumerate(found):
        stats_path, replay_path = checkpoint_companions(path)
        try:
            agent = agent_class(agent_name).load(str(path), device=device)
            stats = None
            if normalize:
                # VecNormalize.load would need the VecEnv already; this is its unpickling step
                with open(stats_path, "rb") as handle:
                    stats = pickle.load(handle)
            if hasattr(agent, "load_replay_buffer"):
                agent.load_replay_buffer(str(replay_path))
        except UNREADABLE_CHECKPOINT as err:
            then = "falling back to the previous one" if index + 1 < len(found) else "no earlier checkpoint is left"
            warnings.warn(f"checkpoint {path} cannot be read ({type(err).__name__}: {err}); {then}",
                          RuntimeWarning, stacklevel=2)
            continue
        return LoadedCheckpoint(agent, path, steps, stats)
    return None


class AppendingCSVOutputFormat(CSVOutputFormat):
    """SB3's CSV log continuing an existing file: its header and rows are kept and new rows follow
    (SB3's own opens the file with ``"w+"``, truncating a resumed run's history). New keys still widen
    the header as in SB3.

    :param filename: the CSV file; created as by SB3 when missing or empty.
    """

    def __init__(self, filename: str) -> None:
        path = Path(filename)
        if not path.is_file() or path.stat().st_size == 0:
            super().__init__(filename)
            return
        super().__init__(os.devnull)  # SB3's attributes, without truncating the real file
        self.file.close()
        # "r+", not "a": SB3 rewrites the header in place when a new key appears, which append mode forbids
        self.file = open(filename, "r+")
        header = self.file.readline().rstrip("\n")
        self.keys = header.split(self.separator) if header else []
        self.file.seek(0, os.SEEK_END)


def make_logger(folder: Path, *, append: bool, tensorboard: bool) -> Logger:
    """SB3's logger writing ``progress.csv`` (continued when ``append``) and, optionally, TensorBoard
    events (a new events file per run; TensorBoard reads them as one run) to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = str(folder / "progress.csv")
    formats = [AppendingCSVOutputFormat(csv_path) if append else CSVOutputFormat(csv_path)]
    if tensorboard and has_tensorboard():
        formats.append(make_output_format("tensorboard", str(folder)))
    return Logger(str(folder), formats)


def trim_logs(out: Path, steps: int, n_envs: int = 1) -> None:
    """Drop what a killed run logged after step ``steps`` (the checkpoint resumed from): those steps are
    trained again, so their rows would appear twice. Monitor rows are kept while the cumulative episode
    length of their env stays within ``steps / n_envs``; ``progress.csv`` and ``evaluations.npz`` rows
    by their timestep."""
    for monitor_csv in sorted((out / "monitor").glob("*.monitor.csv")):
        lines = monitor_csv.read_text().splitlines(keepends=True)
        if len(lines) < 2 or not lines[0].startswith("#"):
            continue  # no header: Monitor rewrites it anyway
        lengths = np.cumsum([int(row["l"]) for row in csv.DictReader(lines[1:])])
        replace_file(monitor_csv, "".join(lines[:2 + int(np.sum(lengths <= steps // n_envs))]))
    progress = out / "logs" / "progress.csv"
    if progress.is_file():
        lines = progress.read_text().splitlines(keepends=True)
        rows = list(csv.DictReader(lines))
        if rows and "time/total_timesteps" in rows[0]:
            kept = [line for line, row in zip(lines[1:], rows)
                    if not row["time/total_timesteps"] or float(row["time/total_timesteps"]) <= steps]
            replace_file(progress, "".join([lines[0], *kept]))
    evaluations = out / "eval" / "evaluations.npz"
    if evaluations.is_file():
        with np.load(evaluations) as saved:
            arrays = {key: saved[key] for key in saved.files}
        keep = arrays["timesteps"] <= steps
        buffer = io.BytesIO()
        np.savez(buffer, **{key: value[keep] for key, value in arrays.items()})
        replace_file(evaluations, buffer.getvalue())


def preload_evaluations(callback: Any, path: Path) -> None:
    """Put the evaluations saved in ``path`` into ``callback`` (an ``EvalCallback``), which rewrites that
    file from its in-memory lists after each evaluation: the file then holds every part of the run."""
    if not path.is_file():
        return
    with np.load(path) as saved:
        callback.evaluations_timesteps = [int(t) for t in saved["timesteps"]]
        callback.evaluations_results = [list(r) for r in saved["results"]]
        callback.evaluations_length = [list(n) for n in saved["ep_lengths"]]
        if "successes" in saved.files:
            callback.evaluations_successes = [list(s) for s in saved["successes"]]
    if callback.evaluations_results:
        callback.best_mean_reward = float(max(np.mean(r) for r in callback.evaluations_results))


def replace_file(path: Path, content: str | bytes) -> None:
    """Rewrite ``path`` atomically (a kill mid-write leaves the old file, not half of the new one)."""
    data = content.encode() if isinstance(content, str) else content
    atomic_write(path, lambda handle: handle.write(data))


def has_tensorboard() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True
