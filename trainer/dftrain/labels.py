"""Training classes from a sample's labels, through `dfprep.schema` (class 0 is always real)."""

from __future__ import annotations

import dataclasses
import hashlib

import torch

from dfprep import catalogue
from dfprep.core.errors import InputError
from dfprep.schema import TRAIN_DATASETS, class_index, class_names
from dftrain.config import LabelConfig


def resolve(cfg: LabelConfig) -> LabelConfig:
    """Fix the attribution order once per run: `labels.datasets`, else the catalogue's
    `attribution.datasets` (manifests/catalogue.yaml), else the paper's order when there is no
    catalogue file (an installed package)."""
    if cfg.mode != "dataset" or cfg.datasets:
        return cfg
    order = catalogue.train_datasets() if catalogue.DEFAULT_PATH.is_file() else TRAIN_DATASETS
    return dataclasses.replace(cfg, datasets=tuple(order))


def train_datasets(cfg: LabelConfig) -> tuple[str, ...]:
    """Attribution order of an already resolved config (the paper's order if none is set)."""
    return tuple(cfg.datasets) or TRAIN_DATASETS


def names(cfg: LabelConfig) -> list[str]:
    """Class index -> name; its length is the head size."""
    return class_names(cfg.mode, train_datasets(cfg))


def sample_class(meta: dict, cfg: LabelConfig, where: str = "") -> int:
    """The class of one sample's `.json`; a sample the scheme cannot place is an InputError."""
    try:
        return class_index(meta, cfg.mode, train_datasets(cfg))
    except (KeyError, ValueError, TypeError) as e:
        what = f"missing field {e}" if isinstance(e, KeyError) else str(e)
        raise InputError(f"{where}: {what}") from None


def shuffled_class(video_id: str, classes: int) -> int:
    """The control's label of a video (`labels.shuffle`): uniform over the classes, fixed per video."""
    digest = hashlib.sha256(f"dftrain-shuffle\0{video_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % classes


def stratified_shuffle(videos: list[tuple[str, int, int]], classes: int) -> dict[str, int]:
    """The control's labels of a whole training set: {video_id: class}, from (video_id, true class,
    crops) rows. Within each true class, videos in hash order go to the class with the fewest of
    that true class's crops so far, so every true class is spread evenly over the pseudo-classes
    and the control's labels carry no information about the truth. (A hash per video alone is
    independent of the truth only in expectation: on a few dozen videos it was 66% "fake" among the
    fakes and 40% among the reals, and the control learned that.)"""
    out: dict[str, int] = {}
    by_class: dict[int, dict[str, int]] = {}
    for vid, y, n in videos:
        d = by_class.setdefault(int(y), {})
        d[vid] = d.get(vid, 0) + int(n)
    for y in sorted(by_class):
        load = [0] * classes
        order = sorted(
            by_class[y], key=lambda v: hashlib.sha256(f"dftrain-shuffle\0{v}".encode()).digest()
        )
        for vid in order:
            c = min(range(classes), key=lambda k: (load[k], (k + y) % classes))
            out[vid] = c
            load[c] += by_class[y][vid]
    return out


def triplet_targets(y: torch.Tensor, triplet_labels: str) -> torch.Tensor:
    """Labels the triplet loss groups by: the training classes, or real (0) vs fake (1)."""
    return (y > 0).long() if triplet_labels == "binary" else y


def fake_probability(logits: torch.Tensor) -> torch.Tensor:
    """P(fake) = sum of the fake classes' probabilities = 1 - P(real), for any head size."""
    probs = torch.softmax(logits.float(), dim=-1)
    return probs[:, 1:].sum(dim=-1)
