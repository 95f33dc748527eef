"""Opening an input file: only a regular one, so a reader never blocks or reads forever.

A FIFO in place of a shard, a table or params.yaml would block `open()` until someone writes to
it; a character device (`/dev/zero`, `/dev/urandom`) never ends. Every reader of the shards, their
tables, sizes.json and the params opens through `open_regular`: it opens without blocking, checks
what it opened (not the name, which could be swapped in between) and refuses anything but a
regular file in one line naming it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from dfprep.core.errors import InputError

__all__ = ["NotRegular", "open_regular", "read_regular_text"]


class NotRegular(InputError):
    """A path that is a directory, a pipe, a socket or a device, where a file is read."""


def _kind(mode: int) -> str | None:
    """What is wrong with a file of this mode, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory, not a file"
    return "not a regular file (a pipe, socket or device)"


def open_regular(path: str | Path, what: str = "") -> BinaryIO:
    """PATH opened for reading in binary mode, if it is a regular file (symlinks followed);
    `NotRegular` otherwise, a missing file `FileNotFoundError` as from `open()`."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO opens at once instead of blocking
    try:
        why = _kind(os.fstat(fd).st_mode)
        if why:
            raise NotRegular(f"{path}: {what + ' ' if what else ''}{why}")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular_text(path: str | Path, what: str = "") -> str:
    """The text of a regular file (UTF-8); see `open_regular`."""
    with open_regular(path, what) as f:
        return f.read().decode()
