"""SBI's training data from a balance output: its real crops, and a pseudo-fake made from each.

- `real_splits`: train and val cut down to the real crops (crop and video label real) of
  `train.sbi.datasets`, located from `selection.parquet` (no tar is read), as `Split.members`.
- `crop_margin`: the crops' margin, which places a crop's landmarks in it, from what the balance
  output records (`stats.json` extract.crop) and/or `train.sbi.margin`.
- `SBIDecoder`: one real crop -> [(real, 0), (pseudo-fake, 1)], every random draw from
  `sample_rng(seed, epoch, key)`: a sample's pair is the same whichever rank or worker reads it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dfprep.core.errors import ConfigError, InputError
from dfprep.schema import REAL
from dfprep.shards import META, decode_jpeg, parse_sample
from dftrain.data import Split
from dftrain.labels import shuffled_class
from dftrain.sbi.augment import augment_pair
from dftrain.sbi.blend import sample_rng, self_blend
from dftrain.sbi.config import AUTO_MARGIN, SBIConfig
from dftrain.sbi.shape import crop_landmarks, valid_landmarks

__all__ = [
    "VAL_KEY",
    "SBIDecoder",
    "collate_pairs",
    "crop_margin",
    "real_splits",
    "recorded_crops",
    "swapped_crops",
]

SELECTION = "selection.parquet"
VAL_KEY = "val"  # validation's pseudo-fakes are drawn with this in place of the epoch: fixed
_COLUMNS = ["key", "split", "label", "video_label", "dataset", "video_id", "out_shard", "out_pos"]


def _selection(data_dir: Path) -> list[dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = data_dir / SELECTION
    if not p.is_file():
        raise InputError(
            f"{p}: not found; SBI finds the real crops through it (a `dfprep balance` output has one)"
        )
    try:
        names = pq.read_schema(p).names
        missing = [c for c in _COLUMNS if c not in names]
        if missing:
            raise InputError(f"{p}: missing column(s) {', '.join(missing)}")
        return pq.read_table(p, columns=_COLUMNS).to_pylist()
    except (OSError, pa.ArrowException) as e:
        raise InputError(f"{p}: not a readable Parquet file ({e})") from None


def real_splits(
    data_dir: str | Path, splits: dict[str, Split], datasets: tuple[str, ...] = ()
) -> tuple[dict[str, Split], list[dict]]:
    """(splits with only the real crops of real videos of `datasets` (() = all) as members, the
    selection rows taken). The selection must describe the shards exactly (their sizes.json
    counts): a stale selection would pick the wrong samples."""
    root = Path(data_dir)
    rows = _selection(root)
    wanted = set(datasets)
    out, taken = {}, []
    for name, split in splits.items():
        mine = [r for r in rows if r["split"] == name]
        placed: dict[str, list[int]] = {}  # shard -> every position the selection puts in it
        real: dict[str, list[int]] = {}  # shard -> the positions of the usable reals
        for r in mine:
            shard, pos = str(r["out_shard"]), int(r["out_pos"])
            placed.setdefault(shard, []).append(pos)
            if _usable(r, wanted):
                real.setdefault(shard, []).append(pos)
                taken.append(r)
        shards, sizes, members = [], [], []
        for path, size in zip(split.shards, split.sizes, strict=True):
            shard = Path(path).name
            if sorted(placed.get(shard, [])) != list(range(size)):
                raise InputError(
                    f"{root / SELECTION}: does not match {path} ({len(placed.get(shard, []))} rows, "
                    f"sizes.json says {size} samples): is it from another balance run?"
                )
            if real.get(shard):
                shards.append(path)
                sizes.append(len(real[shard]))
                members.append(tuple(sorted(real[shard])))
        if not shards:
            where = f" of {', '.join(datasets)}" if datasets else ""
            have = sorted({str(r["dataset"]) for r in mine if int(r["label"]) == REAL})
            raise InputError(
                f"{root}: no real crop{where} in the {name} split (its reals: {', '.join(have) or 'none'}); "
                "check train.sbi.datasets"
            )
        out[name] = Split(name, tuple(shards), tuple(sizes), tuple(members))
    gone = wanted - {str(r["dataset"]) for r in taken}
    if gone:  # a misspelt name would otherwise train on the others without a word
        raise InputError(
            f"{root}: no real crop of {', '.join(sorted(gone))} in {SELECTION}; "
            "check train.sbi.datasets"
        )
    return out, taken


def _usable(r: dict, datasets: set[str]) -> bool:
    real = int(r["label"]) == REAL and int(r["video_label"]) == REAL
    return real and (not datasets or str(r["dataset"]) in datasets)


def swapped_crops(rows: list[dict]) -> dict[str, int]:
    """The shuffled control of an SBI run (`labels.shuffle`): {crop key: 1 when its pairs' labels
    are swapped (real 1, blend 0)}. In each split the crops, grouped by video in a hashed order, are
    swapped alternately: half of every video's crops and half of the split (to one crop) either way.
    Swapping whole videos (the label control's unit) left the split 134 : 128 on the miniature, and
    a model that learns nothing else learns that residue ("a blend is real") and ranks every test
    fake below the reals; within a video, nothing ties an identity to a rule either."""
    out: dict[str, int] = {}
    for split in sorted({str(r["split"]) for r in rows}):
        mine = [r for r in rows if str(r["split"]) == split]
        mine.sort(key=lambda r: (_digest(str(r["video_id"])), _digest(str(r["key"]))))
        out.update({str(r["key"]): i % 2 for i, r in enumerate(mine)})
    return out


def _digest(text: str) -> bytes:
    return hashlib.sha256(f"dftrain-shuffle\0{text}".encode()).digest()


def recorded_crops(data_dir: str | Path) -> tuple[list, Path]:
    """(the crop geometries DATA records, where): a balance output's stats.json (extract.crop,
    None for shards that record none), else an extract output's shard stats ({} when none)."""
    root = Path(data_dir)
    if not root.is_dir():
        raise InputError(f"{root}: not a directory (a `dfprep balance` or `dfprep extract` output)")
    p = root / "stats.json"
    if p.is_file():
        try:
            return list(json.loads(p.read_text()).get("extract", {}).get("crop", []) or []), p
        except (OSError, ValueError, AttributeError) as e:
            raise InputError(f"{p}: not readable JSON ({e})") from None
    found = []
    stats = sorted(root.glob("*.stats.json")) + sorted((root / META).glob("*.stats.json"))
    for f in stats:
        try:
            found.append(json.loads(f.read_text()).get("crop"))
        except (OSError, ValueError, AttributeError) as e:
            raise InputError(f"{f}: not readable JSON ({e})") from None
    return found, root / META if (root / META).is_dir() else root


