"""DeepFakeDetection (DFD, Google/Jigsaw) as published inside the FaceForensics++ download.

Reals: `original_sequences/actors/<comp>/videos/<actor>__<scene>.mp4` (363 videos of 28 paid
actors); fakes: `manipulated_sequences/DeepFakeDetection/<comp>/videos/<target>_<source>__<scene>__<id>.mp4`
(3,068 face swaps), each made from its target actor's `<target>__<scene>.mp4` (its `original`),
with a mask video of the same name under `manipulated_sequences/DeepFakeDetection/masks/videos/`
where the download has it. Not one of the paper's datasets and never part of `ffpp`. No split is
published: everything is `test` by default (an extra evaluation set); `split=derived` cuts
train / val / test by actor instead (a fake goes with its target actor, whose footage it is).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from dfprep.adapters.ffpp import MASKS, compression_of, masks_of, videos_in
from dfprep.adapters.registry import AdapterOptions, VideoRow
from dfprep.adapters.splits import SEED, check_fractions, derive_splits, read_options
from dfprep.core.errors import ConfigError, InputError

REAL_DIR = "original_sequences/actors"
FAKE_DIR = "manipulated_sequences/DeepFakeDetection"
METHOD, CATEGORY = "DeepFakeDetection", "FS"
SPLIT_MODES = ("test", "derived")
OPTIONS = {
    "compression": "c23",
    "split": "test",
    "val_fraction": 0.15,
    "test_fraction": 0.15,
    "seed": SEED,
}
_REAL = re.compile(r"^(\d+)__[^_].*$")
_FAKE = re.compile(r"^(\d+)_(\d+)__.+__[A-Za-z0-9]+$")
_FAKE_PARTS = re.compile(r"^(\d+)_\d+__(.+)__[A-Za-z0-9]+$")  # target, scene


def actor_of(stem: str, fake: bool, where: Path) -> str:
    m = (_FAKE if fake else _REAL).match(stem)
    if not m:
        pattern = "<target>_<source>__<scene>__<id>" if fake else "<actor>__<scene>"
        raise InputError(f"dfd: {where} does not follow DFD's {pattern}.mp4 naming")
    return m.group(1)


def dfd(root: Path, opts: AdapterOptions) -> list[VideoRow]:
    o = read_options(opts, "dfd", OPTIONS)
    compression = compression_of(o, "dfd")
    if o["split"] not in SPLIT_MODES:
        raise ConfigError(
            f"dfd: option split must be one of {', '.join(SPLIT_MODES)}, got {o['split']!r}"
        )
    fractions = [("val", o["val_fraction"]), ("test", o["test_fraction"])]
    check_fractions(fractions, "dfd")
    found: list[tuple[str, int, str]] = []  # (relpath, label, actor)
    for sub, label in ((REAL_DIR, 0), (FAKE_DIR, 1)):
        d = root / sub / compression / "videos"
        if not d.is_dir():
            raise InputError(f"dfd: folder missing: {d}")
        found += [
            (p.relative_to(root).as_posix(), label, actor_of(p.stem, bool(label), p))
            for p in videos_in(d, root, opts, "dfd")
        ]
    reals = {Path(rel).stem: rel for rel, label, _ in found if label == 0}
    masks = masks_of(root, root / FAKE_DIR / MASKS, opts, "dfd")
    derived = o["split"] == "derived"
    split_of = (
        derive_splits(Counter(a for _, _, a in found), fractions, o["seed"]) if derived else {}
    )
    return [
        VideoRow(
            rel,
            split_of.get(actor, "test"),
            label,
            *(("real", "real") if label == 0 else (METHOD, CATEGORY)),
            source_id=actor,
            split_derived=derived,
            original=reals.get(original_stem(Path(rel).stem), "") if label else "",
            mask=masks.get(Path(rel).stem, "") if label else "",
        )
        for rel, label, actor in found
    ]


def original_stem(fake_stem: str) -> str:
    """`<target>_<source>__<scene>__<id>` is made from the target actor's `<target>__<scene>`."""
    m = _FAKE_PARTS.match(fake_stem)
    return f"{m.group(1)}__{m.group(2)}" if m else ""
