"""FakeAVCeleb v1.2 as published: meta_data.csv and <type>/<race>/<gender>/<id>/<file>.mp4.

meta_data.csv's header names one column fewer than its rows hold: the column called `path` holds
the file name and the unnamed last one the folder (prefixed `FakeAVCeleb/`). File names repeat
across folders, so rows are keyed on the full relative path. There is no official split: train /
val / test are derived by source identity. RealVideo-FakeAudio is a real video with a cloned voice:
real for this vision-only system. The paper leaves it out of evaluation, and Table 1's 498 real
videos (of 500 RealVideo-RealAudio) say it is out of training too: `fake_audio=exclude` (the
default) drops it everywhere; `exclude-eval` keeps it in train only, `keep` everywhere. A fake's
`original` is the RealVideo-RealAudio video of its identity folder named by the fake's first `_`
token (`id00076/00109_10_id00476_wavtolip.mp4` -> `id00076/00109.mp4`), when exactly one is listed.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from dfprep.adapters.registry import AdapterOptions, VideoRow, check_listed, note_skipped
from dfprep.adapters.splits import SEED, check_fractions, derive_splits, read_options
from dfprep.core.errors import ConfigError, InputError
from dfprep.core.media import scan_files, tree_files

METADATA = "meta_data.csv"
PREFIX = "FakeAVCeleb/"
# type folder -> (visual label, metadata category letter)
TYPES = {
    "RealVideo-RealAudio": (0, "A"),
    "RealVideo-FakeAudio": (0, "B"),
    "FakeVideo-RealAudio": (1, "C"),
    "FakeVideo-FakeAudio": (1, "D"),
}
REAL_METHODS = {"RealVideo-RealAudio": "real", "RealVideo-FakeAudio": "rtvc"}
METHOD_CATEGORY = {
    "faceswap": "FS",
    "fsgan": "FS",
    "wav2lip": "RE",  # lip-sync reenactment
    "faceswap-wav2lip": "FS",  # the face is swapped, then lip-synced: identity changes
    "fsgan-wav2lip": "FS",
}
FAKE_AUDIO = (
    "keep",
    "exclude",
    "exclude-eval",
)  # RealVideo-FakeAudio: keep as real / drop / drop from val+test
OPTIONS = {"val_fraction": 0.15, "test_fraction": 0.15, "seed": SEED, "fake_audio": "exclude"}
REQUIRED = ("source", "method", "category", "type", "path")


def read_metadata(path: Path) -> list[tuple[int, dict[str, str], str]]:
    """(line, row by header name, folder) per data row; checks the one-short header quirk."""
    if not path.is_file():
        raise InputError(f"fakeavceleb: metadata missing: {path}")
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise InputError(f"{path}:1: empty file")
        while header and not header[-1].strip():
            header = header[:-1]  # the trailing comma of the header
        names = [h.strip() for h in header]
        missing = [c for c in REQUIRED if c not in names]
        if missing:
            raise InputError(f"{path}:1: missing column(s) {', '.join(missing)}")
        width = len(names) + 1
        out = []
        for row in reader:
            lineno = reader.line_num
            if not any(v.strip() for v in row):
                continue
            if len(row) != width:
                raise InputError(
                    f"{path}:{lineno}: expected {width} values (the {len(names)} named columns and "
                    f"the unnamed folder column), got {len(row)}"
                )
            out.append(
                (lineno, dict(zip(names, (v.strip() for v in row), strict=False)), row[-1].strip())
            )
    return out


def fakeavceleb(root: Path, opts: AdapterOptions) -> list[VideoRow]:
    o = read_options(opts, "fakeavceleb", OPTIONS)
    if o["fake_audio"] not in FAKE_AUDIO:
        raise ConfigError(
            f"fakeavceleb: option fake_audio must be one of {', '.join(FAKE_AUDIO)}, got {o['fake_audio']!r}"
        )
    fractions = [("val", o["val_fraction"]), ("test", o["test_fraction"])]
    check_fractions(fractions, "fakeavceleb")
    meta = root / METADATA
    videos: dict[
        str, tuple[int, int, str, str, str]
    ] = {}  # rel -> (line, label, method, category, source)
    for lineno, rec, folder in read_metadata(meta):
        where = f"{meta}:{lineno}"
        vtype, method, source, name = rec["type"], rec["method"], rec["source"], rec["path"]
        if vtype not in TYPES:
            raise InputError(
                f"{where}: unknown type {vtype!r} (expected one of {', '.join(TYPES)})"
            )
        label, letter = TYPES[vtype]
        if rec["category"] != letter:
            raise InputError(
                f"{where}: category {rec['category']!r} does not match type {vtype} ({letter})"
            )
        if label == 0:
            if method != REAL_METHODS[vtype]:
                raise InputError(
                    f"{where}: method {method!r} in {vtype} (expected {REAL_METHODS[vtype]!r})"
                )
            method, category = "real", "real"
        else:
            if method not in METHOD_CATEGORY:
                raise InputError(
                    f"{where}: unknown method {method!r} (known: {', '.join(METHOD_CATEGORY)})"
                )
            category = METHOD_CATEGORY[method]
        if not folder.startswith(PREFIX):
            raise InputError(f"{where}: folder {folder!r} does not start with {PREFIX!r}")
        rel_dir = folder[len(PREFIX) :].strip("/")
        if rel_dir.split("/", 1)[0] != vtype:
            raise InputError(f"{where}: folder {folder!r} is not under its type {vtype}")
        if not name or "/" in name or not source:
            raise InputError(f"{where}: needs a file name in `path` and an identity in `source`")
        rel = f"{rel_dir}/{name}"
        rec_value = (lineno, label, method, category, source)
        if rel in videos:
            first = videos[rel]
            if first[1:] != rec_value[1:]:
                raise InputError(f"{where}: {rel} already listed differently on line {first[0]}")
            continue  # the same row twice: one video
        if vtype == "RealVideo-FakeAudio" and o["fake_audio"] == "exclude":
            continue
        if check_listed(root, rel, opts, where):
            videos[rel] = rec_value
    _check_unlisted(root, meta, {*videos, *opts.missing}, o["fake_audio"], opts)
    split_of = derive_splits(Counter(v[4] for v in videos.values()), fractions, o["seed"])
    original_of = originals_of(list(videos))
    rows = []
    for rel, (_, label, method, category, source) in videos.items():
        split = split_of[source]
        if (
            o["fake_audio"] == "exclude-eval"
            and rel.startswith("RealVideo-FakeAudio/")
            and split != "train"
        ):
            continue
        rows.append(
            VideoRow(
                rel,
                split,
                label,
                method,
                category,
                source_id=source,
                split_derived=True,
                original=original_of.get(rel, ""),
            )
        )
    return rows


def originals_of(rels: list[str]) -> dict[str, str]:
    """Fake relpath -> its original: the RealVideo-RealAudio video of the same identity folder
    whose file name is the fake's first `_` token (`.../id00076/00109_10_id00476_wavtolip.mp4` ->
    `RealVideo-RealAudio/<race>/<gender>/id00076/00109.mp4`), when exactly one such video is
    listed; otherwise none."""
    reals: dict[tuple[str, str], list[str]] = {}
    for rel in rels:
        parts = rel.split("/")
        if parts[0] == "RealVideo-RealAudio" and len(parts) >= 3:
            reals.setdefault((parts[-2], Path(parts[-1]).stem), []).append(rel)
    out = {}
    for rel in rels:
        parts = rel.split("/")
        if TYPES.get(parts[0], (0,))[0] != 1 or len(parts) < 3:
            continue
        found = reals.get((parts[-2], Path(parts[-1]).stem.split("_")[0]), [])
        if len(found) == 1:
            out[rel] = found[0]
    return out


def _check_unlisted(
    root: Path, meta: Path, listed: set[str], fake_audio: str, opts: AdapterOptions
) -> None:
    """Every video under a type folder must be in the metadata (else its method would be
    unknown); its other unlisted files are named in a warning."""
    for vtype in TYPES:
        if vtype == "RealVideo-FakeAudio" and fake_audio == "exclude":
            continue
        d = root / vtype
        if not d.is_dir():
            continue
        unlisted = [p for p in tree_files(d) if p.relative_to(root).as_posix() not in listed]
        scan = scan_files(unlisted)
        if scan.videos:
            rel = scan.videos[0].relative_to(root).as_posix()
            raise InputError(f"{meta}: {rel} is on disk but not in the metadata")
        note_skipped(root, scan.skipped, opts, "fakeavceleb")
