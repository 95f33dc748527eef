"""The on-disk format of an extract output, known in this package only (dfprep and dftrain read
and write it through the names below; it stands on `dfprep.core` and `dfprep.schema` alone).

- `names`: the layout (tars in DIR/shards/, their tables in DIR/meta/), the files of one shard
  (`ShardFiles`, `shard_name`), reading a file name back (`parse_file_name`), finding the shards of
  an output (`scan_shards`, `find_shards`), moving a first-layout output (`migrate_layout`).
- `tario`: WebDataset tars with the standard library (`TarSink`, `iter_samples`, ...).
- `codec`: the bytes of one sample (`encode_sample`, `check_sample`, `parse_sample`, `decode_jpeg`).
- `write`: a shard written under temporary names and published stats last (`ShardWriter`).
- `read`: the Parquet tables of the complete shards (`read_extract_shards`, `read_dropped`).
- `card`: what other clients read: a HuggingFace dataset card and a wids index (`write_card`).

Callers outside the package import these names from `dfprep.shards`.
"""

from dfprep.shards.card import write_card
from dfprep.shards.codec import (
    SAMPLE_MEMBERS,
    Sample,
    check_sample,
    decode_jpeg,
    encode_sample,
    is_complete_jpeg,
    parse_sample,
)
from dfprep.shards.names import (
    META,
    SUFFIXES,
    ShardFiles,
    find_shards,
    manifest_prefix,
    meta_dir,
    migrate_layout,
    parse_file_name,
    scan_shards,
    shard_name,
    shard_prefix,
    with_stats,
)
from dfprep.shards.read import (
    INDEX_COLUMNS,
    VIDEO_COLUMNS,
    ExtractShard,
    empty_index,
    empty_videos,
    read_dropped,
    read_extract_shards,
    read_table,
)
from dfprep.shards.tario import TarSink, count_samples, iter_samples, read_members, split_name
from dfprep.shards.write import ShardWriter, remove_stale_tmp

__all__ = [
    "INDEX_COLUMNS",
    "META",
    "SAMPLE_MEMBERS",
    "SUFFIXES",
    "VIDEO_COLUMNS",
    "ExtractShard",
    "Sample",
    "ShardFiles",
    "ShardWriter",
    "TarSink",
    "check_sample",
    "count_samples",
    "decode_jpeg",
    "empty_index",
    "empty_videos",
    "encode_sample",
    "find_shards",
    "is_complete_jpeg",
    "iter_samples",
    "manifest_prefix",
    "meta_dir",
    "migrate_layout",
    "parse_file_name",
    "parse_sample",
    "read_dropped",
    "read_extract_shards",
    "read_members",
    "read_table",
    "remove_stale_tmp",
    "scan_shards",
    "shard_name",
    "shard_prefix",
    "split_name",
    "with_stats",
    "write_card",
]
