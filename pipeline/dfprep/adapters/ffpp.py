"""FaceForensics++ as published: original_sequences/, manipulated_sequences/, splits/*.json.

The paper's FF++ is the 1,000 YouTube originals and five methods (FS: Deepfakes, FaceSwap,
FaceShifter; RE: Face2Face, NeuralTextures): 6,000 videos, split by the official pair lists into
720 / 140 / 140 originals and 3,600 / 700 / 700 fakes. A full download also holds the
DeepFakeDetection (DFD) part, `original_sequences/actors` and `manipulated_sequences/DeepFakeDetection`:
that is another dataset (`dfd`, `dfprep.adapters.dfd`) and is never read here. Option `methods`
chooses the methods (FSFM's own fine-tuning leaves FaceShifter out); a chosen method that the
download lacks is a warning, and the count check shows the difference.

A fake `AAA_BBB` (target AAA's video with BBB's face or expression) is made from the original
`original_sequences/youtube/<comp>/videos/AAA.mp4` (its `original`), and its mask, where the
download has one, is `manipulated_sequences/<method>/masks/videos/AAA_BBB.mp4` (FF++ ships masks
for every method but FaceShifter, at one quality for all compressions).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from dfprep.adapters.registry import AdapterOptions, VideoRow, note_skipped
from dfprep.adapters.splits import read_options
from dfprep.core.errors import ConfigError, InputError
from dfprep.core.media import scan_files

log = logging.getLogger(__name__)

METHOD_CATEGORY = {
    "Deepfakes": "FS",
    "FaceSwap": "FS",
    "FaceShifter": "FS",
    "Face2Face": "RE",
    "NeuralTextures": "RE",
}
DFD_METHOD = "DeepFakeDetection"  # manipulated_sequences/ folder of the dfd dataset, skipped here
COMPRESSIONS = ("c23", "c40", "raw")
MASKS = "masks/videos"  # <method>/masks/videos/AAA_BBB.mp4: not per compression
OPTIONS = {"compression": "c23", "methods": ",".join(METHOD_CATEGORY)}


def read_pair_splits(root: Path, dataset: str = "ffpp") -> dict[str, str]:
    """Map each video id (NNN) and each pair (AAA_BBB, BBB_AAA) to its split."""
    split_of: dict[str, str] = {}
    for split in ("train", "val", "test"):
        p = root / "splits" / f"{split}.json"
        if not p.is_file():
            raise InputError(f"{dataset}: split file missing: {p}")
        try:
            pairs = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise InputError(f"{p}: not valid JSON (line {e.lineno}: {e.msg})") from None
        for n, pair in enumerate(pairs):
            if not (
                isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)
            ):
                raise InputError(f"{p}: entry {n} is not a pair of ids: {pair!r}")
            a, b = pair
            for key in (a, b, f"{a}_{b}", f"{b}_{a}"):
                prev = split_of.setdefault(key, split)
                if prev != split:
                    raise InputError(f"{p}: {key} is in both {prev} and {split}")
    return split_of


def videos_in(d: Path, root: Path, opts: AdapterOptions, where: str) -> list[Path]:
    """The videos directly in D (the media rule); its other files are named in a warning."""
    scan = scan_files(sorted(p for p in d.iterdir() if not p.is_dir()))
    note_skipped(root, scan.skipped, opts, where)
    return scan.videos


def compression_of(o: dict, dataset: str) -> str:
    if o["compression"] not in COMPRESSIONS:
        raise ConfigError(
            f"{dataset}: option compression must be one of {', '.join(COMPRESSIONS)}, "
            f"got {o['compression']!r}"
        )
    return o["compression"]


def chosen_methods(value: str) -> list[str]:
    methods = [m.strip() for m in value.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHOD_CATEGORY]
    if bad or not methods:
        raise ConfigError(
            f"ffpp: option methods: {bad[0] if bad else '(empty)'!r} is not one of "
            f"{', '.join(METHOD_CATEGORY)} (comma-separated)"
        )
    return methods


def ffpp(root: Path, opts: AdapterOptions) -> list[VideoRow]:
    o = read_options(opts, "ffpp", OPTIONS)
    compression = compression_of(o, "ffpp")
    methods = chosen_methods(o["methods"])
    split_of = read_pair_splits(root)
    rows: list[VideoRow] = []
    orig = root / "original_sequences" / "youtube" / compression / "videos"
    if not orig.is_dir():
        raise InputError(f"ffpp: originals folder missing: {orig}")
    original_of: dict[str, str] = {}  # NNN -> relpath of the original video
    for p in videos_in(orig, root, opts, "ffpp"):
        vid = p.stem
        if vid not in split_of:
            raise InputError(f"ffpp: {p} belongs to no pair in splits/*.json")
        original_of[vid] = p.relative_to(root).as_posix()
        rows.append(VideoRow(original_of[vid], split_of[vid], 0, "real", "real", source_id=vid))
    manip = root / "manipulated_sequences"
    if not manip.is_dir():
        raise InputError(f"ffpp: manipulated_sequences folder missing under {root}")
    for method_dir in sorted(d for d in manip.iterdir() if d.is_dir()):
        method = method_dir.name
        if method == DFD_METHOD:
            log.info(
                "ffpp: %s is not part of FF++ (it is the dfd dataset: dfprep manifest --dataset dfd)",
                method_dir,
            )
            continue
        if method not in METHOD_CATEGORY:
            raise InputError(f"ffpp: unknown manipulation folder {method_dir}")
        if method not in methods:
            log.info("ffpp: %s left out (option methods)", method)
    for method in methods:
        vdir = manip / method / compression / "videos"
        if not vdir.is_dir():
            log.warning(
                "ffpp: %s is missing (%s): its videos are not in the manifest",
                method,
                vdir.relative_to(root),
            )
            continue
        masks = masks_of(root, manip / method / MASKS, opts, "ffpp")
        for p in videos_in(vdir, root, opts, "ffpp"):
            if p.stem not in split_of:
                raise InputError(f"ffpp: {p} is in no split of splits/*.json")
            target = p.stem.split("_")[0]
            rows.append(
                VideoRow(
                    p.relative_to(root).as_posix(),
                    split_of[p.stem],
                    1,
                    method,
                    METHOD_CATEGORY[method],
                    source_id=target,
                    original=original_of.get(target, ""),
                    mask=masks.get(p.stem, ""),
                )
            )
    return rows


def masks_of(root: Path, folder: Path, opts: AdapterOptions, where: str) -> dict[str, str]:
    """Stem -> relpath of the mask videos in `folder` (FF++'s `<method>/masks/videos`; none for
    FaceShifter): a fake's mask has the fake's file name. An absent folder: no masks."""
    if not folder.is_dir():
        return {}
    return {p.stem: p.relative_to(root).as_posix() for p in videos_in(folder, root, opts, where)}
