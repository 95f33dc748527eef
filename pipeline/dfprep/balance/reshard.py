"""Selected crops -> shuffled train/val shards, reading every source shard exactly once.

Two passes keep memory at one shard whatever the pool size:
1. `bucket_source`, one task per source shard: stream its tar, keep the selected samples, check
   their labels against the index, and write them to one Parquet bucket file with one row group
   per output shard (sorted by output position).
2. `write_shard`, one task per output shard: read its row groups from the buckets (Parquet
   statistics skip the others), order them by the shuffled position decided up front, and write
   the tar under a temporary name, then rename it into place.
Both tasks are idempotent, so Dask may retry them.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dfprep.balance.layout import write_tar
from dfprep.core.atomic import remove_tmp, writing, writing_to
from dfprep.core.errors import InputError
from dfprep.core.files import open_regular
from dfprep.shards import iter_samples, parse_sample

BUCKET_SCHEMA = pa.schema(
    [
        ("out_shard", pa.string()),
        ("out_pos", pa.int32()),
        ("key", pa.string()),
        ("exts", pa.list_(pa.string())),
        ("data", pa.list_(pa.large_binary())),
    ]
)


def _check(source: str, key: str, label: int, members: dict[str, bytes]) -> None:
    """The sample's own labels must agree with the index it was selected from."""
    parse_sample(members, f"{source}: sample {key}", key=key, label=label)


def bucket_source(source: str, picks: pa.Table, bucket: str) -> int:
    """Pass 1. picks: key, label, out_shard, out_pos of the crops selected from this source."""
    keys = picks["key"].to_pylist()
    want = dict(zip(keys, range(len(keys)), strict=True))
    labels = picks["label"].to_pylist()
    got: list[tuple[list[str], list[bytes]] | None] = [None] * len(keys)
    try:
        with open_regular(source) as f:
            for key, members in iter_samples(f, source, want.__contains__):
                i = want[key]
                _check(source, key, labels[i], members)
                exts = sorted(members)
                got[i] = (exts, [members[e] for e in exts])
    except FileNotFoundError:
        raise InputError(f"{source}: source shard not found") from None
    missing = [k for k, g in zip(keys, got, strict=True) if g is None]
    if missing:
        raise InputError(
            f"{source}: {len(missing)} selected crop(s) missing from the tar (first: {missing[0]})"
        )
    table = pa.table(
        {
            "out_shard": picks["out_shard"],
            "out_pos": picks["out_pos"],
            "key": picks["key"],
            "exts": pa.array([g[0] for g in got], pa.list_(pa.string())),
            "data": pa.array([g[1] for g in got], pa.list_(pa.large_binary())),
        },
        schema=BUCKET_SCHEMA,
    ).sort_by([("out_shard", "ascending"), ("out_pos", "ascending")])
    del got
    final = Path(bucket)
    with (
        writing(final),
        writing_to(final) as tmp,
        pq.ParquetWriter(tmp, BUCKET_SCHEMA, compression="none") as w,  # closed before the publish
    ):
        for name in pc.unique(table["out_shard"]).to_pylist():  # one row group per output shard
            w.write_table(table.filter(pc.equal(table["out_shard"], name)))
    return len(table)


def write_shard(path: str, buckets: list[str], expected: int) -> dict:
    """Pass 2: one output shard from its buckets, in its shuffled order."""
    final = Path(path)
    name = final.name
    rows = (
        pq.read_table(
            buckets,
            schema=BUCKET_SCHEMA,
            filters=pc.field("out_shard") == name,
            columns=["out_pos", "key", "exts", "data"],
        )
        if buckets
        else BUCKET_SCHEMA.empty_table()
    )
    order = pc.sort_indices(rows["out_pos"]).to_numpy()
    pos = rows["out_pos"].to_numpy()[order].tolist()
    if pos != list(range(expected)):
        raise InputError(
            f"{final}: buckets hold {len(pos)} samples, expected {expected} (stale bucket files?)"
        )
    remove_tmp(final.parent, final.name)  # of an attempt whose worker was killed

    def samples():  # taken in slices: no second copy of the shard
        for i in range(0, len(order), 64):
            batch = rows.take(order[i : i + 64])
            columns = (batch["key"], batch["exts"], batch["data"])
            for key, exts, data in zip(*(c.to_pylist() for c in columns), strict=True):
                yield key, dict(zip(exts, data, strict=True))

    write_tar(final, samples())
    return {"name": name, "count": len(pos), "bytes": final.stat().st_size}
