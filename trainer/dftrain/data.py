"""Streaming input from `dfprep balance` output: DIR/{train,val}/*.tar + DIR/sizes.json.

Training stream per epoch: the shard list shuffled with (seed, epoch) identically everywhere, split by
rank then by worker; each worker cycles over its shards, shuffles samples in a buffer before decoding,
decodes + augments, batches, and stops after its share of the epoch's batches. The epoch length comes
from sizes.json, so every rank yields exactly the same number of batches (a DDP step never waits on a
rank that ran dry), and the whole stream is a function of (seed, epoch): resume replays it exactly.
Validation reads each sample once across ranks and workers, in order.
"""

from __future__ import annotations

import io
import json
import os
import random
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import torch
import webdataset as wds
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from dfprep.errors import ConfigError, InputError
from dfprep.tario import iter_samples
from dftrain.config import LabelConfig
from dftrain.labels import names, sample_class, shuffled_class

SPLIT_NAMES = ("train", "val")


@dataclass(frozen=True)
class Split:
    name: str
    shards: tuple[str, ...]  # paths, in sizes.json order; shards with 0 samples left out
    sizes: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.sizes)


def read_splits(data_dir: str | Path) -> dict[str, Split]:
    """Check DIR/sizes.json against the shards on disk; a missing or unlisted shard is an error."""
    root = Path(data_dir)
    sizes_path = root / "sizes.json"
    if not sizes_path.is_file():
        raise InputError(f"{sizes_path}: not found (is {root} the output of `dfprep balance`?)")
    try:
        sizes = json.loads(sizes_path.read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"{sizes_path}: not valid JSON ({e})") from None
    if not isinstance(sizes, dict):
        raise InputError(f"{sizes_path}: expected an object with 'train' and 'val'")
    out = {}
    for name in SPLIT_NAMES:
        listed = sizes.get(name)
        if not isinstance(listed, dict) or not listed:
            raise InputError(f"{sizes_path}: no shards listed under {name!r}")
        on_disk = {p.name for p in (root / name).glob("*.tar")}
        missing = sorted(set(listed) - on_disk)
        if missing:
            raise InputError(f"{root / name / missing[0]}: listed in sizes.json but not found")
        extra = sorted(on_disk - set(listed))
        if extra:
            raise InputError(
                f"{root / name / extra[0]}: shard not listed in {sizes_path} (partial write?)"
            )
        bad = [
            k for k, v in listed.items() if isinstance(v, bool) or not isinstance(v, int) or v < 0
        ]
        if bad:
            raise InputError(f"{sizes_path}: {name}.{bad[0]}: sample count must be an integer >= 0")
        kept = [(str(root / name / k), v) for k, v in listed.items() if v > 0]
        if not kept:
            raise InputError(f"{sizes_path}: the {name} split has no samples")
        out[name] = Split(name, tuple(p for p, _ in kept), tuple(v for _, v in kept))
    return out


class SampleDecoder:
    """WebDataset sample (jpg, cls, json bytes) -> (image tensor, class index); picklable for workers."""

    def __init__(self, transform: Callable, labels: LabelConfig):
        self.transform = transform
        self.labels = labels

    def __call__(self, sample: dict) -> tuple[torch.Tensor, int]:
        where = f"{sample.get('__url__', '?')}: sample {sample.get('__key__', '?')}"
        for ext in ("jpg", "cls", "json"):
            if ext not in sample:
                raise InputError(f"{where}: no .{ext} member")
        try:
            meta = json.loads(sample["json"])
            binary = int(sample["cls"].decode("ascii").strip())
        except (ValueError, UnicodeDecodeError) as e:
            raise InputError(f"{where}: unreadable .json/.cls ({e})") from None
        if not isinstance(meta, dict):
            raise InputError(f"{where}: .json is not an object")
        y = sample_class(meta, self.labels, where)
        if self.labels.shuffle:
            y = shuffled_class(str(meta.get("video_id", where)), len(names(self.labels)))
        if binary != int(meta.get("label", -1)):
            raise InputError(
                f"{where}: .cls {binary} disagrees with the .json label {meta.get('label')!r}"
            )
        try:
            with Image.open(io.BytesIO(sample["jpg"])) as im:
                img = im.convert("RGB")
        except (UnidentifiedImageError, OSError) as e:
            raise InputError(f"{where}: undecodable .jpg ({e})") from None
        return self.transform(img), y


