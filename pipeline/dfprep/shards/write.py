"""Writing one shard: the WebDataset tar, its crop index, its video status table, its stats.

Everything is written under a unique temporary name and renamed into place, the stats JSON last:
a shard is complete iff its stats file exists (and carries the current params hash), so a run
killed at any moment never leaves a partial file that a rerun or a reader would trust.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dfprep.core.atomic import TMP_MARK, publish, remove_tmp, tmp_path, write_json, writing
from dfprep.schema import CROP_INDEX_SCHEMA, DROPPED_SCHEMA, VIDEO_STATUS_SCHEMA
from dfprep.shards.names import ShardFiles, meta_dir
from dfprep.shards.tario import TarSink

__all__ = ["ShardWriter", "remove_stale_tmp"]


def remove_stale_tmp(shards_dir: Path) -> int:
    """Delete temporary files left by killed runs (nothing reads them), tars' and tables'."""
    return remove_tmp(shards_dir) + remove_tmp(meta_dir(shards_dir))


class ShardWriter:
    """Streams samples into a temporary tar; `commit` publishes tar, tables and stats in order."""

    def __init__(self, files: ShardFiles):
        self.files = files
        self._tmp_tar = tmp_path(files.tar)
        with writing(files.tar):
            files.dir.mkdir(parents=True, exist_ok=True)
            files.meta.mkdir(parents=True, exist_ok=True)
            self._stream = open(self._tmp_tar, "wb")  # noqa: SIM115 (closed in commit/abort)
        self._tar = TarSink(self._stream)  # fixed mtimes and order: byte-identical reruns
        self.count = 0

    def write(self, key: str, members: dict[str, bytes]) -> None:
        """members: extension -> bytes (e.g. {"jpg": ..., "cls": b"1", "json": ...})."""
        with writing(self.files.tar):
            self._tar.write(key, members)
        self.count += 1

    def commit(
        self,
        index_rows: list[dict],
        video_rows: list[dict],
        stats: dict,
        dropped_rows: list[dict] | None = None,
    ) -> None:
        with writing(self.files.tar):
            self._tar.close()
            self._stream.close()
        written: list[Path] = []
        try:
            with writing(self.files.tar):
                publish(self._tmp_tar, self.files.tar)
            written.append(self.files.tar)
            tables = [
                (index_rows, CROP_INDEX_SCHEMA, self.files.index),
                (video_rows, VIDEO_STATUS_SCHEMA, self.files.videos),
            ]
            if dropped_rows:
                tables.append((dropped_rows, DROPPED_SCHEMA, self.files.dropped))
            for rows, schema, final in tables:
                tmp = tmp_path(final)
                with writing(final):
                    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)
                    publish(tmp, final)
                written.append(final)
            with writing(self.files.stats):  # last: the shard counts as done from here
                write_json(self.files.stats, stats, newline=False, sort_keys=True)
        except BaseException:
            for p in written:
                p.unlink(missing_ok=True)
            for d in (self.files.dir, self.files.meta):
                for p in d.glob(f".{self.files.name}.*{TMP_MARK}*"):
                    if str(os.getpid()) in p.name:
                        p.unlink(missing_ok=True)
            raise

    def abort(self) -> None:
        """Drop the temporary tar; never raises (a full disk also fails the closing flush; a write
        cut short by Ctrl-C may leave the tar stream in any state)."""
        with contextlib.suppress(OSError, ValueError):
            self._tar.close()
        with contextlib.suppress(OSError, ValueError):
            self._stream.close()
        self._tmp_tar.unlink(missing_ok=True)
