"""A folder that a tool replaces as a whole: `dfprep synth`'s sample, the miniature's learning check.

Such a folder is new, empty, or holds exactly what the tool wrote there the last time: a marker
file lists every file it wrote. Before anything is removed, the whole tree is checked against
that list; a file or folder that is not on it, at any depth, is refused in one line naming it,
and nothing is deleted. No command removes what it did not create.

`replacing(root, marker, info)` claims the folder (checks it, removes the listed files and the
folders they leave empty), runs the block, and writes the marker with the files now there, even
when the block fails (`complete: false`), so that a failed run's leftovers can be replaced by the
next run. Only a process killed outright leaves files without a list; the folder is then refused
until the user removes it. The output lock's file (`dfprep.core.lock`) is not part of the tree.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from dfprep.core.atomic import write_json
from dfprep.core.errors import InputError
from dfprep.core.files import read_regular_text
from dfprep.core.lock import LOCK_NAME
from dfprep.core.outputs import output_dir

__all__ = ["claim", "record", "replacing", "tree"]


def tree(root: Path, marker: str) -> tuple[list[str], list[str]]:
    """(files, folders) under ROOT as POSIX paths relative to it, symlinks counted as files and
    never followed; the marker and the lock file left out."""
    files, folders = [], []
    for top, dirs, names in os.walk(root):
        rel = Path(top).relative_to(root)
        for d in list(dirs):
            if (Path(top) / d).is_symlink():
                dirs.remove(d)
                names.append(d)
            else:
                folders.append((rel / d).as_posix())
        for n in names:
            if rel == Path(".") and n in (marker, LOCK_NAME):
                continue
            files.append((rel / n).as_posix())
    return sorted(files), sorted(folders)


def _listed(root: Path, marker: str, what: str, owner: str, example: str) -> list[str]:
    path = root / marker
    try:
        data = json.loads(read_regular_text(path))  # a FIFO as the marker: refused, never read
    except FileNotFoundError:
        raise InputError(
            f"{what}: {root} is not empty and holds no {owner} ({marker} missing), e.g. "
            f"{example}: nothing was removed (choose another folder)"
        ) from None
    except (OSError, ValueError) as e:
        raise InputError(f"{what}: {path}: unreadable ({e}); remove the folder yourself") from None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise InputError(
            f"{what}: {path} lists no files (written by an older version): {root} cannot be "
            "checked, so it is not replaced; remove it yourself"
        )
    return files


def claim(root: str | Path, marker: str, what: str, owner: str) -> Path:
    """Make ROOT ready to be written: new or empty (made), or holding exactly the files its marker
    lists (those removed, with the folders they leave empty). Anything else is an InputError
    naming what is not the tool's, and nothing is removed."""
    root = output_dir(root, f"{what}: output root")
    if not root.is_dir():
        root.mkdir(parents=True, exist_ok=True)
        return root
    files, folders = tree(root, marker)
    if not files and not folders and not (root / marker).exists():
        return root
    listed = _listed(root, marker, what, owner, (files or folders or [marker])[0])
    mine = set(listed)
    parents = {p.as_posix() for f in listed for p in Path(f).parents if p != Path(".")}
    foreign = [f for f in files if f not in mine] + [d for d in folders if d not in parents]
    if foreign:
        n = len(foreign)
        raise InputError(
            f"{what}: {root} holds {n} file(s) or folder(s) that are not the {owner}'s, e.g. "
            f"{sorted(foreign)[0]}: nothing was removed (move them out, or choose another folder)"
        )
    for f in files:
        (root / f).unlink()
    for d in sorted(folders, key=lambda d: -d.count("/")):  # innermost first
        with contextlib.suppress(OSError):
            (root / d).rmdir()
    (root / marker).unlink(missing_ok=True)
    return root


def record(root: str | Path, marker: str, info: dict, complete: bool = True) -> Path:
    """Write ROOT/MARKER: INFO, whether the run completed, and every file now under ROOT."""
    root = Path(root)
    files, _ = tree(root, marker)
    return write_json(root / marker, {**info, "complete": complete, "files": files})


@contextlib.contextmanager
def replacing(root: str | Path, marker: str, info: dict, what: str, owner: str) -> Iterator[Path]:
    """`claim` ROOT, run the block, then `record` it (also after a failure, marked incomplete)."""
    root = claim(root, marker, what, owner)
    try:
        yield root
    except BaseException:
        with contextlib.suppress(OSError):
            record(root, marker, info, complete=False)
        raise
    record(root, marker, info)