def collate(samples: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = zip(*samples, strict=True)
    return torch.stack(images), torch.tensor(labels, dtype=torch.long)


def read_samples(urls: Iterator[str]) -> Iterator[dict]:
    """Raw samples of the given shards in order, read with the pipeline's own tar reader (which
    refuses absolute, `..` and link members); a broken tar is an InputError naming it."""
    for url in urls:
        try:
            with open(url, "rb") as f:
                for key, members in iter_samples(f, url):
                    yield {"__key__": key, "__url__": url, **members}
        except (OSError, ValueError, EOFError, tarfile.TarError) as e:
            why = str(e.args[0] if e.args else e).splitlines()[0]
            raise InputError(f"{url}: unreadable WebDataset shard ({why})") from None


def _cycle(shards: list[str], rng: random.Random) -> Iterator[dict]:
    """Samples of `shards` over and over, shard order reshuffled each pass (bounded by the caller)."""
    while True:
        order = list(shards)
        rng.shuffle(order)
        n = 0
        for s in read_samples(iter(order)):
            n += 1
            yield s
        if n == 0:
            raise InputError(f"{', '.join(shards)}: no samples in these shards")


def worker_share(total: int, worker: int, workers: int) -> int:
    """Batches worker `worker` yields so that the workers together yield exactly `total`."""
    return total // workers + (1 if worker < total % workers else 0)


def _stream_seed(seed: int, epoch: int, rank: int, worker: int) -> int:
    return hash((seed, epoch, rank, worker)) & 0x7FFFFFFF


class TrainStream(IterableDataset):
    """One epoch of training batches for one rank (see the module docstring)."""

    def __init__(
        self,
        split: Split,
        decode: SampleDecoder,
        batch_size: int,
        batches: int,
        *,
        epoch: int,
        seed: int,
        rank: int = 0,
        world: int = 1,
        shuffle_buffer: int = 2000,
        shuffle_initial: int = 500,
    ):
        self.split, self.decode, self.batch_size, self.batches = split, decode, batch_size, batches
        self.epoch, self.seed, self.rank, self.world = epoch, seed, rank, world
        self.shuffle_buffer, self.shuffle_initial = shuffle_buffer, shuffle_initial

    def __len__(self) -> int:
        return self.batches

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        shards = list(self.split.shards)
        random.Random(self.seed * 1_000_003 + self.epoch).shuffle(
            shards
        )  # same order on every reader
        mine = shards[self.rank :: self.world][wid::nw]
        if not mine:
            raise ConfigError(
                f"{self.split.name}: reader {self.rank}/{wid} has no shard (more readers than shards)"
            )
        rng = random.Random(_stream_seed(self.seed, self.epoch, self.rank, wid))
        samples = wds.shuffle(self.shuffle_buffer, self.shuffle_initial, rng=rng)(_cycle(mine, rng))
        decoded = map(self.decode, samples)
        batches = wds.batched(self.batch_size, collation_fn=collate, partial=False)(decoded)
        yield from islice(batches, worker_share(self.batches, wid, nw))


class EvalStream(IterableDataset):
    """Every sample of a split exactly once over all ranks and workers, in shard order."""

    def __init__(
        self, split: Split, decode: SampleDecoder, batch_size: int, rank: int = 0, world: int = 1
    ):
        self.split, self.decode, self.batch_size, self.rank, self.world = (
            split,
            decode,
            batch_size,
            rank,
            world,
        )

    def shards_of_rank(self) -> list[str]:
        return list(self.split.shards[self.rank :: self.world])

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        mine = self.shards_of_rank()[wid::nw]
        decoded = map(self.decode, read_samples(iter(mine)))
        yield from wds.batched(self.batch_size, collation_fn=collate, partial=True)(decoded)


def batches_per_rank(split: Split, batch_size: int, world: int) -> int:
    """Full batches each rank takes per epoch (one pass over the split's samples in total)."""
    n = split.total // (batch_size * world)
    if n < 1:
        raise InputError(
            f"{split.name}: {split.total} samples are fewer than one batch of {batch_size} on each of {world} process(es)"
        )
    return n


def default_workers(world: int, n_shards: int) -> int:
    """Cores per process minus one for the training loop, at most one reader per train shard."""
    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )
    return max(1, min(cores // world - 1, n_shards // world))


def check_workers(split: Split, workers: int, world: int) -> None:
    readers = max(workers, 1) * world
    if len(split.shards) < readers:
        raise ConfigError(
            f"{split.name}: {len(split.shards)} shard(s) for {world} process(es) x {max(workers, 1)} worker(s) = "
            f"{readers} readers; each needs a shard: lower train.data.workers or write more shards"
        )


def loader(
    stream: IterableDataset, workers: int, prefetch: int, seed: int, pin_memory: bool = False
) -> DataLoader:
    """A DataLoader over a stream that batches itself; `seed` fixes the workers' augmentation RNG."""
    return DataLoader(
        stream,
        batch_size=None,
        num_workers=workers,
        prefetch_factor=prefetch if workers > 0 else None,
        persistent_workers=False,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(seed),
    )
