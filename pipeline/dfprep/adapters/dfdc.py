"""DFDC (full release) as published: dfdc_train_part_<i>/metadata.json, validation/ and test/.

As in the paper's Table 1 (119,154 / 4,000 / 5,000): every training part -> train; the published
4,000-video validation set (`validation/labels.csv`, `filename,label` with 1 = fake, videos next
to it; option `val_labels`) -> val; the 5,000-video public test set (`test/labels.csv`) -> test.
When the validation set is absent, val is derived from the training parts by original video (a
fake and its original stay together), with a warning, and those rows are `split_derived`
(option `val`: auto | official | derived). The generator of each fake is not published: method
`unknown`, counted as a face swap (FS) as in the paper. A training fake's `original` is its
metadata.json `original` (looked up in its own part first, then in the others); the validation
and test label files do not name originals.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from collections import Counter
from pathlib import Path

from dfprep.adapters.registry import AdapterOptions, VideoRow, check_listed
from dfprep.adapters.splits import SEED, check_fractions, derive_splits, read_options
from dfprep.core.errors import ConfigError, InputError

log = logging.getLogger(__name__)

METHOD, CATEGORY = "unknown", "FS"
VAL_MODES = ("auto", "official", "derived")  # official: the published validation set is required
OPTIONS = {"val": "auto", "val_labels": "validation/labels.csv", "val_fraction": 0.1, "seed": SEED}
TEST_LABELS = "test/labels.csv"
META_LABELS = {"REAL": 0, "FAKE": 1}
CSV_LABELS = {"0": 0, "1": 1}  # labels.csv: 1 = fake
_PART = re.compile(r"^dfdc_train_part_\d+$")
# Where parts are found: ROOT/<part>, ROOT/train/<part> (DeepfakeBench) or a zip's nested folder.
PART_GLOBS = (
    "dfdc_train_part_*/metadata.json",
    "train/dfdc_train_part_*/metadata.json",
    "dfdc_train_part_*/dfdc_train_part_*/metadata.json",
)


def _parts(root: Path) -> list[Path]:
    found = {p for g in PART_GLOBS for p in root.glob(g) if _PART.match(p.parent.name)}
    return sorted(found)


def _read_metadata(meta: Path) -> dict:
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(f"{meta}:{e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(data, dict):
        raise InputError(f"{meta}: expected an object keyed by file name")
    return data


def _train_rows(root: Path, meta: Path, opts: AdapterOptions) -> list[tuple[str, int, str]]:
    """(relpath, label, original stem) for one part; every .mp4 in the part must be listed."""
    part = meta.parent
    data = _read_metadata(meta)
    prefix = part.relative_to(root).as_posix()
    present = set(os.listdir(part))  # one listing instead of a stat per video (120K of them)
    out = []
    for name, rec in data.items():
        where = f"{meta}: {name}"
        if not isinstance(rec, dict):
            raise InputError(f"{where}: expected an object with label/split/original")
        label = META_LABELS.get(rec.get("label"))  # type: ignore[arg-type]
        if label is None:
            raise InputError(f"{where}: unknown label {rec.get('label')!r} (expected REAL or FAKE)")
        if rec.get("split", "train") != "train":
            raise InputError(f"{where}: unexpected split {rec.get('split')!r} in a training part")
        original = rec.get("original")
        if label == 1:
            if not isinstance(original, str) or not original.endswith(".mp4"):
                raise InputError(f"{where}: FAKE without its original video (got {original!r})")
            source = Path(original).stem
        else:
            source = Path(name).stem
        rel = f"{prefix}/{name}"
        if name in present or check_listed(root, rel, opts, where):
            out.append((rel, label, source))
    unlisted = sorted(n for n in present if n.endswith(".mp4") and n not in data)
    if unlisted:
        raise InputError(f"{meta}: {unlisted[0]} is in {part.name} but not in its metadata.json")
    return out


def _labelled_rows(root: Path, labels: Path, split: str, opts: AdapterOptions) -> list[VideoRow]:
    """A `filename,label` list (1 = fake) and the videos next to it: the validation or test set."""
    folder = labels.parent
    prefix = folder.relative_to(root).as_posix()
    present = set(os.listdir(folder))
    rows: list[VideoRow] = []
    seen: dict[str, int] = {}
    with labels.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("filename", "label") if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{labels}:1: missing column(s) {', '.join(missing)}")
        for rec in reader:
            where = f"{labels}:{reader.line_num}"
            name = (rec["filename"] or "").strip()
            if not name:
                raise InputError(f"{where}: empty filename")
            label = CSV_LABELS.get((rec["label"] or "").strip())
            if label is None:
                raise InputError(
                    f"{where}: unknown label {rec['label']!r} (expected 0 real or 1 fake)"
                )
            if name in seen:
                raise InputError(f"{where}: {name} is listed twice (first on line {seen[name]})")
            seen[name] = reader.line_num
            rel = f"{prefix}/{name}"
            if name in present or check_listed(root, rel, opts, where):
                method, category = ("real", "real") if label == 0 else (METHOD, CATEGORY)
                rows.append(
                    VideoRow(rel, split, label, method, category, source_id=Path(name).stem)
                )
    unlisted = sorted(n for n in present if n.endswith(".mp4") and n not in seen)
    if unlisted:
        raise InputError(f"{labels}: {unlisted[0]} is in {folder.name}/ but not in {labels.name}")
    return rows


def dfdc(root: Path, opts: AdapterOptions) -> list[VideoRow]:
    o = read_options(opts, "dfdc", OPTIONS)
    check_fractions([("val", o["val_fraction"])], "dfdc")
    if o["val"] not in VAL_MODES:
        raise ConfigError(
            f"dfdc: option val must be one of {', '.join(VAL_MODES)}, got {o['val']!r}"
        )
    parts = _parts(root)
    test_labels, val_labels = root / TEST_LABELS, root / o["val_labels"]
    if not parts and not test_labels.is_file():
        raise InputError(
            f"dfdc: neither dfdc_train_part_<i>/metadata.json nor {TEST_LABELS} under {root}"
        )
    rows = _labelled_rows(root, test_labels, "test", opts) if test_labels.is_file() else []
    official = o["val"] != "derived" and val_labels.is_file()
    if (
        o["val"] == "auto"
        and not official
        and val_labels.parent.is_dir()
        and any(val_labels.parent.glob("*.mp4"))
    ):
        raise InputError(
            f"dfdc: {val_labels.parent} holds videos but not {val_labels.name}: the validation "
            "set's labels are missing (--option val_labels=FILE, or val=derived to leave it out)"
        )
    if o["val"] == "official" and not official:
        raise InputError(
            f"dfdc: the published validation set's labels are missing: {val_labels} "
            "(or --option val=derived)"
        )
    if official:
        rows += _labelled_rows(root, val_labels, "val", opts)
    elif parts and o["val"] == "auto":
        log.warning(
            "dfdc: no published validation set (%s): val is derived from the training parts "
            "(%g of them, by original video; split_derived)",
            val_labels,
            o["val_fraction"],
        )
    pool: list[tuple[str, int, str]] = []
    for meta in parts:
        pool += _train_rows(root, meta, opts)
    if official:
        split_of = dict.fromkeys((src for _, _, src in pool), "train")
    else:
        split_of = derive_splits(
            Counter(src for _, _, src in pool), [("val", o["val_fraction"])], o["seed"]
        )
    original_of = originals_of(pool)
    train = [
        VideoRow(
            rel,
            split_of[src],
            label,
            *(("real", "real") if label == 0 else (METHOD, CATEGORY)),
            source_id=src,
            split_derived=not official,
            original=original_of.get(rel, ""),
        )
        for rel, label, src in pool
    ]
    return train + rows


def originals_of(pool: list[tuple[str, int, str]]) -> dict[str, str]:
    """Fake relpath -> relpath of its metadata `original`: in the fake's own part if it is there,
    else in another part (the first in path order). Originals the download lacks are counted in
    the log and left unset."""
    reals: dict[str, list[str]] = {}  # original stem -> relpaths of real videos with that name
    for rel, label, src in pool:
        if label == 0:
            reals.setdefault(src, []).append(rel)
    out: dict[str, str] = {}
    elsewhere = absent = 0
    for rel, label, src in pool:
        if label != 1:
            continue
        candidates = sorted(reals.get(src, []))
        part = rel.rsplit("/", 1)[0]
        same = [c for c in candidates if c.rsplit("/", 1)[0] == part]
        if same or candidates:
            out[rel] = (same or candidates)[0]
            elsewhere += not same
        else:
            absent += 1
    if elsewhere:
        log.info("dfdc: %d fake(s) have their original in another training part", elsewhere)
    if absent:
        log.warning(
            "dfdc: %d fake(s) name an original that is not in the download: unpaired", absent
        )
    return out
