"""Reading an extract output's tables in one place (balance's pool and report, dftrain's test set).

`read_extract_shards` returns the Parquet tables of the complete shards (never the images) and
lists the incomplete ones (see `dfprep.shards.names` for what complete means).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dfprep.core.errors import InputError
from dfprep.core.files import open_regular, read_regular_text
from dfprep.schema import CROP_INDEX_SCHEMA, DROPPED_SCHEMA, LATER_COLUMNS, VIDEO_STATUS_SCHEMA
from dfprep.shards.names import ShardFiles, find_shards

__all__ = [
    "INDEX_COLUMNS",
    "VIDEO_COLUMNS",
    "ExtractShard",
    "empty_index",
    "empty_videos",
    "read_dropped",
    "read_extract_shards",
    "read_table",
]

# crop-index columns the readers need (the boxes and landmarks stay on disk)
INDEX_COLUMNS = [
    "key", "shard", "video_id", "dataset", "split", "label", "video_label", "category",
    "method", "sample_index", "face_index", "time",
]  # fmt: skip
VIDEO_COLUMNS = ["video_id", "path", "dataset", "split", "label", "category", "method", "status",
                 "error", "crops", "frames_sampled", "max_faces_in_frame", "multi_face_share",
                 "flags"]  # fmt: skip


@dataclass
class ExtractShard:
    """One complete shard: its files, INDEX_COLUMNS of its crop index, VIDEO_COLUMNS of its videos."""

    files: ShardFiles
    index: pa.Table
    videos: pa.Table
    params_hash: str
    crop: dict | None = None  # the stats' crop geometry {margin, size}; None before it was recorded


def read_table(path: Path, columns: list[str], schema: pa.Schema) -> pa.Table:
    """COLUMNS of a Parquet table, cast to SCHEMA's types; an InputError naming PATH otherwise.
    Columns added later (`schema.LATER_COLUMNS`) that an older table lacks are nulls."""
    try:
        with open_regular(path) as f:
            pf = pq.ParquetFile(f)
            names = pf.schema_arrow.names
            missing = [c for c in columns if c not in names and c not in LATER_COLUMNS]
            if missing:
                raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
            table = pf.read(columns=[c for c in columns if c in names])
    except (OSError, pa.ArrowException) as e:
        raise InputError(f"{path}: not a readable Parquet file ({e})") from None
    for c in columns:
        if c not in table.column_names:
            table = table.append_column(schema.field(c), pa.nulls(len(table), schema.field(c).type))
    table = table.select(columns)
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
    for files in complete:
        try:
            stats = json.loads(read_regular_text(files.stats))
            params_hash = str(stats.get("params_hash", ""))
        except (OSError, ValueError, AttributeError) as e:
            raise InputError(f"{files.stats}: not a readable stats file ({e})") from None
        crop = stats.get("crop")
        index = read_table(files.index, INDEX_COLUMNS, CROP_INDEX_SCHEMA)
        named = pc.unique(index["shard"]).to_pylist()
        if any(s != files.tar.name for s in named):
            raise InputError(
                f"{files.index}: rows name shard(s) {named}, expected {files.tar.name}"
            )
        videos = read_table(files.videos, VIDEO_COLUMNS, VIDEO_STATUS_SCHEMA)
        out.append(
            ExtractShard(
                files, index, videos, params_hash, crop if isinstance(crop, dict) else None
            )
        )
    return out, incomplete


def read_dropped(extract_dir: str | Path) -> tuple[pa.Table, int]:
    """(the thumbnails of faces dropped as unmanipulated, all complete shards together; the
    number of faces dropped, from the stats) of one extract output. Shards written before
    pairing have neither: an empty table and 0."""
    complete, _ = find_shards(extract_dir)
    tables, dropped = [], 0
    for files in complete:
        dropped += int((files.read_stats() or {}).get("faces_dropped", 0))
        if files.dropped.exists():
            tables.append(read_table(files.dropped, DROPPED_SCHEMA.names, DROPPED_SCHEMA))
    table = pa.concat_tables(tables) if tables else DROPPED_SCHEMA.empty_table()
    return table, dropped
