"""FaceForensics++ as published: original_sequences/, manipulated_sequences/, splits/*.json."""

from __future__ import annotations

import json
from pathlib import Path

from dfprep.adapters import AdapterOptions, VideoRow, register
from dfprep.errors import InputError

METHOD_CATEGORY = {
    "Deepfakes": "FS",
    "FaceSwap": "FS",
    "FaceShifter": "FS",
    "DeepFakeDetection": "FS",
    "Face2Face": "RE",
    "NeuralTextures": "RE",
}
COMPRESSIONS = ("c23", "c40", "raw")
VIDEO_EXTS = (".mp4", ".avi")


def _read_splits(root: Path) -> dict[str, str]:
    """Map each video id (NNN) and each pair (AAA_BBB, BBB_AAA) to its split."""
    split_of: dict[str, str] = {}
    for split in ("train", "val", "test"):
        p = root / "splits" / f"{split}.json"
        if not p.is_file():
            raise InputError(f"ffpp: split file missing: {p}")
        try:
            pairs = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise InputError(f"{p}: not valid JSON (line {e.lineno}: {e.msg})") from None
        for n, pair in enumerate(pairs):
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
                raise InputError(f"{p}: entry {n} is not a pair of ids: {pair!r}")
            a, b = pair
            for key in (a, b, f"{a}_{b}", f"{b}_{a}"):
                prev = split_of.setdefault(key, split)
                if prev != split:
                    raise InputError(f"{p}: {key} is in both {prev} and {split}")
    return split_of


def _videos(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if p.suffix.lower() in VIDEO_EXTS and p.is_file())


@register("ffpp")
def ffpp(root: Path, opts: AdapterOptions) -> list[VideoRow]:
    compression = opts.options.get("compression", "c23")
    if compression not in COMPRESSIONS:
        raise InputError(f"ffpp: compression must be one of {COMPRESSIONS}, got {compression!r}")
    split_of = _read_splits(root)
    rows: list[VideoRow] = []
    orig = root / "original_sequences" / "youtube" / compression / "videos"
    if not orig.is_dir():
        raise InputError(f"ffpp: originals folder missing: {orig}")
    for p in _videos(orig):
        vid = p.stem
        if vid not in split_of:
            raise InputError(f"ffpp: {p} belongs to no pair in splits/*.json")
        rows.append(
            VideoRow(p.relative_to(root).as_posix(), split_of[vid], 0, "real", "real", source_id=vid)
        )
    manip = root / "manipulated_sequences"
    if not manip.is_dir():
        raise InputError(f"ffpp: manipulated_sequences folder missing under {root}")
    for method_dir in sorted(d for d in manip.iterdir() if d.is_dir()):
        method = method_dir.name
        if method not in METHOD_CATEGORY:
            raise InputError(f"ffpp: unknown manipulation folder {method_dir}")
        vdir = method_dir / compression / "videos"
        if not vdir.is_dir():
            continue  # a download may hold only some compressions of some methods
        for p in _videos(vdir):
            if method == "DeepFakeDetection":
                # DFD (actor videos, e.g. 01_02__exit_phone_room__YVGY8LOK) has no FF++ split.
                split, derived, source = "test", True, p.stem.split("__")[0]
            else:
                if p.stem not in split_of:
                    raise InputError(f"ffpp: {p} is in no split of splits/*.json")
                split, derived, source = split_of[p.stem], False, p.stem.split("_")[0]
            rows.append(
                VideoRow(
                    p.relative_to(root).as_posix(),
                    split,
                    1,
                    method,
                    METHOD_CATEGORY[method],
                    source_id=source,
                    split_derived=derived,
                )
            )
    return rows