def crop_margin(data_dir: str | Path, margin: float | str) -> tuple[float, str]:
    """(the crops' margin, where it came from). The balance output's stats.json (or an extract
    output's shard stats) records the extract's crop geometry; `margin` (train.sbi.margin) is
    `auto` to take it, or a number, which must then agree with the record when there is one."""
    recorded, p = recorded_crops(data_dir)
    margins = sorted(
        {float(c["margin"]) for c in recorded if isinstance(c, dict) and "margin" in c}
    )
    unknown = not recorded or any(not isinstance(c, dict) or "margin" not in c for c in recorded)
    if len(margins) > 1:
        raise InputError(
            f"{p}: the crops were cut with margins {', '.join(f'{m:g}' for m in margins)}; "
            "SBI needs one: balance extracts of a single crop.margin"
        )
    if margin == AUTO_MARGIN:
        if unknown:
            raise ConfigError(
                f"train.sbi.margin: auto, but {p} does not record the crops' margin for all its "
                "shards (extracted before it was recorded?): set train.sbi.margin to the extract's crop.margin"
            )
        return margins[0], f"recorded in {p}"
    if margins and abs(float(margin) - margins[0]) > 1e-9:
        raise ConfigError(
            f"train.sbi.margin: {float(margin):g}, but {p} records crops cut at margin {margins[0]:g}: "
            "use auto or the extract's crop.margin"
        )
    return float(margin), "train.sbi.margin" + (
        f", as {p} records" if margins else ", not recorded in the data"
    )


