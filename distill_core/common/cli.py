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
        out[key] = parse_value(key, raw, hint_kinds(hints[key]))
    return out


def parse_value(key: str, raw: str, kinds: tuple[Any, ...]) -> Any:
    """``raw`` as the first of ``kinds`` it is meant as: ``none`` → None (if ``NoneType`` is allowed),
    then bool, int, float, else the text itself.

    :raises ValueError: naming ``key=raw`` when the text is not of the type.
    """
    try:
        if type(None) in kinds and raw.lower() == "none":
            return None
        if bool in kinds:
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError("expected true or false")
            return raw.lower() in ("true", "1")
        if int in kinds:
            return int(raw)
        if float in kinds:
            return float(raw)
        return raw
    except ValueError as err:
        raise ValueError(f"{key}={raw!r}: {err}") from err


def hint_kinds(hint: Any) -> tuple[Any, ...]:
    """The types a field's annotation allows (``int | None`` → ``(int, NoneType)``)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return typing.get_args(hint)
    return (hint,)
