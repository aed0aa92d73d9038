"""The command line of the evaluation scripts: seeds and env settings from tokens, where tasks run
(``--backend``), and progress bars."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from agents.evaluation.backends import BACKENDS, Runner


def parse_seeds(tokens: Sequence[str | int]) -> tuple[int, ...]:
    """Seeds from command-line tokens: integers and inclusive ranges (``["1000-1009", "1020"]``).

    :param tokens: ``"A"`` or ``"A-B"`` (``A ≤ B``, both non-negative) each.
    :raises ValueError: a token that is neither, or the same seed twice.
    """
    seeds: list[int] = []
    for token in tokens:
        text = str(token).strip()
        low, sep, high = text.partition("-")
        try:
            first, last = (int(low), int(high)) if sep else (int(text), int(text))
        except ValueError:
            raise ValueError(f"seed {text!r}: expected an integer or a range A-B such as 1000-1099") from None
        if first < 0 or last < first:
            raise ValueError(f"seed range {text!r}: expected 0 <= A <= B")
        seeds.extend(range(first, last + 1))
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds {list(tokens)} name some seed twice")
    return tuple(seeds)


def parse_env_kwargs(pairs: Sequence[str], env_id: str) -> dict[str, Any]:
    """``KEY=VALUE`` settings for ``gymnasium.make(env_id, ...)``: configuration fields, typed by the id's
    configuration class (:func:`distill_core.common.cli.parse_overrides`), and the env's own keywords
    (``reward_normalization=constant``, ``divergence_penalty=-2``, ``seed_pool=48``), typed by their annotations.

    :param pairs: ``["kd_steps=4", "class_knobs=true"]``.
    :param env_id: a registered ``DistillGym/...`` id.
    :raises ValueError: an unknown key or a value of the wrong type.
    """
    import gymnasium as gym
    from gymnasium.envs.registration import load_env_creator

    import envs
    from distill_core.common.cli import hint_kinds, parse_overrides, parse_value

    config_cls = type(envs.registered_config(env_id))
    env_cls = load_env_creator(gym.spec(env_id.split(":")[-1]).entry_point)
    hints = typing.get_type_hints(env_cls.__init__)
    own = {name for name, p in inspect.signature(env_cls.__init__).parameters.items() if p.kind is p.KEYWORD_ONLY}
    config_pairs, settings = [], {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if sep and key in own:
            settings[key] = parse_value(key, raw, hint_kinds(hints[key]))  # typed by the annotation
        else:
            config_pairs.append(pair)
    return {**parse_overrides(config_pairs, config_cls), **settings}


def add_backend_arguments(parser: Any) -> None:
    """The ``--backend``, ``--address`` and ``--num-cpus`` options every script that maps jobs takes."""
    parser.add_argument("--backend", choices=BACKENDS, default="local")
    parser.add_argument("--address", default=None, help="Ray cluster address to join (default: start a local one)")
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray cluster")


def runner_from_arguments(args: Any) -> Runner:
    """The :class:`Runner` the options of :func:`add_backend_arguments` ask for."""
    return Runner(args.backend, address=args.address, num_cpus=args.num_cpus)


@contextmanager
def progress_bar(total: int, desc: str, enabled: bool, unit: str = "episode") -> Iterator[Any]:
    """A tqdm bar counting ``total`` items of ``unit`` (``None`` when not ``enabled``), closed afterwards."""
    if not enabled:
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()
