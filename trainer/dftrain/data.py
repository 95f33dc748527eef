"""Streaming input from `dfprep balance` output: DIR/{train,val}/*.tar + DIR/sizes.json.

Training stream per epoch: one pass. The shard list is shuffled with (seed, epoch) identically
everywhere and read as one sequence of samples (sizes.json gives each shard's count). Each reader
(rank, DataLoader worker) takes a contiguous range of that sequence, of exactly the samples its
share of full batches needs, reading only its part of the shards; it shuffles them in a buffer
before decoding (the buffer is emptied at the end, nothing is cut off), decodes, augments and
batches. Every rank takes the same number of steps, ⌊N / (batch × ranks)⌋, so across all ranks and
workers each sample is read exactly once per epoch, except the last N mod (batch × ranks) samples
of the epoch's order (fewer than one global batch; different samples every epoch, since the shard
order is reshuffled), which are left out. The whole stream is a function of (seed, epoch, ranks,
workers): resume replays it exactly. Validation reads each sample once across ranks and workers,
in order. A split can be a subset of its shards' samples (`Split.members`: SBI's real crops); the
sequence is then that of the subset's samples, and the readers skip the others (tar headers only).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import webdataset as wds
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from dfprep.core.errors import ConfigError, InputError, first_line
from dfprep.core.files import open_regular, read_regular_text
from dfprep.core.system import default_workers as default_worker_count
from dfprep.shards import count_samples, decode_jpeg, iter_samples, parse_sample
from dftrain.config import LabelConfig
from dftrain.labels import names, sample_class, shuffled_class, stratified_shuffle

SPLIT_NAMES = ("train", "val")
SHARD_NAME = re.compile(r"[^/\\]+\.tar")  # a file name in the split's folder, nothing else


@dataclass(frozen=True)
class Split:
    name: str
    shards: tuple[str, ...]  # paths, in sizes.json order; shards with 0 samples left out
    sizes: tuple[int, ...]  # samples per shard (of the members when there are members)
    # a subset: per shard, the positions (in the tar, ascending) of the samples taken; None = all
    members: tuple[tuple[int, ...], ...] | None = None

    @property
    def total(self) -> int:
        return sum(self.sizes)


def read_splits(data_dir: str | Path) -> dict[str, Split]:
    """Check DIR/sizes.json against the shards on disk; a missing or unlisted shard is an error."""
    root = Path(data_dir)
    sizes_path = root / "sizes.json"
    try:
        sizes = json.loads(read_regular_text(sizes_path))
    except FileNotFoundError:
        raise InputError(
            f"{sizes_path}: not found (is {root} the output of `dfprep balance`?)"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{sizes_path}: not valid JSON ({e})") from None
    if not isinstance(sizes, dict):
        raise InputError(f"{sizes_path}: expected an object with 'train' and 'val'")
    out = {}
    for name in SPLIT_NAMES:
        listed = sizes.get(name)
        if not isinstance(listed, dict) or not listed:
            raise InputError(f"{sizes_path}: no shards listed under {name!r}")
        odd = [k for k in listed if not isinstance(k, str) or not SHARD_NAME.fullmatch(k)]
        if odd:
            raise InputError(
                f"{sizes_path}: {name}: {odd[0]!r} is not a shard (sizes.json lists the split's "
                f"tars by file name, NAME.tar, in {root / name})"
            )
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
        for k, v in listed.items():  # cheap (tar headers only), and the epoch length depends on it
            n = count_samples(str(root / name / k))
            if n != v:
                raise InputError(f"{root / name / k}: {n} samples, {sizes_path} says {v}")
        kept = [(str(root / name / k), v) for k, v in listed.items() if v > 0]
        if not kept:
            raise InputError(f"{sizes_path}: the {name} split has no samples")
        out[name] = Split(name, tuple(p for p, _ in kept), tuple(v for _, v in kept))
    return out


IDENTITY_FILES = ("sizes.json", "selection.parquet")


def data_identity(data_dir: str | Path) -> dict[str, str]:
    """What a checkpoint records of the balanced directory it was trained on: the path, and a hash
    of sizes.json and selection.parquet (which name every sample, in order) and of the shards'
    names and byte sizes (cheap: no tar is read), which resume checks."""
    root = Path(data_dir)
    h = hashlib.sha256()
    for name in IDENTITY_FILES:
        p = root / name
        h.update(name.encode() + b"\0")
        if p.is_file():
            with open_regular(p) as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        h.update(b"\0")
    for split in SPLIT_NAMES:
        for tar in sorted((root / split).glob("*.tar")):
            h.update(f"{split}/{tar.name}:{tar.stat().st_size}\0".encode())
    return {"dir": str(root.resolve()), "identity": h.hexdigest()[:16]}


class SampleDecoder:
    """WebDataset sample (jpg, cls, json bytes) -> (image tensor, class index); picklable for workers.

    `per_sample` (images a sample gives), `collate` and `for_epoch` are what the streams ask of a
    decoder (`dftrain.sbi.data.SBIDecoder` gives two images per sample, drawn per epoch)."""

    per_sample = 1

    def __init__(
        self, transform: Callable, labels: LabelConfig, shuffled: dict[str, int] | None = None
    ):
        self.transform = transform
        self.labels = labels
        self.shuffled = shuffled or {}  # the control's labels (labels.stratified_shuffle)

    def __call__(self, sample: dict) -> tuple[torch.Tensor, int]:
        where = f"{sample.get('__url__', '?')}: sample {sample.get('__key__', '?')}"
        parsed = parse_sample(sample, where)
        y = sample_class(parsed.meta, self.labels, where)
        if self.labels.shuffle:
            vid = str(parsed.meta.get("video_id", where))
            y = self.shuffled.get(vid)
            if y is None:
                y = shuffled_class(vid, len(names(self.labels)))
        img = decode_jpeg(sample["jpg"], where)
        return self.transform(img), y

    def for_epoch(self, epoch: int) -> SampleDecoder:
        return self  # its randomness comes from the workers' torch generators


def collate(samples: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = zip(*samples, strict=True)
    return torch.stack(images), torch.tensor(labels, dtype=torch.long)


def read_samples(urls: Iterator[str]) -> Iterator[dict]:
    """Raw samples of the given shards in order, read with the pipeline's own tar reader (which
    refuses absolute, `..` and link members); a broken tar is an InputError naming it."""
    for url in urls:
        try:
            with open_regular(url) as f:
                for key, members in iter_samples(f, url):
                    yield {"__key__": key, "__url__": url, **members}
        except (OSError, ValueError, EOFError, tarfile.TarError) as e:
            why = first_line(e.args[0] if e.args else e)
            raise InputError(f"{url}: unreadable WebDataset shard ({why})") from None


def worker_share(total: int, worker: int, workers: int) -> int:
    """Batches worker `worker` yields so that the workers together yield exactly `total`.

    The DataLoader takes batches from its workers in turn (batch i from worker i mod workers), so
    worker w delivers exactly this many of the rank's `total`."""
    return total // workers + (1 if worker < total % workers else 0)


