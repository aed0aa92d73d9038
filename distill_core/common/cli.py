"""Parsing ``key=value`` overrides for dataclass configurations on the command line."""

from __future__ import annotations

import dataclasses
from typing import Any


def parse_overrides(pairs: list[str], config_cls: type) -> dict[str, Any]:
    """``["kd_steps=40", "kd_hflip=true"]`` → typed values for the fields of ``config_cls``.

    :raises ValueError: a pair without ``=``, an unknown field, or a value of the wrong type.
    """
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"expected key=value, got {pair!r}")
        key, raw = pair.split("=", 1)
        if key not in fields:
            raise ValueError(f"unknown configuration field {key!r}; known: {', '.join(sorted(fields))}")
        default = fields[key].default
        try:
            if isinstance(default, bool):
                if raw.lower() not in ("true", "false", "1", "0"):
                    raise ValueError("expected true or false")
                out[key] = raw.lower() in ("true", "1")
            elif isinstance(default, int):
                out[key] = int(raw)
            elif isinstance(default, float):
                out[key] = float(raw)
            elif raw.lower() == "none":
                out[key] = None
            elif default is None:  # an optional number (e.g. "pick by size"): the most specific type that parses
                out[key] = _number_or_text(raw)
            else:
                out[key] = raw
        except ValueError as err:
            raise ValueError(f"{key}={raw!r}: {err}") from err
    return out


def _number_or_text(raw: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw
