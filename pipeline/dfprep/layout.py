"""The layout of a `dfprep extract` output, read in one place (balance's pool, dftrain's test set).

DIR/shards/NAME.{tar,index.parquet,videos.parquet,stats.json} (see `dfprep.shard.ShardFiles`); a
shard counts only once its `.stats.json` exists (extract writes it last). `read_extract_shards`
returns the Parquet tables of the complete shards (never the images) and lists the incomplete ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dfprep.errors import InputError
from dfprep.schema import CROP_INDEX_SCHEMA, DROPPED_SCHEMA, VIDEO_STATUS_SCHEMA
from dfprep.shard import ShardFiles

__all__ = [
    "INDEX_COLUMNS",
    "VIDEO_COLUMNS",
    "ExtractShard",
    "find_shards",
    "read_dropped",
    "read_extract_shards",
]

# crop-index columns the readers need (the boxes and landmarks stay on disk)
INDEX_COLUMNS = [
    "key", "shard", "video_id", "dataset", "split", "label", "video_label", "category",
    "method", "sample_index", "face_index", "time",
]  # fmt: skip
VIDEO_COLUMNS = ["video_id", "path", "dataset", "split", "label", "category", "method", "status",
                 "error", "crops"]  # fmt: skip


@dataclass
class ExtractShard:
    """One complete shard: its files, INDEX_COLUMNS of its crop index, VIDEO_COLUMNS of its videos."""

    files: ShardFiles
    index: pa.Table
    videos: pa.Table
    params_hash: str


def find_shards(extract_dir: str | Path) -> tuple[list[Path], list[Path]]:
    """(complete shards' stats files, incomplete shards' tars) of one extract output directory."""
    shards = Path(extract_dir) / "shards"
    if not shards.is_dir():
        raise InputError(f"{extract_dir}: not an extract output directory (no shards/ folder)")
    complete, skipped = [], []
    names = {p.name.split(".")[0] for p in shards.iterdir() if not p.name.startswith(".")}
    for name in sorted(names):
        stats = shards / f"{name}.stats.json"
        if stats.exists():
            for suffix in (".tar", ".index.parquet", ".videos.parquet"):
                if not (shards / f"{name}{suffix}").exists():
                    raise InputError(
                        f"{stats}: shard marked complete but {name}{suffix} is missing"
                    )
            complete.append(stats)
        elif (shards / f"{name}.tar").exists() or (shards / f"{name}.index.parquet").exists():
            skipped.append(shards / f"{name}.tar")
    return complete, skipped


def read_table(path: Path, columns: list[str], schema: pa.Schema) -> pa.Table:
    """COLUMNS of a Parquet table, cast to SCHEMA's types; an InputError naming PATH otherwise."""
    try:
        names = pq.read_schema(path).names
        missing = [c for c in columns if c not in names]
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
        table = pq.read_table(path, columns=columns)
    except (OSError, pa.ArrowException) as e:
        raise InputError(f"{path}: not a readable Parquet file ({e})") from None
    want = pa.schema([schema.field(c) for c in columns])
    try:
        return table.cast(want)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise InputError(f"{path}: columns do not match the schema ({e})") from None


def empty_index() -> pa.Table:
    return pa.schema([CROP_INDEX_SCHEMA.field(c) for c in INDEX_COLUMNS]).empty_table()


def empty_videos() -> pa.Table:
    return pa.schema([VIDEO_STATUS_SCHEMA.field(c) for c in VIDEO_COLUMNS]).empty_table()


def read_extract_shards(extract_dir: str | Path) -> tuple[list[ExtractShard], list[Path]]:
    """(complete shards with their tables, incomplete shards' tars) of one extract output; a
    complete shard whose index names another tar, or whose stats do not parse, is an InputError."""
    complete, incomplete = find_shards(extract_dir)
    out = []
    for stats in complete:
        files = ShardFiles(stats.parent, stats.name[: -len(".stats.json")])
        try:
            params_hash = str(json.loads(stats.read_text()).get("params_hash", ""))
        except (OSError, ValueError, AttributeError) as e:
            raise InputError(f"{stats}: not a readable stats file ({e})") from None
        index = read_table(files.index, INDEX_COLUMNS, CROP_INDEX_SCHEMA)
        named = pc.unique(index["shard"]).to_pylist()
        if any(s != files.tar.name for s in named):
            raise InputError(
                f"{files.index}: rows name shard(s) {named}, expected {files.tar.name}"
            )
        videos = read_table(files.videos, VIDEO_COLUMNS, VIDEO_STATUS_SCHEMA)
        out.append(ExtractShard(files, index, videos, params_hash))
    return out, incomplete


def read_dropped(extract_dir: str | Path) -> tuple[pa.Table, int]:
    """(the thumbnails of faces dropped as unmanipulated, all complete shards together; the
    number of faces dropped, from the stats) of one extract output. Shards written before
    pairing have neither: an empty table and 0."""
    complete, _ = find_shards(extract_dir)
    tables, dropped = [], 0
    for stats in complete:
        files = ShardFiles(stats.parent, stats.name[: -len(".stats.json")])
        dropped += int((files.read_stats() or {}).get("faces_dropped", 0))
        if files.dropped.exists():
            tables.append(read_table(files.dropped, DROPPED_SCHEMA.names, DROPPED_SCHEMA))
    table = pa.concat_tables(tables) if tables else DROPPED_SCHEMA.empty_table()
    return table, dropped
