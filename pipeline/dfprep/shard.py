"""One shard job's files: the WebDataset tar, its crop index, its video status table, its stats.

Everything is written under a unique temporary name and renamed into place, the stats JSON last:
a shard is complete iff its stats file exists (and carries the current params hash), so a run
killed at any moment never leaves a partial file that a rerun or a reader would trust.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dfprep.core.atomic import TMP_MARK, publish, remove_tmp, tmp_path, write_json
from dfprep.errors import DfprepError
from dfprep.schema import CROP_INDEX_SCHEMA, DROPPED_SCHEMA, VIDEO_STATUS_SCHEMA
from dfprep.tario import TarSink

__all__ = [
    "TMP_MARK",
    "ShardFiles",
    "ShardWriteError",
    "ShardWriter",
    "remove_stale_tmp",
    "shard_name",
    "writing",
]


class ShardWriteError(DfprepError, OSError):
    """An output that cannot be written (disk full, file too large, read-only): names the file.

    Still an OSError (with the original errno) for callers that catch those."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno

    def __reduce__(self):  # the errno survives the trip back from a Dask worker
        return (type(self), (str(self), self.errno))


@contextlib.contextmanager
def writing(what: str | Path) -> Iterator[None]:
    """Turn an OSError while writing `what` into a one-line ShardWriteError naming it."""
    try:
        yield
    except OSError as e:
        reason = os.strerror(e.errno) if e.errno else (str(e) or type(e).__name__)
        raise ShardWriteError(f"cannot write {what}: {reason}", e.errno) from e


def shard_name(prefix: str, index: int) -> str:
    return f"{prefix}-{index:06d}"


class ShardFiles:
    """Paths of one shard inside DIR/shards/."""

    def __init__(self, shards_dir: str | Path, name: str):
        self.dir = Path(shards_dir)
        self.name = name
        self.tar = self.dir / f"{name}.tar"
        self.index = self.dir / f"{name}.index.parquet"
        self.videos = self.dir / f"{name}.videos.parquet"
        self.stats = self.dir / f"{name}.stats.json"
        # optional: faces of paired fakes dropped as unmanipulated (thumbnails), when there are any
        self.dropped = self.dir / f"{name}.dropped.parquet"

    @property
    def all(self) -> tuple[Path, ...]:
        return (self.tar, self.index, self.videos, self.stats)

    def read_stats(self) -> dict | None:
        try:
            return json.loads(self.stats.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
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


def remove_stale_tmp(shards_dir: Path) -> int:
    """Delete temporary files left by killed runs (nothing reads them)."""
    return remove_tmp(shards_dir)


class ShardWriter:
    """Streams samples into a temporary tar; `commit` publishes tar, tables and stats in order."""

    def __init__(self, files: ShardFiles):
        self.files = files
        self._tmp_tar = tmp_path(files.tar)
        with writing(files.tar):
            files.dir.mkdir(parents=True, exist_ok=True)
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
            for p in self.files.dir.glob(f".{self.files.name}.*{TMP_MARK}*"):
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
