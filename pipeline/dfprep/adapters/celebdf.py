"""Celeb-DF v2 as published: Celeb-real/, YouTube-real/, Celeb-synthesis/, List_of_testing_videos.txt.

Test = the list; train = every other video, as in the paper (6,010 / - / 518: no val). Option
`val_fraction` > 0 derives a val from train by identity (then train and val are `split_derived`).
The label comes
from the folder, and the list's own number (1 = REAL, the opposite of the usual convention) is only
cross-checked against it. A fake `Celeb-synthesis/id<a>_id<b>_<nnnn>.mp4` is paired with its
original `Celeb-real/id<a>_<nnnn>.mp4` when that video is in the manifest (the published naming:
target a's video nnnn with b's face).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from dfprep.adapters.registry import AdapterOptions, VideoRow, check_listed, note_skipped
from dfprep.adapters.splits import SEED, check_fractions, derive_splits, read_options
from dfprep.core.errors import InputError
from dfprep.core.media import scan_files

FOLDERS = {"Celeb-real": 0, "YouTube-real": 0, "Celeb-synthesis": 1}
TEST_LIST = "List_of_testing_videos.txt"
METHOD = "Celeb-synthesis"  # the one (improved DeepFake-style) face swap
CATEGORY = "FS"
OPTIONS = {"val_fraction": 0.0, "seed": SEED}  # 0: no val, as in the paper
LIST_LABELS = {"1": 0, "0": 1}  # the list's 1 means real
_REAL_NAME = re.compile(r"^(id\d+)_\d+$")
_FAKE_NAME = re.compile(r"^(id\d+)_(id\d+)_\d+$")


@dataclass(frozen=True)
class ListedVideo:
    lineno: int
    relpath: str  # <subdir>/<file>.mp4, as written in the list
    label: int  # from the folder (checked against the list's number)


def read_test_list(path: Path) -> list[ListedVideo]:
    """Parse List_of_testing_videos.txt (`<1 real|0 fake> <subdir>/<file>.mp4` per line)."""
    if not path.is_file():
        raise InputError(f"celebdf: test list missing: {path}")
    out: list[ListedVideo] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        where = f"{path}:{lineno}"
        if len(parts) != 2:
            raise InputError(
                f"{where}: expected '<label> <subdir>/<file>.mp4', got {line.strip()!r}"
            )
        number, rel = parts
        if number not in LIST_LABELS:
            raise InputError(
                f"{where}: unknown label {number!r} (the list uses 1 = real, 0 = fake)"
            )
        subdir = rel.split("/", 1)[0]
        if subdir not in FOLDERS or "/" not in rel:
            raise InputError(f"{where}: {rel!r} is not in one of {', '.join(FOLDERS)}")
        if FOLDERS[subdir] != LIST_LABELS[number]:
            raise InputError(
                f"{where}: label {number} (= {'real' if LIST_LABELS[number] == 0 else 'fake'}) "
                f"contradicts the folder {subdir}"
            )
        if rel in seen:
            raise InputError(f"{where}: {rel} is listed twice (first on line {seen[rel]})")
        seen[rel] = lineno
        out.append(ListedVideo(lineno, rel, FOLDERS[subdir]))
    if not out:
        raise InputError(f"{path}: the test list is empty")
    return out


def identity_of(subdir: str, stem: str, where: str) -> str:
    """The person whose real video a file is, or derives from (Celeb-synthesis id<a>_id<b>_n: a)."""
    if subdir == "YouTube-real":
        return f"youtube-{stem}"  # no identity published: each video is its own group
    m = (_REAL_NAME if subdir == "Celeb-real" else _FAKE_NAME).match(stem)
    if not m:
        pattern = "id<k>_<nnnn>" if subdir == "Celeb-real" else "id<a>_id<b>_<nnnn>"
        raise InputError(f"{where}: file name does not follow {subdir}'s {pattern}.mp4 pattern")
    return m.group(1)


def celebdf(root: Path, opts: AdapterOptions) -> list[VideoRow]:
    o = read_options(opts, "celebdf", OPTIONS)
    check_fractions([("val", o["val_fraction"])], "celebdf")
    listed = read_test_list(root / TEST_LIST)
    test = {v.relpath for v in listed}
    rows: list[VideoRow] = []
    for v in listed:
        if check_listed(root, v.relpath, opts, f"{root / TEST_LIST}:{v.lineno}"):
            subdir, name = v.relpath.split("/", 1)
            ident = identity_of(subdir, Path(name).stem, f"{root / TEST_LIST}:{v.lineno}")
            rows.append(_row(v.relpath, "test", v.label, ident, derived=False))
    pool: list[tuple[str, int, str]] = []
    for subdir, label in FOLDERS.items():
        d = root / subdir
        if not d.is_dir():
            raise InputError(f"celebdf: folder missing: {d}")
        scan = scan_files(sorted(p for p in d.iterdir() if not p.is_dir()))
        note_skipped(root, scan.skipped, opts, "celebdf")
        for p in scan.videos:
            rel = f"{subdir}/{p.name}"
            if rel not in test:
                pool.append((rel, label, identity_of(subdir, p.stem, str(p))))
    sizes = Counter(ident for _, _, ident in pool)
    split_of = derive_splits(sizes, [("val", o["val_fraction"])], o["seed"])
    derived = o["val_fraction"] > 0
    rows += [
        _row(rel, split_of[ident], label, ident, derived=derived) for rel, label, ident in pool
    ]
    present = {r.relpath for r in rows if r.label == 0}
    for r in rows:
        if r.label == 1:
            orig = original_of(r.relpath)
            r.original = orig if orig in present else ""
    return rows


def original_of(fake_rel: str) -> str:
    """Celeb-synthesis/id<a>_id<b>_<nnnn>.mp4 is made from Celeb-real/id<a>_<nnnn>.mp4: target a's
    video nnnn with b's face (the published naming; checked on generated data only)."""
    m = _FAKE_NAME.match(Path(fake_rel).stem)
    if not m:
        return ""
    return f"Celeb-real/{m.group(1)}_{Path(fake_rel).stem.rsplit('_', 1)[1]}.mp4"


def _row(rel: str, split: str, label: int, ident: str, derived: bool) -> VideoRow:
    method, category = ("real", "real") if label == 0 else (METHOD, CATEGORY)
    return VideoRow(rel, split, label, method, category, source_id=ident, split_derived=derived)
