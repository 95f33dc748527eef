"""The crop pool: what `dfprep extract` wrote, read from its Parquet indexes (never the images).

A shard counts only once its `.stats.json` exists (extract writes it last); shards without one
are listed as skipped so that the statistics say what was left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dfprep.errors import InputError
from dfprep.schema import CROP_INDEX_SCHEMA, VIDEO_STATUS_SCHEMA

# crop-index columns the selection and the statistics need (the boxes and landmarks stay on disk)
INDEX_COLUMNS = [
    "key", "shard", "video_id", "dataset", "split", "label", "video_label", "category",
    "method", "sample_index", "face_index", "time",
]  # fmt: skip
VIDEO_COLUMNS = ["video_id", "path", "dataset", "split", "label", "status", "error"]


@dataclass
class Pool:
    sources: list[str]  # complete source tars; the index's `source` column points into this list
    index: pa.Table  # INDEX_COLUMNS + source (int32)
    videos: pa.Table  # VIDEO_COLUMNS of every video of the complete shards, failed ones too
    skipped: list[str] = field(default_factory=list)  # shards without a stats file
    params_hashes: list[str] = field(default_factory=list)  # extract params of the shards read


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
                    raise InputError(f"{stats}: shard marked complete but {name}{suffix} is missing")
            complete.append(stats)
        elif (shards / f"{name}.tar").exists() or (shards / f"{name}.index.parquet").exists():
            skipped.append(shards / f"{name}.tar")
    return complete, skipped


def _read(path: Path, columns: list[str], schema: pa.Schema) -> pa.Table:
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


def read_pool(extract_dirs: list[str | Path]) -> Pool:
    """All complete shards of the given extract outputs; crop keys must be unique across them."""
    if not extract_dirs:
        raise InputError("no extract directory given")
    sources: list[str] = []
    indexes, videos, skipped, hashes = [], [], [], set()
    for d in extract_dirs:
        complete, incomplete = find_shards(d)
        skipped += [str(p) for p in incomplete]
        for stats in complete:
            name = stats.name[: -len(".stats.json")]
            tar = stats.with_name(f"{name}.tar")
            try:
                hashes.add(str(json.loads(stats.read_text()).get("params_hash", "")))
            except (OSError, ValueError) as e:
                raise InputError(f"{stats}: not a readable stats file ({e})") from None
            index_path = stats.with_name(f"{name}.index.parquet")
            idx = _read(index_path, INDEX_COLUMNS, CROP_INDEX_SCHEMA)
            named = pc.unique(idx["shard"]).to_pylist()
            if any(s != tar.name for s in named):
                raise InputError(f"{index_path}: rows name shard(s) {named}, expected {tar.name}")
            src = pa.array([len(sources)] * len(idx), pa.int32())
            indexes.append(idx.append_column("source", src))
            videos.append(_read(stats.with_name(f"{name}.videos.parquet"), VIDEO_COLUMNS, VIDEO_STATUS_SCHEMA))
            sources.append(str(tar.resolve()))
    if indexes:
        index = pa.concat_tables(indexes)
    else:
        schema = pa.schema([CROP_INDEX_SCHEMA.field(c) for c in INDEX_COLUMNS] + [("source", pa.int32())])
        index = schema.empty_table()
    video_table = pa.concat_tables(videos) if videos else pa.schema(
        [VIDEO_STATUS_SCHEMA.field(c) for c in VIDEO_COLUMNS]).empty_table()
    _check_unique_keys(index, sources)
    return Pool(sources, index, video_table, skipped, sorted(h for h in hashes if h))


def _check_unique_keys(index: pa.Table, sources: list[str]) -> None:
    if pc.count_distinct(index["key"]).as_py() == len(index):
        return
    counts = index.group_by("key").aggregate([("source", "list")])
    dup = counts.filter(pc.greater(pc.list_value_length(counts["source_list"]), 1)).slice(0, 1)
    key, where = dup["key"][0].as_py(), dup["source_list"][0].as_py()
    shards = " and ".join(sorted({sources[i] for i in where}))
    raise InputError(f"crop {key!r} appears more than once (in {shards}): the same video was extracted twice?")
