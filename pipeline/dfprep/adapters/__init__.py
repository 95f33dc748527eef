"""Dataset adapters: each reads one dataset as its publishers ship it and yields `VideoRow`s.

An adapter only knows the layout; ids, validation and the Parquet file are `dfprep.manifest`'s job.
Register a new adapter with `@register("name")` in a module imported below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dfprep.errors import InputError


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


@dataclass
class AdapterOptions:
    skip_missing: bool = False  # listed files that are absent: warn and count instead of failing
    csv: Path | None = None  # folder adapter: a CSV of path,label[,split,method,category]
    options: dict = field(default_factory=dict)  # adapter-specific flags (from the catalogue/CLI)
    missing: list[str] = field(default_factory=list)  # filled by adapters when skip_missing


Adapter = Callable[[Path, AdapterOptions], Iterable[VideoRow]]
ADAPTERS: dict[str, Adapter] = {}


def register(name: str) -> Callable[[Adapter], Adapter]:
    def deco(fn: Adapter) -> Adapter:
        ADAPTERS[name] = fn
        return fn

    return deco


def get_adapter(name: str) -> Adapter:
    if name not in ADAPTERS:
        raise InputError(f"unknown dataset adapter {name!r}; known: {', '.join(sorted(ADAPTERS))}")
    return ADAPTERS[name]


def check_listed(root: Path, relpath: str, opts: AdapterOptions, where: str) -> bool:
    """True if root/relpath exists; otherwise raise (or record it when skip_missing)."""
    if (root / relpath).exists():
        return True
    if opts.skip_missing:
        opts.missing.append(relpath)
        return False
    raise InputError(f"{where}: listed file is missing: {root / relpath}")


from dfprep.adapters import (  # noqa: E402, F401  (registration side effects)
    celebdf,
    df40,
    dfd,
    dfdc,
    dfeval2024,
    fakeavceleb,
    ffpp,
    folder,
    forgerynet,
    wilddeepfake,
)