@dataclass(frozen=True)
class Piece:
    """Samples [start, stop) of one shard, in the shard's own order (of its members when the split
    has members: `positions` are then their positions in the tar)."""

    shard: str
    start: int
    stop: int
    listed: int  # the shard's sample count in sizes.json (of its members)
    positions: tuple[int, ...] | None = None


def epoch_order(split: Split, seed: int, epoch: int, lap: int = 0) -> list[int]:
    """The epoch's shard order (indices into split.shards), the same on every rank and worker.

    `lap` > 0 only when a stream asks for more batches than one pass holds (`dftrain bench`)."""
    order = list(range(len(split.shards)))
    base = seed * 1_000_003 + epoch
    random.Random(base if lap == 0 else hash((base, lap)) & 0x7FFFFFFF).shuffle(order)
    return order


def reader_range(
    batches: int, batch_size: int, rank: int, world: int, worker: int, workers: int
) -> tuple[int, int]:
    """(first position, count) of reader (rank, worker) in the epoch's sample sequence.

    Rank r owns positions [r * batches * batch_size, (r + 1) * batches * batch_size); inside it,
    worker w the next worker_share(batches, w, workers) * batch_size, in worker order. Together the
    readers cover [0, world * batches * batch_size) exactly once."""
    if not (0 <= rank < world and 0 <= worker < workers):
        raise ValueError(f"reader {rank}/{worker} outside {world} rank(s) x {workers} worker(s)")
    before = sum(worker_share(batches, w, workers) for w in range(worker))
    first = (rank * batches + before) * batch_size
    return first, worker_share(batches, worker, workers) * batch_size


def pieces(split: Split, seed: int, epoch: int, first: int, count: int) -> list[Piece]:
    """The shard ranges holding positions [first, first + count) of the epoch's sequence."""
    out: list[Piece] = []
    total = split.total
    pos, end = first, first + count
    while pos < end:
        lap, offset = divmod(pos, total)
        at = 0  # start of the current shard within the lap
        for i in epoch_order(split, seed, epoch, lap):
            size = split.sizes[i]
            if offset < at + size and pos < end:
                lo = offset - at
                hi = min(size, lo + (end - pos))
                taken = split.members[i][lo:hi] if split.members is not None else None
                out.append(Piece(split.shards[i], lo, hi, size, taken))
                pos += hi - lo
                offset = at + hi
            at += size
    return out


