"""Atomic writes, the one implementation both packages use.

A file is written under a temporary name beside its final one (`.NAME.tmp-PID-UUID`: hidden, and
marked with `TMP_MARK` so that cleaners and `dfprep verify` recognise it), fsynced, renamed into
place, and its directory fsynced: a reader sees the old file or the complete new one, never a
partial one, even after a power cut. A writer killed half-way leaves only a temporary file, which
nothing reads and `remove_tmp` deletes.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dfprep.core.errors import WriteError

__all__ = [
    "TMP_MARK",
    "fsync_dir",
    "fsync_tree",
    "publish",
    "remove_tmp",
    "tmp_path",
    "write_bytes",
    "write_json",
    "write_text",
    "writing",
    "writing_to",
]

TMP_MARK = ".tmp-"


def tmp_path(path: str | Path) -> Path:
    """A unique temporary name beside PATH: `.NAME.tmp-PID-UUID` (the pid says who writes it)."""
    path = Path(path)
    return path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def fsync_dir(directory: str | Path) -> None:
    """Make a rename inside DIRECTORY durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a directory: nothing more can be done
        pass
    finally:
        os.close(fd)


def fsync_tree(directory: str | Path) -> None:
    """fsync every file under DIRECTORY, then the directories themselves (before renaming it)."""
    directory = Path(directory)
    for p in sorted(directory.rglob("*")):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    for d in sorted({p.parent for p in directory.rglob("*")} | {directory}, reverse=True):
        fsync_dir(d)


def publish(tmp: str | Path, final: str | Path) -> None:
    """fsync TMP, rename it to FINAL (replacing it), fsync FINAL's directory."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)
    fsync_dir(Path(final).parent)


@contextlib.contextmanager
def writing(what: str | Path) -> Iterator[None]:
    """Turn an OSError while writing WHAT into a one-line WriteError naming it."""
    try:
        yield
    except OSError as e:
        reason = os.strerror(e.errno) if e.errno else (str(e) or type(e).__name__)
        raise WriteError(f"cannot write {what}: {reason}", e.errno) from e


@contextlib.contextmanager
def writing_to(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write FINAL's content into; publish it on success, delete it on failure."""
    final = Path(final)
    tmp = tmp_path(final)
    try:
        yield tmp
        publish(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)  # still there only when something failed


def write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    with writing_to(path) as tmp:
        tmp.write_bytes(data)
    return path


def write_text(path: str | Path, text: str) -> Path:
    path = Path(path)
    with writing_to(path) as tmp:
        tmp.write_text(text)
    return path


def write_json(path: str | Path, obj: Any, *, newline: bool = True, **dumps: Any) -> Path:
    """json.dumps(OBJ, **DUMPS) (indent=1 unless given), plus a final newline unless told not to."""
    dumps.setdefault("indent", 1)
    return write_text(path, json.dumps(obj, **dumps) + ("\n" if newline else ""))


def remove_tmp(directory: str | Path, name: str = "") -> int:
    """Delete the temporary files in DIRECTORY (of files named NAME*, or all): killed writers' leftovers."""
    directory = Path(directory)
    n = 0
    if directory.is_dir():
        for p in directory.glob(f".{name}*{TMP_MARK}*"):
            p.unlink(missing_ok=True)
            n += 1
    return n
