"""Where a command writes: checked before any work, so a wrong `--out` is one line, not a traceback."""

from __future__ import annotations

from pathlib import Path

from dfprep.core.errors import InputError


def _parents_are_dirs(path: Path, option: str) -> None:
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"{option} {path}: {parent} is a file, not a directory")
            return


def output_dir(path: str | Path, option: str = "--out") -> Path:
    """A directory to write into: new or an existing directory, never an existing file."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"{option} {p}: exists and is not a directory")
    _parents_are_dirs(p, option)
    return p


def output_file(path: str | Path, option: str = "--out") -> Path:
    """A file to (over)write: new or an existing file, never an existing directory."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{option} {p}: is a directory; give a file name")
    _parents_are_dirs(p, option)
    p.parent.mkdir(parents=True, exist_ok=True)
    return p
