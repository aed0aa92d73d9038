"""Checkpoints: written atomically, read with ``weights_only=True``, tagged with what they hold and
carrying a checksum of their content.

Every file distill-gym writes is a dict with a ``"format"`` entry (e.g. ``"distill-gym/teacher/v1"``),
so a foreign or stale file is recognised and reported instead of being silently misread, and a
``"checksum"`` entry (SHA-256 over the loaded content, see :func:`content_checksum`), so a file that
torch still loads after a flipped byte or an edit is refused instead of being used.

A flipped byte that changes nothing torch loads (zip padding, timestamps, pickle memo numbers) leaves
the content, and so the checksum, intact: such a file is still exactly what was saved and is accepted.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from distill_core.common.files import atomic_write

FORMAT_KEY = "format"
CHECKSUM_KEY = "checksum"
_CHECKSUM_PREFIX = "sha256:"


class CheckpointError(RuntimeError):
    """A checkpoint is corrupt, foreign, invalid or does not match what was asked for."""


def _feed(hasher: Any, tag: str, data: bytes | memoryview = b"") -> None:
    # tag and length prefix every token, so that no two different contents serialise alike
    hasher.update(tag.encode() + b"\0" + len(data).to_bytes(8, "little"))
    hasher.update(data)


def _feed_value(hasher: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach()
        t = t.to_dense() if t.layout != torch.strided else t
        _feed(hasher, "tensor", f"{t.dtype}|{tuple(t.shape)}".encode())
        # raw bytes in C order, whatever the dtype (bfloat16 and bool have no numpy view of their own)
        _feed(hasher, "bytes", memoryview(t.cpu().contiguous().reshape(-1).view(torch.uint8).numpy()))
    elif isinstance(value, Mapping):
        _feed(hasher, "dict", str(len(value)).encode())
        for key in sorted(value, key=repr):  # sorted: the checksum does not depend on insertion order
            _feed_value(hasher, key)
            _feed_value(hasher, value[key])
    elif isinstance(value, (list, tuple)):  # torch.Size too; each comes back as the type it was saved as
        _feed(hasher, "seq", str(len(value)).encode())
        for item in value:
            _feed_value(hasher, item)
    else:  # str, int, float (repr is exact), bool, None, torch.dtype, ...
        _feed(hasher, f"{type(value).__module__}.{type(value).__qualname__}", repr(value).encode())


def content_checksum(payload: Mapping[str, Any]) -> str:
    """SHA-256 over a canonical serialisation of ``payload`` without its ``"checksum"`` entry.

    Tensors contribute their dtype, shape and raw bytes; dicts their items in sorted key order; other
    values their type and ``repr``. The result depends only on what torch loads back, not on how the
    zip archive around it is laid out.

    :param payload: what :func:`atomic_save` writes or :func:`load_checkpoint` read.
    :return: ``"sha256:<hex digest>"``.
    """
    hasher = hashlib.sha256()
    _feed_value(hasher, {k: v for k, v in payload.items() if k != CHECKSUM_KEY})
    return _CHECKSUM_PREFIX + hasher.hexdigest()


def atomic_save(payload: dict[str, Any], path: str | os.PathLike) -> Path:
    """Save ``payload`` plus its :func:`content_checksum` with ``torch.save``, so that ``path`` is
    either the old file or the complete new one.

    Written with :func:`~distill_core.common.files.atomic_write`: a job killed mid-write (or a full disk)
    never leaves a truncated checkpoint behind.

    :param payload: tensors, numbers, strings, lists and dicts (what ``weights_only=True`` can read back);
        not modified (a ``"checksum"`` entry in it is replaced).
    :param path: destination file; parent directories are created.
    :return: the path written.
    """
    payload = {**payload, CHECKSUM_KEY: content_checksum(payload)}
    return atomic_write(path, lambda handle: torch.save(payload, handle))


def load_checkpoint(
    path: str | os.PathLike,
    *,
    expected_format: str,
    rebuild_hint: str = "delete the file and run again to rebuild it",
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`atomic_save`, safely (``weights_only=True``), and verify its checksum.

    :param path: the file.
    :param expected_format: the ``"format"`` tag the file must carry.
    :param rebuild_hint: what the user should do when the file is unusable (goes into the error).
    :param map_location: where tensors are loaded.
    :return: the payload, ``"checksum"`` entry included.
    :raises FileNotFoundError: the file does not exist.
    :raises CheckpointError: the file is corrupt, has no or a wrong checksum, is not a distill-gym
        checkpoint, or is of another format.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for truncated / damaged / foreign files
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a distill-gym file ({type(err).__name__}: {str(err)[:200]}); "
            f"{rebuild_hint}"
        ) from err
    if not isinstance(payload, dict) or FORMAT_KEY not in payload:
        raise CheckpointError(f"{path} is not a distill-gym checkpoint (no '{FORMAT_KEY}' entry); {rebuild_hint}")
    # A file without a checksum is refused, not accepted with a warning: its content cannot be
    # verified, which is the failure this checksum exists to stop, and every such file (teacher cache,
    # synthetic set, student) can be made again. Refusing here, rather than bumping each format's
    # version, gives one rule and one clear message for every file type, including formats defined elsewhere.
    stored = payload.get(CHECKSUM_KEY)
    if not isinstance(stored, str) or not stored.startswith(_CHECKSUM_PREFIX):
        raise CheckpointError(
            f"{path} has no content checksum (written by a distill-gym from before checksums, or damaged), "
            f"so its content cannot be verified; {rebuild_hint}"
        )
    try:
        actual = content_checksum(payload)
    except Exception as err:  # a damaged file can load as values the serialisation does not expect
        raise CheckpointError(f"{path} is corrupt (its content cannot be checksummed: {err}); {rebuild_hint}") from err
    if actual != stored:
        raise CheckpointError(f"{path}: content checksum mismatch (the file is corrupt or was edited); {rebuild_hint}")
    if payload[FORMAT_KEY] != expected_format:
        raise CheckpointError(
            f"{path} holds '{payload[FORMAT_KEY]}', expected '{expected_format}'; {rebuild_hint}"
        )
    return payload


def check_tensor(
    value: Any,
    *,
    what: str,
    where: str,
    fix: str,
    kind: str | None = None,
    dtype: torch.dtype | None = None,
    shape: Sequence[int | None] | None = None,
    finite: bool = True,
    non_empty: bool = False,
) -> torch.Tensor:
    """Check that ``value`` is a tensor of the expected kind, dtype and shape with finite values.

    The checksum proves a file is what was saved; this proves what was saved is usable (a diverged run
    saves NaN weights with a perfectly valid checksum).

    :param value: the object to check.
    :param what: what it is, for the message (``"images 'x'"``, ``"state_dict['fc.weight']"``).
    :param where: the file it came from, or a description of an in-memory object.
    :param fix: what the user should do about it (ends the message).
    :param kind: ``"floating"`` or ``"integer"`` (``bool`` is not an integer here); ``None`` = any.
    :param dtype: the exact dtype required; ``None`` = any.
    :param shape: the required shape, ``None`` entries matching any size; ``None`` = any shape.
    :param finite: refuse NaN and ±Inf (floating tensors only; integers are always finite).
    :param non_empty: refuse a tensor with no elements.
    :return: ``value``.
    :raises CheckpointError: ``"<where>: <what> <problem>; <fix>"``.
    """

    def fail(problem: str) -> CheckpointError:
        return CheckpointError(f"{where}: {what} {problem}; {fix}")

    if not isinstance(value, torch.Tensor):
        raise fail(f"is a {type(value).__name__}, not a tensor")
    if kind == "floating" and not value.is_floating_point():
        raise fail(f"has dtype {value.dtype}, expected a floating-point dtype")
    if kind == "integer" and (value.is_floating_point() or value.is_complex() or value.dtype == torch.bool):
        raise fail(f"has dtype {value.dtype}, expected an integer dtype")
    if kind not in (None, "floating", "integer"):
        raise ValueError(f"checkpoint.check_tensor: kind must be 'floating', 'integer' or None, got {kind!r}")
    if dtype is not None and value.dtype != dtype:
        raise fail(f"has dtype {value.dtype}, expected {dtype}")
    if shape is not None:
        expected = tuple(shape)
        if value.dim() != len(expected) or any(e is not None and e != s for e, s in zip(expected, value.shape)):
            shown = "(" + ", ".join("N" if e is None else str(e) for e in expected) + ("," if len(expected) == 1 else "") + ")"
            raise fail(f"has shape {tuple(value.shape)}, expected {shown}")
    if non_empty and value.numel() == 0:
        raise fail("is empty")
    if finite and (value.is_floating_point() or value.is_complex()) and value.numel():
        bad = ~torch.isfinite(value.detach())
        if bool(bad.any()):
            nan = int(torch.isnan(value.detach()).sum())
            raise fail(f"has non-finite values: {int(bad.sum())} of {value.numel()} ({nan} NaN, {int(bad.sum()) - nan} ±Inf)")
    return value
