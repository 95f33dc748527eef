"""Generic layouts for in-house collections: ROOT/real/**, ROOT/fake/**, or a CSV.

The CSV has `path,label` and optionally `split`, `method`, `category` and `original` (a fake's:
the path of the real video it was made from, written like `path`; paired when that video is a
row of the same CSV).
"""

from __future__ import annotations

import csv
import logging
import os
import posixpath
from pathlib import Path

from dfprep.adapters.registry import AdapterOptions, VideoRow, check_listed, note_skipped
from dfprep.core.errors import InputError
from dfprep.core.media import scan_tree, tree_files
from dfprep.schema import CATEGORIES, SPLITS

LABELS = {"0": 0, "1": 1, "real": 0, "fake": 1}
TRUE = {"1", "true", "yes", "on"}
log = logging.getLogger(__name__)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def csv_relpath(root: Path, listed: str, allow_outside: bool, where: str) -> tuple[str, str]:
    """A CSV path -> (its path relative to the root, normalised; the real file it names).

    Relative paths are taken from the root. `real/a.mp4`, `./real/a.mp4` and `real//a.mp4` give
    the same relative path; an absolute path is accepted when it lies under the root as given or
    under the root with its symlinks resolved. Anything outside the root (`../x`, `/etc/passwd`)
    is refused unless `allow_outside` (then it keeps a `../` path relative to the root).
    """
    raw = listed.replace("\\", "/")
    root_abs, root_real = os.path.abspath(root), os.path.realpath(root)
    target = raw if os.path.isabs(raw) else os.path.join(root_abs, raw)
    lexical, real = os.path.normpath(os.path.abspath(target)), os.path.realpath(target)
    for base, path in ((root_abs, lexical), (root_real, lexical), (root_real, real)):
        if _inside(path, base):
            return posixpath.normpath(Path(os.path.relpath(path, base)).as_posix()), real
    if not allow_outside:
        raise InputError(
            f"{where}: {listed} is outside the root {root} "
            "(pass --option allow_outside=1 to accept it)"
        )
    return Path(os.path.relpath(real, root_real)).as_posix(), real


def _parse_label(value: str, where: str) -> int:
    v = value.strip().lower()
    if v not in LABELS:
        raise InputError(f"{where}: unknown label {value!r} (use 0/1 or real/fake)")
    return LABELS[v]


def _from_csv(root: Path, csv_path: Path, opts: AdapterOptions) -> list[VideoRow]:
    if not csv_path.is_file():
        raise InputError(f"folder: CSV not found: {csv_path}")
    rows: list[VideoRow] = []
    allow_outside = str(opts.options.get("allow_outside", "")).strip().lower() in TRUE
    seen: dict[str, tuple[str, VideoRow]] = {}  # real file -> (where, row): aliases of one file
    with csv_path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        cols = set(reader.fieldnames or [])
        for need in ("path", "label"):
            if need not in cols:
                raise InputError(
                    f"{csv_path}: missing column {need!r} (have: {', '.join(sorted(cols))})"
                )
        for lineno, rec in enumerate(reader, start=2):
            where = f"{csv_path}:{lineno}"
            rel = (rec.get("path") or "").strip()
            if not rel:
                raise InputError(f"{where}: empty path")
            label = _parse_label(rec.get("label") or "", where)
            split = (rec.get("split") or "test").strip() or "test"
            if split not in SPLITS:
                raise InputError(f"{where}: unknown split {split!r} (use {', '.join(SPLITS)})")
            method = (rec.get("method") or "").strip() or ("real" if label == 0 else "unknown")
            category = (rec.get("category") or "").strip() or ("real" if label == 0 else "unknown")
            if category not in CATEGORIES:
                raise InputError(
                    f"{where}: unknown category {category!r} (use {', '.join(CATEGORIES)})"
                )
            if label == 0 and category != "real":
                raise InputError(f"{where}: a real video cannot have category {category!r}")
            rel, real = csv_relpath(root, rel, allow_outside, where)
            if not check_listed(root, rel, opts, where):
                continue
            kind = "frames" if (root / rel).is_dir() else "video"
            original = (rec.get("original") or "").strip()
            if original and label == 0:
                raise InputError(f"{where}: a real video cannot have an original ({original})")
            if original:
                original = csv_relpath(root, original, allow_outside, where)[0]
            row = VideoRow(rel, split, label, method, category, kind=kind, original=original)
            if real in seen:
                first, other = seen[real]
                if (other.label, other.split, other.method, other.category) != (
                    label,
                    split,
                    method,
                    category,
                ):
                    raise InputError(
                        f"{where}: {rec['path'].strip()} is the same file as {other.relpath} "
                        f"({first}) with other labels"
                    )
                log.warning(
                    "%s: %s is the same file as %s (%s): listed once",
                    where,
                    rec["path"].strip(),
                    other.relpath,
                    first,
                )
                continue
            seen[real] = (where, row)
            rows.append(row)
    return rows


def folder(root: Path, opts: AdapterOptions) -> list[VideoRow]:
    """Labels from ROOT/real and ROOT/fake (split `test` unless a CSV says otherwise). Every
    other file under ROOT (not a video by the media rule, or outside real/ and fake/) is named
    in a warning and in `opts.skipped`."""
    if opts.csv is not None:
        return _from_csv(root, Path(opts.csv), opts)
    split = opts.options.get("split", "test")
    rows: list[VideoRow] = []
    skipped: list[tuple[Path, str]] = []
    found = []
    for name, label in (("real", 0), ("fake", 1)):
        d = root / name
        if not d.is_dir():
            continue
        found.append(name)
        scan = scan_tree(d)
        skipped += scan.skipped
        method = category = "real" if label == 0 else "unknown"
        rows += [
            VideoRow(p.relative_to(root).as_posix(), split, label, method, category)
            for p in scan.videos
        ]
    if not found:
        raise InputError(f"folder: {root} has neither real/ nor fake/ (or pass --csv FILE)")
    skipped += [(p, "outside real/ and fake/") for p in tree_files(root, prune=found)]
    note_skipped(root, sorted(skipped), opts, "folder")
    return rows
