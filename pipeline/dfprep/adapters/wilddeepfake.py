"""WildDeepfake as published: face sequences, not videos.

`{real,fake}_{train,test}/<N>.tar.gz`, extracted in place to `<N>/<real|fake>/<seq>/<frame>.png`.
One sequence (a folder of face images) is one "video"; the label comes from the top folder. The
paper evaluates WildDeepfake whole (Table 2: 7,314 sequences, 3,805 real and 3,509 fake, as test
data in the wild), so every sequence is `test` by default; `split=official` keeps the published
`*_train` / `*_test` folders as train and test. The paper keeps every 10th face (`frame_stride`).
Archives are not read directly: an archive without its extracted folder is an error that says how
to extract it.
"""

from __future__ import annotations

import os
from pathlib import Path

from dfprep.adapters.registry import AdapterOptions, VideoRow
from dfprep.adapters.splits import read_options
from dfprep.core.errors import ConfigError, InputError
from dfprep.core.media import ARCHIVE_EXTS, IMAGE_EXTS

TOPS = {
    "real_train": (0, "train"),
    "real_test": (0, "test"),
    "fake_train": (1, "train"),
    "fake_test": (1, "test"),
}
SPLIT_MODES = ("test", "official")  # all test (Table 2) | the published train/test folders
OPTIONS = {"frame_stride": 10, "split": "test"}
LABEL_DIRS = {"real": 0, "fake": 1}


def _archive_stem(p: Path) -> str | None:
    for ext in ARCHIVE_EXTS:
        if p.name.endswith(ext) and p.is_file():
            return p.name[: -len(ext)]
    return None


def _sequences(src: Path, label: int) -> list[Path]:
    """Folders under one extracted archive that directly hold face images."""
    out = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        if any(os.path.splitext(f)[1].lower() in IMAGE_EXTS for f in filenames):
            d = Path(dirpath)
            for part in d.relative_to(src).parts:
                if part in LABEL_DIRS and LABEL_DIRS[part] != label:
                    raise InputError(
                        f"wilddeepfake: {d} is a {part} sequence inside {src.parent.name}/"
                    )
            out.append(d)
    return sorted(out)


def wilddeepfake(root: Path, opts: AdapterOptions) -> list[VideoRow]:
    o = read_options(opts, "wilddeepfake", OPTIONS)
    if o["frame_stride"] < 1:
        raise ConfigError(
            f"wilddeepfake: option frame_stride must be >= 1, got {o['frame_stride']}"
        )
    if o["split"] not in SPLIT_MODES:
        raise ConfigError(
            f"wilddeepfake: option split must be one of {', '.join(SPLIT_MODES)}, got {o['split']!r}"
        )
    present = [t for t in TOPS if (root / t).is_dir()]
    if not present:
        raise InputError(f"wilddeepfake: none of {', '.join(TOPS)} under {root}")
    rows: list[VideoRow] = []
    for top in present:
        label, official = TOPS[top]
        split = official if o["split"] == "official" else "test"
        d = root / top
        entries = sorted(d.iterdir())
        dirs = {p.name: p for p in entries if p.is_dir()}
        for p in entries:
            stem = _archive_stem(p)
            if stem is not None and stem not in dirs:
                rel = f"{top}/{stem}"
                if not opts.skip_missing:
                    raise InputError(
                        f"wilddeepfake: {p} is not extracted; extract every archive in place first "
                        f'(cd {d} && for f in *.tar.gz; do tar -xzf "$f"; done), giving {rel}/'
                    )
                opts.missing.append(rel)
        for name, src in sorted(dirs.items()):
            seqs = _sequences(src, label)
            if not seqs:
                raise InputError(f"wilddeepfake: {src} holds no face images")
            for s in seqs:
                method, category = ("real", "real") if label == 0 else ("unknown", "unknown")
                rows.append(
                    VideoRow(
                        s.relative_to(root).as_posix(),
                        split,
                        label,
                        method,
                        category,
                        source_id=name,
                        kind="frames",
                        frame_stride=o["frame_stride"],
                    )
                )
    return rows
