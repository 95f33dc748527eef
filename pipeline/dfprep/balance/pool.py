"""The crop pool: what `dfprep extract` wrote, read from its Parquet indexes (never the images).

A shard counts only once its `.stats.json` exists (extract writes it last); shards without one
are listed as skipped so that the statistics say what was left out. The shards themselves are
read by `dfprep.shards`, which dftrain's test set reads too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from dfprep.core.errors import InputError
from dfprep.shards import empty_index, empty_videos, read_extract_shards


@dataclass
class Pool:
    sources: list[str]  # complete source tars; the index's `source` column points into this list
    index: pa.Table  # INDEX_COLUMNS + source (int32)
    videos: pa.Table  # VIDEO_COLUMNS of every video of the complete shards, failed ones too
    skipped: list[str] = field(default_factory=list)  # shards without a stats file
    params_hashes: list[str] = field(default_factory=list)  # extract params of the shards read
    # the distinct crop geometries ({margin, size}) the shards record; None: shards that record none
    crops: list[dict | None] = field(default_factory=list)


def read_pool(extract_dirs: list[str | Path]) -> Pool:
    """All complete shards of the given extract outputs; crop keys must be unique across them."""
    if not extract_dirs:
        raise InputError("no extract directory given")
    sources: list[str] = []
    indexes, videos, skipped, hashes, crops = [], [], [], set(), set()
    for d in extract_dirs:
        complete, incomplete = read_extract_shards(d)
        skipped += [str(p) for p in incomplete]
        for shard in complete:
            hashes.add(shard.params_hash)
            crops.add(tuple(sorted(shard.crop.items())) if shard.crop else ())
            src = pa.array([len(sources)] * len(shard.index), pa.int32())
            indexes.append(shard.index.append_column("source", src))
            videos.append(shard.videos)
            sources.append(str(shard.files.tar.resolve()))
    if indexes:
        index = pa.concat_tables(indexes)
    else:
        index = empty_index().append_column("source", pa.array([], pa.int32()))
    video_table = pa.concat_tables(videos) if videos else empty_videos()
    _check_unique_keys(index, sources)
    geometry = [dict(c) if c else None for c in sorted(crops)]
    return Pool(sources, index, video_table, skipped, sorted(h for h in hashes if h), geometry)


def _check_unique_keys(index: pa.Table, sources: list[str]) -> None:
    if pc.count_distinct(index["key"]).as_py() == len(index):
        return
    counts = index.group_by("key").aggregate([("source", "list")])
    dup = counts.filter(pc.greater(pc.list_value_length(counts["source_list"]), 1)).slice(0, 1)
    key, where = dup["key"][0].as_py(), dup["source_list"][0].as_py()
    shards = " and ".join(sorted({sources[i] for i in where}))
    raise InputError(
        f"crop {key!r} appears more than once (in {shards}): the same video was extracted twice?"
    )
