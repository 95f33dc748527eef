"""The names of an extract output's files, and finding its shards.

DIR/shards/NAME.{tar,index.parquet,videos.parquet,stats.json[,dropped.parquet]}, NAME being
`PREFIX-NNNNNN` (the manifest's prefix, the job's number). A shard is complete once its stats file
exists and carries the current params hash (extract writes it last). File names are built by
`ShardFiles` and read back by `parse_file_name`, nowhere else.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from dfprep.core.atomic import remove_tmp
from dfprep.core.errors import InputError
from dfprep.core.files import NotRegular, read_regular_text

__all__ = [
    "SUFFIXES",
    "ShardFiles",
    "find_shards",
    "manifest_prefix",
    "parse_file_name",
    "scan_shards",
    "shard_name",
    "shard_prefix",
    "with_stats",
]

TAR, INDEX, VIDEOS, STATS, DROPPED = (
    ".tar",
    ".index.parquet",
    ".videos.parquet",
    ".stats.json",
    ".dropped.parquet",
)
SUFFIXES = (TAR, INDEX, VIDEOS, STATS, DROPPED)


def manifest_prefix(path: str | Path) -> str:
    """Shard name prefix of a manifest: its file stem, made safe."""
    stem = Path(path).name.split(".")[0]
    return re.sub(r"[^A-Za-z0-9_]", "_", stem) or "manifest"


def shard_name(prefix: str, index: int) -> str:
    return f"{prefix}-{index:06d}"


def shard_prefix(name: str) -> str:
    """The prefix of a shard name (the manifest it was planned from)."""
    return name.rsplit("-", 1)[0]


def parse_file_name(filename: str) -> tuple[str, str] | None:
    """(shard name, suffix) of a file extract writes; None for anything else (temporary files,
    which are hidden, included)."""
    name, dot, rest = filename.partition(".")
    if not name or not dot or f".{rest}" not in SUFFIXES:
        return None
    return name, f".{rest}"


class ShardFiles:
    """Paths of one shard inside DIR/shards/."""

    def __init__(self, shards_dir: str | Path, name: str):
        self.dir = Path(shards_dir)
        self.name = name
        self.tar = self.dir / f"{name}{TAR}"
        self.index = self.dir / f"{name}{INDEX}"
        self.videos = self.dir / f"{name}{VIDEOS}"
        self.stats = self.dir / f"{name}{STATS}"
        # optional: faces of paired fakes dropped as unmanipulated (thumbnails), when there are any
        self.dropped = self.dir / f"{name}{DROPPED}"

    @property
    def all(self) -> tuple[Path, ...]:
        return (self.tar, self.index, self.videos, self.stats)

    def read_stats(self) -> dict | None:
        try:
            return json.loads(read_regular_text(self.stats))
        except (FileNotFoundError, NotRegular, UnicodeDecodeError, json.JSONDecodeError):
            return None

    def is_complete(self, params_hash: str) -> bool:
        stats = self.read_stats()
        return (
            stats is not None
            and stats.get("params_hash") == params_hash
            and all(p.exists() for p in (self.tar, self.index, self.videos))
        )

    def remove(self) -> None:
        """Delete the shard, and the temporary files of an attempt whose worker was killed."""
        for p in (self.stats, *self.all[:-1], self.dropped):  # stats first: no longer done
            p.unlink(missing_ok=True)
        remove_tmp(self.dir, f"{self.name}.")


def scan_shards(shards_dir: str | Path) -> dict[str, set[str]]:
    """Shard name -> the suffixes of its files present in SHARDS_DIR, in name order ({} when
    the folder does not exist)."""
    found: dict[str, set[str]] = {}
    folder = Path(shards_dir)
    if folder.is_dir():
        for p in folder.iterdir():
            parsed = parse_file_name(p.name)
            if parsed:
                found.setdefault(parsed[0], set()).add(parsed[1])
    return dict(sorted(found.items()))


def with_stats(shards_dir: str | Path) -> list[str]:
    """The shards of SHARDS_DIR that have a stats file, whatever their params hash."""
    return [name for name, suffixes in scan_shards(shards_dir).items() if STATS in suffixes]


def find_shards(extract_dir: str | Path) -> tuple[list[ShardFiles], list[Path]]:
    """(complete shards, incomplete shards' tars) of one extract output directory; a shard whose
    stats file exists but whose tar or tables do not is an InputError."""
    shards = Path(extract_dir) / "shards"
    if not shards.is_dir():
        raise InputError(f"{extract_dir}: not an extract output directory (no shards/ folder)")
    complete, incomplete = [], []
    for name, suffixes in scan_shards(shards).items():
        files = ShardFiles(shards, name)
        if STATS in suffixes:
            for suffix in (TAR, INDEX, VIDEOS):
                if suffix not in suffixes:
                    raise InputError(
                        f"{files.stats}: shard marked complete but {name}{suffix} is missing"
                    )
            complete.append(files)
        elif TAR in suffixes or INDEX in suffixes:
            incomplete.append(files.tar)
    return complete, incomplete