def read_pieces(plan: list[Piece]) -> Iterator[dict]:
    """Raw samples of each piece in order: samples before `start` (or not among `positions`) are
    skipped over (tar headers only), reading stops at `stop`. A shard holding fewer samples than
    listed is an InputError."""
    for p in plan:
        if p.stop <= p.start:
            continue
        seen = -1
        taken = frozenset(p.positions) if p.positions is not None else None

        def want(_key: str, lo: int = p.start, hi: int = p.stop, taken=taken) -> bool:
            nonlocal seen
            seen += 1
            return seen in taken if taken is not None else lo <= seen < hi

        n = 0
        try:
            with open_regular(p.shard) as f:
                for key, members in iter_samples(f, p.shard, want):
                    yield {"__key__": key, "__url__": p.shard, **members}
                    n += 1
                    if n == p.stop - p.start:
                        break
        except (OSError, ValueError, EOFError, tarfile.TarError) as e:
            why = str(e.args[0] if e.args else e).splitlines()[0]
            raise InputError(f"{p.shard}: unreadable WebDataset shard ({why})") from None
        if n < p.stop - p.start:
            what = (
                f"the {p.listed} sizes.json lists" if p.positions is None
                else f"selection.parquet needs (its sample {p.positions[-1]})"
            )  # fmt: skip
            raise InputError(f"{p.shard}: holds {seen + 1} sample(s), fewer than {what}")


def _stream_seed(seed: int, epoch: int, rank: int, worker: int) -> int:
    return hash((seed, epoch, rank, worker)) & 0x7FFFFFFF


class TrainStream(IterableDataset):
    """One epoch of training batches for one rank (see the module docstring).

    `batches` is the rank's step count (`batches_per_rank`: one pass); more than one pass holds
    wraps into a reshuffled next lap (only `dftrain bench` asks for that)."""

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

    def plan(self, worker: int, workers: int) -> list[Piece]:
        """What reader (self.rank, worker) reads this epoch."""
        first, count = reader_range(
            self.batches, self.batch_size, self.rank, self.world, worker, workers
        )
        return pieces(self.split, self.seed, self.epoch, first, count)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        rng = random.Random(_stream_seed(self.seed, self.epoch, self.rank, wid))
        samples = wds.shuffle(self.shuffle_buffer, self.shuffle_initial, rng=rng)(
            read_pieces(self.plan(wid, nw))
        )
        decoded = map(self.decode, samples)
        yield from wds.batched(self.batch_size, collation_fn=_collate(self.decode), partial=False)(
            decoded
        )


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
        if self.split.members is None:
            samples = read_samples(iter(mine))
        else:  # a subset: each shard's members
            at = {s: i for i, s in enumerate(self.split.shards)}
            samples = read_pieces([Piece(s, 0, self.split.sizes[at[s]], self.split.sizes[at[s]],
                                         self.split.members[at[s]]) for s in mine])  # fmt: skip
        decoded = map(self.decode, samples)
        yield from wds.batched(self.batch_size, collation_fn=_collate(self.decode), partial=True)(
            decoded
        )


def _collate(decode: Callable) -> Callable:
    """The decoder's collate function (one image per sample unless it says otherwise)."""
    return getattr(decode, "collate", collate)


def control_labels(data_dir: str | Path, labels: LabelConfig) -> dict[str, int]:
    """The shuffled-label control's class per video of a balanced directory (train and val), from
    its selection.parquet, stratified by the split and the true class ({} when there is no selection file)."""
    import pyarrow.parquet as pq

    p = Path(data_dir) / "selection.parquet"
    if not p.is_file():
        return {}
    cols = ["video_id", "split", "label", "category", "dataset"]
    counts: dict[str, dict[tuple[str, int], int]] = {}
    for r in pq.read_table(p, columns=cols).to_pylist():
        per = counts.setdefault(str(r["split"]), {})
        k = (str(r["video_id"]), sample_class(r, labels, str(p)))
        per[k] = per.get(k, 0) + 1
    out: dict[str, int] = {}
    for per in counts.values():  # each split on its own: val is balanced as well as train
        out.update(stratified_shuffle([(v, y, n) for (v, y), n in per.items()], len(names(labels))))
    return out


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
    return default_worker_count(processes=world, reserve=1, limit=n_shards // world)


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
