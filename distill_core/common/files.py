"""Writing a file so that a kill or a full disk never leaves half of one: the bytes go to a temporary file
beside the target, are flushed to the disk, and the temporary file is renamed over the target. Every
checkpoint, trace, cell, report and figure of distill-gym is written through :func:`atomic_write`."""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

#: the errors a full disk or an exhausted quota raises
FULL_DISK = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(OSError):
    """A write failed for want of space; the file it was replacing is intact."""


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(handle)`` on a temporary binary file beside ``path``, fsync it and rename it over ``path``
    (folders made): ``path`` is the old file or the whole new one, never a part.

    The temporary file gets the permissions of any new file (``0o666`` minus the umask; not
    ``tempfile.mkstemp``'s ``0o600``).

    :raises DiskFullError: the disk (or quota) is full, naming the file and the fix; the old file is intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        if err.errno in FULL_DISK:
            state = "is intact" if path.exists() else "was not written"
            raise DiskFullError(err.errno, f"no space left to write {path} (the previous file {state}): free space on "
                                f"its disk, then run the same command again — what was finished is kept") from err
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


__all__ = ["DiskFullError", "FULL_DISK", "atomic_write"]
