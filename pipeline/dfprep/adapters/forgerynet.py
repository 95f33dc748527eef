"""ForgeryNet (video part) as published: Training/ and Validation/ video lists and videos.

List line: `<nseg> <video> [<start frame> <frame count> <fake|real>]*nseg <binary> <triple> <16cls>`.
Training -> train (val derived per video), Validation -> test (the test labels were never released).
Category from the triple label (1 identity-replaced = FS, 2 identity-remained = RE); the method is
the 16-class id, as the id -> name table is not published with the lists. Segments are in frames;
they are converted to seconds with each video's average frame rate (read from the file, or the
`fps` option), so that a partly manipulated video is fake only inside its fake segments.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

from dfprep.adapters.registry import AdapterOptions, VideoRow, check_listed
from dfprep.adapters.splits import SEED, check_fractions, derive_splits, read_options
from dfprep.core.errors import ConfigError, InputError

TRIPLE_CATEGORY = {0: "real", 1: "FS", 2: "RE"}
SEGMENT_FLAGS = {"1": True, "fake": True, "0": False, "real": False}
OPTIONS = {
    "val_fraction": 0.1,
    "seed": SEED,
    "train_list": "Training/video_list.txt",
    "test_list": "Validation/video_list.txt",
    "fps": 0.0,  # > 0: use this frame rate for every video instead of reading it from the file
}


@dataclass(frozen=True)
class ListEntry:
    lineno: int
    name: str
    segments: tuple[tuple[int, int, bool], ...]  # (start frame, frame count, is fake)
    binary: int
    triple: int
    cls16: int


def parse_line(line: str, lineno: int, where: str) -> ListEntry | None:
    """One list line -> entry (None for a blank line). Variable length: parsed by splitting."""
    t = line.split()
    if not t:
        return None
    try:
        nseg = int(t[0])
    except ValueError:
        raise InputError(f"{where}: first field must be the segment count, got {t[0]!r}") from None
    if nseg < 0 or len(t) != 2 + 3 * nseg + 3:
        raise InputError(
            f"{where}: {nseg} segment(s) need {2 + 3 * max(nseg, 0) + 3} fields, got {len(t)}"
        )
    segs = []
    for i in range(nseg):
        start, count, flag = t[2 + 3 * i : 5 + 3 * i]
        if flag.lower() not in SEGMENT_FLAGS:
            raise InputError(f"{where}: segment {i + 1} flag {flag!r} is neither fake/1 nor real/0")
        try:
            s, n = int(start), int(count)
        except ValueError:
            raise InputError(
                f"{where}: segment {i + 1} start/count must be frame numbers"
            ) from None
        if s < 0 or n <= 0:
            raise InputError(f"{where}: segment {i + 1} has start {s} and {n} frames")
        segs.append((s, n, SEGMENT_FLAGS[flag.lower()]))
    try:
        binary, triple, cls16 = (int(x) for x in t[-3:])
    except ValueError:
        raise InputError(
            f"{where}: the last three fields must be integer labels, got {t[-3:]}"
        ) from None
    if binary not in (0, 1) or triple not in TRIPLE_CATEGORY or not 0 <= cls16 <= 15:
        raise InputError(
            f"{where}: labels out of range (binary {binary}, triple {triple}, 16-class {cls16})"
        )
    if (binary == 0) != (triple == 0) or (binary == 0) != (cls16 == 0):
        raise InputError(
            f"{where}: labels disagree (binary {binary}, triple {triple}, 16-class {cls16})"
        )
    if binary == 0 and any(fake for _, _, fake in segs):
        raise InputError(f"{where}: a real video (binary 0) with a fake segment")
    if binary == 1 and segs and not any(fake for _, _, fake in segs):
        raise InputError(f"{where}: a fake video (binary 1) with no fake segment")
    ordered = sorted(segs)
    for (s0, n0, _), (s1, _, _) in pairwise(ordered):
        if s1 < s0 + n0:
            raise InputError(f"{where}: segments overlap at frame {s1}")
    return ListEntry(lineno, t[1], tuple(ordered), binary, triple, cls16)


def read_list(path: Path) -> list[ListEntry]:
    if not path.is_file():
        raise InputError(f"forgerynet: video list missing: {path}")
    out: list[ListEntry] = []
    seen: dict[str, int] = {}
    cls_triple: dict[int, tuple[int, int]] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        where = f"{path}:{lineno}"
        e = parse_line(line, lineno, where)
        if e is None:
            continue
        if e.name in seen:
            raise InputError(f"{where}: {e.name} is listed twice (first on line {seen[e.name]})")
        seen[e.name] = lineno
        prev = cls_triple.setdefault(e.cls16, (e.triple, lineno))
        if prev[0] != e.triple:
            raise InputError(
                f"{where}: 16-class {e.cls16} has triple label {e.triple}, but {prev[0]} on line {prev[1]}"
            )
        out.append(e)
    if not out:
        raise InputError(f"{path}: the video list is empty")
    return out


def whole_video(segments: tuple[tuple[int, int, bool], ...]) -> bool:
    """All fake and contiguous from frame 0: the whole video is manipulated."""
    at = 0
    for start, count, fake in segments:
        if not fake or start != at:
            return False
        at = start + count
    return True


def fake_seconds(
    segments: tuple[tuple[int, int, bool], ...], fps: float
) -> list[tuple[float, float]]:
    """Fake frame ranges -> [start, end) in seconds: frame k is shown at k / fps."""
    return [(s / fps, (s + n) / fps) for s, n, fake in segments if fake]


def probe_fps(path: Path) -> float:
    """Average frame rate from the container header (no decoding)."""
    import av

    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise InputError(f"forgerynet: {path} has no video stream")
            s = c.streams.video[0]
            rate = s.average_rate or s.guessed_rate or s.base_rate
    except av.error.FFmpegError as e:
        raise InputError(f"forgerynet: cannot read {path} for its frame rate ({e})") from None
    if not rate or Fraction(rate) <= 0:
        raise InputError(f"forgerynet: {path} declares no frame rate (pass --option fps=N)")
    return float(rate)


def _base(root: Path, lst: Path, entries: list[ListEntry]) -> Path:
    """The folder the list's names (`train_video_release/...`) are relative to: the first candidate
    holding the first name's top folder. Next to the list first, then the published archives' folders."""
    top = entries[0].name.split("/", 1)[0]
    cands = [
        lst.parent / "video",
        lst.parent,
        root / "Training" / "video",
        root / "Validation" / "video",
        root,
    ]
    tried = list(dict.fromkeys(c.resolve() for c in cands))
    for c in tried:
        if (c / top).is_dir():
            return c
    raise InputError(
        f"{lst}:{entries[0].lineno}: cannot find {top}/ in any of {', '.join(map(str, tried))}"
    )


def _rows(
    root: Path, lst: Path, split: str | None, fps: float, opts: AdapterOptions
) -> list[tuple[VideoRow, str]]:
    entries = read_list(lst)
    base = _base(root, lst, entries)
    out = []
    for e in entries:
        where = f"{lst}:{e.lineno}"
        try:
            rel = (base / e.name).relative_to(root.resolve()).as_posix()
        except ValueError:
            raise InputError(f"{where}: {base / e.name} is not under the root {root}") from None
        if not check_listed(root, rel, opts, where):
            continue
        segments = None
        if e.binary == 1 and not whole_video(e.segments):
            segments = fake_seconds(e.segments, fps or probe_fps(root / rel))
        method = "real" if e.binary == 0 else f"class-{e.cls16:02d}"
        row = VideoRow(
            rel,
            split or "train",
            e.binary,
            method,
            TRIPLE_CATEGORY[e.triple],
            source_id=Path(e.name).with_suffix("").as_posix(),
            split_derived=split is None,
            fake_segments=segments,
        )
        out.append((row, row.source_id))
    return out


def forgerynet(root: Path, opts: AdapterOptions) -> list[VideoRow]:
    o = read_options(opts, "forgerynet", OPTIONS)
    check_fractions([("val", o["val_fraction"])], "forgerynet")
    if o["fps"] < 0:
        raise ConfigError(
            f"forgerynet: option fps must be > 0 (or 0 to read it per video), got {o['fps']}"
        )
    train_list, test_list = root / o["train_list"], root / o["test_list"]
    if not train_list.is_file() and not test_list.is_file():
        raise InputError(f"forgerynet: neither {train_list} nor {test_list} exists")
    rows: list[VideoRow] = []
    if train_list.is_file():
        pool = _rows(root, train_list, None, o["fps"], opts)
        split_of = derive_splits(
            Counter(g for _, g in pool), [("val", o["val_fraction"])], o["seed"]
        )
        for row, g in pool:
            row.split = split_of[g]
            rows.append(row)
    if test_list.is_file():
        rows += [row for row, _ in _rows(root, test_list, "test", o["fps"], opts)]
    return rows
