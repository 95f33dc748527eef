"""The layout of a `dfprep balance` output, written in one place: by balance itself, and by the
synthetic training sets of `dftrain bench` and the tests (so both stay what balance writes).

  DIR/train/train-NNNNNN.tar, DIR/val/val-NNNNNN.tar   WebDataset shards
  DIR/sizes.json    {"train": {shard: n}, "val": {...}}: written last, it marks the output complete

`dftrain.data.read_splits` reads it back (and checks sizes.json against the tars).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from dfprep.core.atomic import write_json, writing, writing_to
from dfprep.shards import TarSink, shard_name

SIZES = "sizes.json"

Samples = Iterable[tuple[str, dict[str, bytes]]]  # (key, {ext: bytes}) in shard order


def tar_name(split: str, i: int) -> str:
    """A balanced split's I-th shard: extract's naming (SPLIT-NNNNNN.tar)."""
    return shard_name(split, i) + ".tar"


def write_tar(path: str | Path, samples: Samples) -> int:
    """One shard, published atomically under its name once complete; returns its sample count."""
    final, n = Path(path), 0
    with writing(final), writing_to(final) as tmp, open(tmp, "wb") as f, TarSink(f) as sink:
        for key, members in samples:
            sink.write(key, members)
            n += 1
    return n


def write_sizes(out: str | Path, sizes: Mapping[str, Mapping[str, int]]) -> Path:
    """OUT/sizes.json: each split's shard names and sample counts (written last)."""
    path = Path(out) / SIZES
    with writing(path):
        return write_json(path, sizes)


def write_balanced(out: str | Path, shards: Mapping[str, Iterable[Samples]]) -> dict:
    """A whole balance output from each split's shards (each an iterable of samples), in order;
    returns the sizes written to sizes.json."""
    out = Path(out)
    sizes: dict[str, dict[str, int]] = {}
    for split, split_shards in shards.items():
        (out / split).mkdir(parents=True, exist_ok=True)
        sizes[split] = {}
        for i, samples in enumerate(split_shards):
            name = tar_name(split, i)
            sizes[split][name] = write_tar(out / split / name, samples)
    write_sizes(out, sizes)
    return sizes
