"""Where a command writes: checked before any work, so a wrong `--out` is one line, not a traceback
after hours of work. A path of the wrong kind (a file for a folder, a folder for a file, a path
under a file), a file format the writer does not know, and a folder that cannot be written
(a read-only file system, no permission) are refused here; nothing is created by the check."""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from pathlib import Path

from dfprep.core.errors import InputError, WriteError


def _existing_ancestor(path: Path, option: str) -> Path:
    """The nearest existing directory at or above PATH (a file there is an InputError)."""
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                if p == path:
                    return p.parent
                raise InputError(f"{option} {path}: {p} is a file, not a directory")
            return p
    return Path.cwd()


def _writable(path: Path, where: Path) -> None:
    """A WriteError, as the write itself would raise it, if nothing can be created in WHERE."""
    try:
        read_only = bool(os.statvfs(where).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    code = (
        errno.EROFS if read_only else None if os.access(where, os.W_OK | os.X_OK) else errno.EACCES
    )
    if code is not None:
        raise WriteError(f"cannot write {path}: {os.strerror(code)}", code)


def output_dir(path: str | Path, option: str = "--out") -> Path:
    """A directory to write into: new or an existing directory, never an existing file; one
    that could not be created or written is a WriteError."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"{option} {p}: exists and is not a directory")
    _writable(p, _existing_ancestor(p, option))
    return p


def output_file(
    path: str | Path, option: str = "--out", suffixes: Sequence[str] | None = None
) -> Path:
    """A file to (over)write: new or an existing file, never an existing directory; with
    SUFFIXES, its name must end in one of them (case aside: a figure's format is its suffix).
    Its parent directory is made."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{option} {p}: is a directory; give a file name")
    if suffixes is not None and p.suffix.lower() not in {s.lower() for s in suffixes}:
        raise InputError(
            f"{option} {p}: {f'{p.suffix!r} is not' if p.suffix else 'no suffix, so not'} "
            f"a format it can write (use {', '.join(suffixes)})"
        )
    _writable(p, _existing_ancestor(p, option))
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WriteError(f"cannot write {p}: {os.strerror(e.errno or 0)}", e.errno) from None
    return p


# Figures: the formats matplotlib writes whatever the backend (a figure is written after the
# work, so its name is checked before).
FIGURE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".eps", ".ps", ".tif", ".tiff", ".webp")


def output_figure(path: str | Path, option: str) -> Path:
    """`output_file` for a matplotlib figure: PATH's suffix is its format."""
    return output_file(path, option, FIGURE_SUFFIXES)
