"""Parsing ``key=value`` overrides for dataclass configurations on the command line."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any


def parse_overrides(pairs: list[str], config_cls: type) -> dict[str, Any]:
    """``["kd_steps=40", "kd_hflip=true"]`` → typed values for the fields of ``config_cls``.

    Each value is parsed as its field's declared type (``int``, ``float``, ``bool``, ``str``); ``none``
    means ``None`` only for a field that may be ``None`` (``kd_mix=none`` stays the string ``"none"``).

    :raises ValueError: a pair without ``=``, an unknown field, or a value of the wrong type.
    """
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    hints = typing.get_type_hints(config_cls)
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"expected key=value, got {pair!r}")
        key, raw = pair.split("=", 1)
        if key not in fields:
            raise ValueError(f"unknown configuration field {key!r}; known: {', '.join(sorted(fields))}")
        kinds = _kinds(hints[key])
        try:
            if type(None) in kinds and raw.lower() == "none":
                out[key] = None
            elif bool in kinds:
                if raw.lower() not in ("true", "false", "1", "0"):
                    raise ValueError("expected true or false")
                out[key] = raw.lower() in ("true", "1")
            elif int in kinds:
                out[key] = int(raw)
            elif float in kinds:
                out[key] = float(raw)
            else:
                out[key] = raw
        except ValueError as err:
            raise ValueError(f"{key}={raw!r}: {err}") from err
    return out


def _kinds(hint: Any) -> tuple[Any, ...]:
    """The types a field's annotation allows (``int | None`` → ``(int, NoneType)``)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return typing.get_args(hint)
    return (hint,)
