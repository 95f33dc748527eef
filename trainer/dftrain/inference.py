"""Scoring face crops with a checkpoint: the JPEG bytes extract wrote -> P(fake) per crop.

`dftrain eval` streams them from shards, `dftrain predict` gets them from `process_video`; both go
through `Scorer`, so a crop gets the same score whichever way it arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from dfprep.core.errors import ConfigError, InputError
from dfprep.core.files import open_regular
from dfprep.core.system import default_workers as default_worker_count
from dfprep.shards import decode_jpeg, iter_samples
from dftrain.checkpoint import inference_aug, load_model, resolve
from dftrain.labels import fake_probability
from dftrain.step import autocast
from dftrain.transforms import eval_transform


def pick_device(name: str, key: str = "eval.device") -> torch.device:
    """The device `name` (auto | cpu | cuda | cuda:N) names; `key` is the option it came from."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"{key}: {name!r} asked for, but no CUDA device is available")
    return torch.device(name)


def decode_crop(jpg: bytes, transform: Callable, where: str) -> torch.Tensor:
    return transform(decode_jpeg(jpg, where))


class Scorer:
    """A checkpoint's model and its evaluation preprocessing on one device."""

    def __init__(self, checkpoint: str | Path, device: str = "auto", amp: str = "auto"):
        self.path = resolve(checkpoint)
        self.device = pick_device(device)
        self.amp = amp
        self.model, self.meta = load_model(self.path, self.device)
        self.transform = eval_transform(
            inference_aug(self.meta), int(self.meta["preprocess"]["img_size"])
        )
        self.class_names: list[str] = list(self.meta["labels"]["class_names"])

    @torch.no_grad()
    def score(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(P(fake) per image as float64, softmax over the classes as float32)."""
        with autocast(self.device, self.amp):
            logits = self.model(x.to(self.device, non_blocking=True)).float()
        return (
            fake_probability(logits).cpu().numpy().astype(np.float64),
            torch.softmax(logits, dim=-1).cpu().numpy().astype(np.float32),
        )

    def score_jpegs(
        self, jpegs: list[bytes], batch_size: int, where: str = "crop"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Score JPEG crops in batches (predict's path; eval streams them with `CropStream`)."""
        p_fake = np.zeros(0, np.float64)
        probs = np.zeros((0, len(self.class_names)), np.float32)
        for i in range(0, len(jpegs), batch_size):
            x = torch.stack(
                [
                    decode_crop(j, self.transform, f"{where}: crop {i + k}")
                    for k, j in enumerate(jpegs[i : i + batch_size])
                ]
            )
            p, pr = self.score(x)
            p_fake, probs = np.concatenate([p_fake, p]), np.concatenate([probs, pr])
        return p_fake, probs


class CropStream(IterableDataset):
    """Batches of (keys, images) of the wanted crops of some shards; each worker reads whole shards."""

    def __init__(
        self, jobs: list[tuple[str, frozenset[str]]], transform: Callable, batch_size: int
    ):
        self.jobs, self.transform, self.batch_size = jobs, transform, batch_size

    def __iter__(self) -> Iterator[tuple[list[str], torch.Tensor]]:
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        keys: list[str] = []
        images: list[torch.Tensor] = []
        for path, wanted in self.jobs[wid::nw]:
            try:
                f = open_regular(path)  # a FIFO or a device: refused, never read
            except OSError as e:
                raise InputError(f"{path}: cannot open shard ({e.strerror})") from None
            with f:
                for key, members in iter_samples(f, path, want=wanted.__contains__):
                    if "jpg" not in members:
                        raise InputError(f"{path}: sample {key} has no .jpg member")
                    keys.append(key)
                    images.append(
                        decode_crop(members["jpg"], self.transform, f"{path}: sample {key}")
                    )
                    if len(keys) == self.batch_size:
                        yield keys, torch.stack(images)
                        keys, images = [], []
        if keys:
            yield keys, torch.stack(images)


def default_workers(n_shards: int) -> int:
    """Cores - 1 (one left for the model), at least 1, at most one per shard."""
    return default_worker_count(reserve=1, limit=n_shards)


def score_shards(
    scorer: Scorer,
    jobs: list[tuple[str, frozenset[str]]],
    index: dict[str, int],
    batch_size: int,
    workers: int,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P(fake), class probabilities, found) per row of `index` (crop key -> row) for the wanted
    crops of the shards; `found` is False for a crop that no shard held."""
    n_workers = min(default_workers(len(jobs)) if workers < 0 else workers, len(jobs))
    stream = CropStream(jobs, scorer.transform, batch_size)
    loader = DataLoader(
        stream,
        batch_size=None,
        num_workers=n_workers,
        prefetch_factor=4 if n_workers > 0 else None,
        pin_memory=scorer.device.type == "cuda",
    )
    p_fake = np.full(len(index), np.nan)
    probs = np.zeros((len(index), len(scorer.class_names)), np.float32)
    found = np.zeros(len(index), bool)
    for keys, x in loader:
        rows = [index[k] for k in keys]
        p_fake[rows], probs[rows] = scorer.score(x)
        found[rows] = True
        if on_batch:
            on_batch(len(keys))
    return p_fake, probs, found
