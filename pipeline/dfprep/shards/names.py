"""The names of an extract output's files, and finding its shards.

    DIR/shards/NAME.tar                                   the WebDataset tars, nothing else
    DIR/meta/NAME.{index.parquet,videos.parquet,stats.json[,dropped.parquet]}   their tables

NAME being `PREFIX-NNNNNN` (the manifest's prefix, the job's number). The tars have a folder of
their own so that any WebDataset client reads it as it is (HuggingFace `datasets`'
`load_dataset("webdataset", data_dir=DIR/shards)`, `webdataset`, `wids`). A shard is complete once
its stats file exists and carries the current params hash (extract writes it last). File names are
built by `ShardFiles` and read back by `parse_file_name`, nowhere else.

An output of the first layout (the tables beside the tars in DIR/shards/) is never read as it is:
`find_shards` and `scan_shards` refuse it in one line that says how to move the tables, and
`dfprep extract` moves them itself (`migrate_layout`) before it resumes such an output.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from dfprep.core.atomic import remove_tmp
from dfprep.core.errors import InputError
from dfprep.core.files import NotRegular, read_regular_text

__all__ = [
    "META",
    "SUFFIXES",
    "ShardFiles",
    "find_shards",
    "manifest_prefix",
    "meta_dir",
    "migrate_layout",
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
META = "meta"  # DIR/meta/: the tables of the shards in DIR/shards/


def meta_dir(shards_dir: str | Path) -> Path:
    """The folder of the tables of the shards in SHARDS_DIR (DIR/shards -> DIR/meta)."""
    return Path(shards_dir).parent / META


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
    """Paths of one shard: its tar in DIR/shards/, its tables in DIR/meta/."""

    def __init__(self, shards_dir: str | Path, name: str):
        self.dir = Path(shards_dir)
        self.meta = meta_dir(self.dir)
        self.name = name
        self.tar = self.dir / f"{name}{TAR}"
        self.index = self.meta / f"{name}{INDEX}"
        self.videos = self.meta / f"{name}{VIDEOS}"
        self.stats = self.meta / f"{name}{STATS}"
        # optional: faces of paired fakes dropped as unmanipulated (thumbnails), when there are any
        self.dropped = self.meta / f"{name}{DROPPED}"

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
        remove_tmp(self.meta, f"{self.name}.")


def _old_tables(shards_dir: Path) -> list[Path]:
    """Tables of the first layout: beside the tars, in DIR/shards/."""
    if not shards_dir.is_dir():
        return []
    return sorted(
        p for p in shards_dir.iterdir() if (parse_file_name(p.name) or ("", TAR))[1] != TAR
    )


def migrate_layout(extract_dir: str | Path) -> int:
    """Move the tables of a first-layout output from DIR/shards/ to DIR/meta/ (stats files last,
    so a shard counts as complete only once all its tables are there; rerun after an interruption
    to finish); the number of files moved. The tars stay where they are, byte for byte."""
    shards = Path(extract_dir) / "shards"
    old = _old_tables(shards)
    if not old:
        return 0
    meta = meta_dir(shards)
    meta.mkdir(exist_ok=True)
    for p in sorted(old, key=lambda p: p.name.endswith(STATS)):
        p.replace(meta / p.name)
    return len(old)


def _refuse_old_layout(shards_dir: Path) -> None:
    old = _old_tables(shards_dir)
    if old:
        d = shards_dir.parent
        raise InputError(
            f"{d}: an extract output of the first layout ({old[0].name} beside the tars in "
            f"shards/): rerun `dfprep extract` on it, which moves the tables to {META}/, or move "
            f"them: mkdir -p {d}/{META} && mv {d}/shards/*.parquet {d}/shards/*.json {d}/{META}/"
        )


def scan_shards(shards_dir: str | Path) -> dict[str, set[str]]:
    """Shard name -> the suffixes of its files present (tars in SHARDS_DIR, tables in its meta
    folder), in name order ({} when the folders do not exist). A first-layout output (tables in
    SHARDS_DIR) is an InputError saying how to move them."""
    found: dict[str, set[str]] = {}
    folder = Path(shards_dir)
    _refuse_old_layout(folder)
    for d, suffixes in ((folder, (TAR,)), (meta_dir(folder), SUFFIXES[1:])):
        if d.is_dir():
            for p in d.iterdir():
                parsed = parse_file_name(p.name)
                if parsed and parsed[1] in suffixes:
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
