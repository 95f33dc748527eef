"""WebDataset tars read and written with the standard library's tarfile.

`webdataset` itself imports torch (about 1.7 s and 600 MB per process), far too much for a Dask
worker that only copies bytes. `TarSink` writes exactly the bytes `webdataset.TarWriter(mtime=0)`
writes (a test checks), so the shards stay plain WebDataset shards; it uses the PAX format, which
is byte-identical to TarWriter's USTAR for names up to 100 characters and, unlike USTAR, can hold
longer keys (deeply nested video paths make them).

Readers refuse members with absolute paths, `..` components or link types: nothing here writes
members to disk, but such a shard was not made by us, and whoever unpacks it later could be hurt.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Iterator
from typing import BinaryIO

from dfprep.core.errors import InputError
from dfprep.core.files import open_regular


def split_name(name: str) -> tuple[str, str]:
    """Member name -> (key, extension): the key ends at the first dot of the base name."""
    head, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    if not dot:
        return name, ""
    return (f"{head}/{stem}" if head else stem), ext


def check_member(info: tarfile.TarInfo, where: str) -> None:
    """Refuse absolute paths, `..` components and links (shards hold plain files only)."""
    name = info.name
    if name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/"):
        raise InputError(f"{where}: member {name!r} has an unsafe path (absolute or with ..)")
    if info.issym() or info.islnk() or info.isdev():
        raise InputError(f"{where}: member {name!r} is a link or device, not a file")


def iter_samples(
    fileobj: BinaryIO, where: str, want: Callable[[str], bool] | None = None
) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Stream a tar once, yielding (key, {ext: bytes}) for the samples `want` accepts.

    Members of a sample must be contiguous (WebDataset's rule). The file is read in order, once;
    unwanted members are seeked over, so memory stays at one sample and I/O at what is kept.
    """
    key: str | None = None
    members: dict[str, bytes] = {}
    keep = False
    try:
        with tarfile.open(fileobj=fileobj, mode="r:") as tar:
            for info in tar:
                tar.members = []  # tarfile would keep every header
                check_member(info, where)
                if not info.isreg():
                    continue
                k, ext = split_name(info.name)
                if k != key:
                    if key is not None and members:
                        yield key, members
                    key, members = k, {}
                    keep = want is None or want(k)
                if not keep:
                    continue
                if ext in members:
                    raise InputError(f"{where}: member {info.name} appears twice")
                f = tar.extractfile(info)
                members[ext] = f.read() if f is not None else b""
    except tarfile.TarError as e:
        raise InputError(f"{where}: not a readable tar ({e})") from None
    if key is not None and members:
        yield key, members


def count_samples(path: str) -> int:
    """Samples in a WebDataset tar, from its headers alone (`iter_samples` seeks over the data)."""
    n = 0

    def count(_key: str) -> bool:
        nonlocal n
        n += 1
        return False

    try:
        with open_regular(path) as f:
            for _ in iter_samples(f, path, count):
                pass
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from None
    return n


def read_members(path: str, keys: set[str], ext: str) -> dict[str, bytes]:
    """Random access: one member per wanted key, seeking over everything else (headers only)."""
    found: dict[str, bytes] = {}
    try:
        with open_regular(path) as f, tarfile.open(fileobj=f, mode="r:") as tar:
            for info in tar:
                check_member(info, path)
                k, e = split_name(info.name)
                if e == ext and k in keys:
                    f = tar.extractfile(info)
                    found[k] = f.read() if f is not None else b""
                    if len(found) == len(keys):
                        break
    except (OSError, tarfile.TarError) as e:
        raise InputError(f"{path}: not a readable tar ({e})") from None
    return found


class TarSink:
    """Writes samples like `webdataset.TarWriter(fileobj, mtime=0, encoder=False)`."""

    def __init__(self, fileobj: BinaryIO):
        self._tar = tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT)  # noqa: SIM115 (closed in close)

    def write(self, key: str, members: dict[str, bytes]) -> None:
        for ext in sorted(members):
            data = members[ext]
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o444
            info.uname = info.gname = "bigdata"
            self._tar.addfile(info, io.BytesIO(data))

    def close(self) -> None:
        self._tar.close()

    def __enter__(self) -> TarSink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
