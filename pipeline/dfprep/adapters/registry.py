"""The adapter registry and the types every adapter shares (`VideoRow`, `AdapterOptions`).

The adapters import this module, never the `dfprep.adapters` package: no import cycle.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dfprep.core.errors import InputError
from dfprep.core.media import not_taken

log = logging.getLogger(__name__)

__all__ = [
    "ADAPTERS",
    "Adapter",
    "AdapterOptions",
    "VideoRow",
    "check_listed",
    "get_adapter",
    "note_skipped",
    "register",
]


@dataclass
class VideoRow:
    relpath: str  # path relative to the dataset root, "/"-separated (the id is derived from it)
    split: str
    label: int
    method: str
    category: str
    source_id: str = ""
    split_derived: bool = False
    kind: str = "video"  # video | frames
    frame_stride: int = 1
    fake_segments: list[tuple[float, float]] | None = None
    original: str = ""  # a fake's: relpath of the real video it was made from ("" = not known)
    mask: str = ""  # a fake's: relpath of the publisher's manipulation-mask video ("" = none)


@dataclass
class AdapterOptions:
    skip_missing: bool = False  # listed files that are absent: warn and count instead of failing
    csv: Path | None = None  # folder adapter: a CSV of path,label[,split,method,category]
    options: dict = field(default_factory=dict)  # adapter-specific flags (from the catalogue/CLI)
    missing: list[str] = field(default_factory=list)  # filled by adapters when skip_missing
    # filled by adapters that list folders: (relpath, why) of each file there not taken as a video
    skipped: list[tuple[str, str]] = field(default_factory=list)


Adapter = Callable[[Path, AdapterOptions], Iterable[VideoRow]]

# The built-in adapters: each is the function NAME of module dfprep.adapters.NAME, imported when
# first asked for (nothing registers itself as a side effect of being imported).
BUILTIN = ("celebdf", "df40", "dfd", "dfdc", "dfeval2024", "fakeavceleb", "ffpp", "folder", "forgerynet",
           "wilddeepfake")  # fmt: skip
ADAPTERS: dict[str, str | Adapter] = {name: f"dfprep.adapters.{name}:{name}" for name in BUILTIN}


def register(name: str) -> Callable[[Adapter], Adapter]:
    """Add an adapter under NAME (a decorator, for adapters that live outside this package)."""

    def deco(fn: Adapter) -> Adapter:
        ADAPTERS[name] = fn
        return fn

    return deco


def get_adapter(name: str) -> Adapter:
    if name not in ADAPTERS:
        raise InputError(f"unknown dataset adapter {name!r}; known: {', '.join(sorted(ADAPTERS))}")
    target = ADAPTERS[name]
    if isinstance(target, str):
        module, _, fn = target.partition(":")
        target = ADAPTERS[name] = getattr(importlib.import_module(module), fn)
    return target


def note_skipped(
    root: Path, skipped: list[tuple[Path, str]], opts: AdapterOptions, where: str
) -> None:
    """Files under ROOT that an adapter did not take (the media rule, or their place): recorded in
    `opts.skipped` and named in one warning, so nothing is left out without a word."""
    if not skipped:
        return
    opts.skipped += [(_rel(p, root), why) for p, why in skipped]
    log.warning("%s: %s", where, not_taken(skipped, root))


def _rel(p: Path, root: Path) -> str:
    try:
        return p.relative_to(root).as_posix()
    except ValueError:
        return str(p)


def check_listed(root: Path, relpath: str, opts: AdapterOptions, where: str) -> bool:
    """True if root/relpath exists; otherwise raise (or record it when skip_missing)."""
    if (root / relpath).exists():
        return True
    if opts.skip_missing:
        opts.missing.append(relpath)
        return False
    raise InputError(f"{where}: listed file is missing: {root / relpath}")
