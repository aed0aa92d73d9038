"""A resumable store of result cells (Ray Tune's trial folders, in small): one JSON file a cell, each
recording the settings that made it and a checksum of what it holds, in a folder that records the study's
configuration.

A study re-run with the same command skips the cells it finds; a folder made with another configuration,
or a cell made with other settings, is refused (its numbers would not be comparable); a truncated or
edited cell is reported with a warning and made again.

    store = CellStore(Path("runs/validity"), asdict(config))
    rows = store.get_or_make("eval/digits/constant", settings, lambda: evaluate(...))
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from distill_core.common.report import write_json

CELL_FORMAT = "distill-gym/cell/v1"


def canonical(value: Any) -> Any:
    """``value`` as plain JSON values (tuples as lists, paths and other objects as strings)."""
    return json.loads(json.dumps(value, default=str))


def content_digest(value: Any) -> str:
    """SHA-256 of ``value``'s canonical JSON (sorted keys)."""
    return hashlib.sha256(json.dumps(canonical(value), sort_keys=True).encode()).hexdigest()


class CellStore:
    """Cells under ``<root>/cells/``, the study's configuration in ``<root>/config.json``.

    :param root: the study's folder.
    :param config: the study's configuration (plain values); a folder holding another one is refused.
    :param ignore: configuration keys that may differ between runs of the same study (e.g. worker counts).
    :raises ValueError: ``root`` holds a study with another configuration, naming the keys that differ.
    """

    def __init__(self, root: Path, config: dict[str, Any], *, ignore: tuple[str, ...] = ()) -> None:
        self.root = Path(root)
        self.config = canonical(config)
        path = self.root / "config.json"
        if path.exists():
            theirs = json.loads(path.read_text())
            changed = sorted(k for k in set(theirs) | set(self.config)
                             if k not in ignore and theirs.get(k) != self.config.get(k))
            if changed:
                raise ValueError(f"{self.root} holds a study with another configuration ({', '.join(changed)} differ): "
                                 "use a new --out, or the same settings to resume it")
        write_json(self.config, path)

    def path(self, name: str) -> Path:
        """The file of cell ``name`` (``eval/digits/constant`` → ``cells/eval/digits/constant.json``)."""
        return self.root / "cells" / f"{name}.json"

    def read(self, name: str, settings: Any) -> Any | None:
        """The payload of a finished cell, or ``None`` when it is missing, truncated or corrupt (with a warning).

        :param settings: what the cell must have been made with.
        :raises ValueError: the cell was made with other settings.
        """
        path = self.path(name)
        if not path.exists():
            return None
        try:
            cell = json.loads(path.read_text())
            intact = (cell.get("format") == CELL_FORMAT and cell.get("checksum") == content_digest(
                {"settings": cell["settings"], "payload": cell["payload"]}))
        except (ValueError, KeyError, TypeError, AttributeError):
            intact = False
        if not intact:
            warnings.warn(f"cell {path} is truncated or corrupt (its checksum does not match): it is made again", stacklevel=2)
            return None
        if cell["settings"] != canonical(settings):
            raise ValueError(f"cell {path} was made with other settings ({cell['settings']}, not {canonical(settings)}): "
                             "use a new --out, or the same settings to resume")
        return cell["payload"]

    def write(self, name: str, settings: Any, payload: Any) -> Path:
        """Write cell ``name`` atomically (a kill leaves the old file or none, never half of one)."""
        body = {"settings": canonical(settings), "payload": canonical(payload)}
        return write_json({"format": CELL_FORMAT, **body, "checksum": content_digest(body)}, self.path(name))

    def get_or_make(self, name: str, settings: Any, make: Callable[[], Any]) -> tuple[Any, bool]:
        """The finished cell's payload, or ``make()``'s, written as the cell.

        :return: the payload and whether it was found (``True``) or made now.
        """
        found = self.read(name, settings)
        if found is not None:
            return found, True
        payload = make()
        self.write(name, settings, payload)
        return canonical(payload), False


__all__ = ["CELL_FORMAT", "CellStore", "canonical", "content_digest"]