def collate_pairs(
    pairs: list[list[tuple[torch.Tensor, int]]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of (real, fake) pairs: the reals first, then their fakes in the same order (SBI's)."""
    items = [p[0] for p in pairs] + [p[1] for p in pairs]
    images, labels = zip(*items, strict=True)
    return torch.stack(images), torch.tensor(labels, dtype=torch.long)


class SBIDecoder:
    """A real crop's sample -> [(real, 0), (pseudo-fake, 1)]; picklable for the loader's workers.

    `tail` turns an RGB PIL image into the model's tensor (the eval transform: resize, normalise);
    `augment`: SBI's shared training transforms (`augment_pair`), off for validation; `epoch`: the
    epoch whose draws these are (VAL_KEY for validation: the same pseudo-fakes every epoch);
    `swapped`: the control's crops whose labels are exchanged (`swapped_crops`)."""

    per_sample = 2
    collate = staticmethod(collate_pairs)

    def __init__(
        self,
        cfg: SBIConfig,
        margin: float,
        tail: Callable,
        *,
        seed: int,
        epoch: int | str = 0,
        augment: bool = True,
        swapped: dict[str, int] | None = None,
        shuffle: bool = False,
    ):
        self.cfg, self.margin, self.tail, self.seed = cfg, margin, tail, seed
        self.epoch, self.augment, self.swapped, self.shuffle = (
            epoch,
            augment,
            swapped or {},
            shuffle,
        )

    def for_epoch(self, epoch: int) -> SBIDecoder:
        """This decoder drawing epoch `epoch`'s pseudo-fakes (validation's stay fixed)."""
        if self.epoch == VAL_KEY:
            return self
        return SBIDecoder(self.cfg, self.margin, self.tail, seed=self.seed, epoch=epoch,
                          augment=self.augment, swapped=self.swapped, shuffle=self.shuffle)  # fmt: skip

    def pair(self, sample: dict) -> tuple[np.ndarray, np.ndarray, dict]:
        """(real, fake) RGB uint8 arrays of one sample, before the tail, and its record."""
        where = f"{sample.get('__url__', '?')}: sample {sample.get('__key__', '?')}"
        meta = parse_sample(sample, where).meta or {}
        if int(meta.get("label", -1)) != REAL:
            raise InputError(
                f"{where}: not a real crop (label {meta.get('label')}); SBI blends reals only"
            )
        if not valid_landmarks(meta.get("landmarks")):
            raise InputError(
                f"{where}: no usable landmarks (a shipped face crop?); SBI places its mask by "
                f"them: leave dataset {meta.get('dataset')!r} out of train.sbi.datasets"
            )
        img = np.asarray(decode_jpeg(sample["jpg"], where))
        lms = crop_landmarks(meta["bbox"], meta["landmarks"], self.margin, img.shape[0])
        rng = sample_rng(self.seed, self.epoch, meta["key"])
        try:
            out = self_blend(img, lms, rng, self.cfg)
        except InputError as e:
            raise InputError(f"{where}: {e}") from None
        real, fake = out.real, out.fake
        if self.augment:
            real, fake = augment_pair(real, fake, rng, self.cfg)
        return real, fake, meta

    def __call__(self, sample: dict) -> list[tuple[torch.Tensor, int]]:
        real, fake, meta = self.pair(sample)
        y_real, y_fake = 0, 1
        if self.shuffle:
            swap = self.swapped.get(str(meta["key"]))
            if swap is None:  # a crop the selection does not list (not from real_splits)
                swap = shuffled_class(str(meta["key"]), 2)
            if swap:
                y_real, y_fake = 1, 0
        return [
            (self.tail(Image.fromarray(real)), y_real),
            (self.tail(Image.fromarray(fake)), y_fake),
        ]
