"""Reading face crops (their .json record and pixels) from balance or extract shards."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from dfprep.core.errors import InputError
from dfprep.shards import decode_jpeg, iter_samples, parse_sample

__all__ = ["crop_image", "iter_crops", "shard_paths"]


def shard_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Tar files as given, and the *.tar under each directory given (sorted; a balance output's
    split folders and an extract output's shards/ alike)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(p.rglob("*.tar"))
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(f"{p}: no such file or directory")
    if not out:
        raise InputError(f"no shard (*.tar) in {', '.join(map(str, paths))}")
    return out


def iter_crops(
    shards: Iterable[Path], want: Callable[[dict], bool] | None = None
) -> Iterator[tuple[dict, bytes]]:
    """(record, JPEG bytes) of every crop in the shards, in order, that `want(record)` accepts."""
    for path in shards:
        with open(path, "rb") as f:
            for key, members in iter_samples(f, str(path)):
                sample = parse_sample(members, f"{path}: {key}", key=key)
                if want is None or want(sample.meta):
                    yield sample.meta, sample.jpg  # type: ignore[misc]


def crop_image(jpg: bytes, where: str) -> np.ndarray:
    """A crop's JPEG as an RGB uint8 array."""
    return np.asarray(decode_jpeg(jpg, where))
