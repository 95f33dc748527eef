"""Dataset root -> video manifest (Parquet, one row per video, `schema.MANIFEST_SCHEMA`)."""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dfprep.adapters import AdapterOptions, VideoRow, get_adapter
from dfprep.core.atomic import writing, writing_to
from dfprep.core.errors import InputError, first_line
from dfprep.core.files import open_regular
from dfprep.core.outputs import output_file
from dfprep.schema import CATEGORIES, FACES, INPUT_KINDS, MANIFEST_SCHEMA, SPLITS, make_video_id

log = logging.getLogger(__name__)


def rows_to_table(
    dataset: str, root: Path, rows: list[VideoRow], faces: str = "detect"
) -> pa.Table:
    """Validate adapter rows and turn them into a manifest table sorted by video_id.

    `faces` is the dataset's mode (the catalogue's `faces`): `shipped` applies to image folders
    only, whose images are then the publisher's face crops; videos are always detected."""
    if faces not in FACES:
        raise InputError(f"{dataset}: faces must be one of {', '.join(FACES)}, got {faces!r}")
    root = root.resolve()
    base = str(root).rstrip(
        "/"
    )  # string joins: a pathlib join per video costs seconds on DFDC's 128K
    records = []
    for r in rows:
        where = f"{dataset}: {r.relpath}"
        if r.label not in (0, 1):
            raise InputError(f"{where}: label must be 0 or 1, got {r.label!r}")
        if r.split not in SPLITS:
            raise InputError(f"{where}: unknown split {r.split!r}")
        if r.category not in CATEGORIES:
            raise InputError(f"{where}: unknown category {r.category!r}")
        if (r.label == 0) != (r.category == "real"):
            raise InputError(
                f"{where}: label {r.label} does not agree with category {r.category!r}"
            )
        if r.kind not in INPUT_KINDS:
            raise InputError(f"{where}: unknown input kind {r.kind!r}")
        segs = None
        if r.fake_segments is not None:
            segs = [{"start": float(a), "end": float(b)} for a, b in r.fake_segments]
        records.append(
            {
                "video_id": make_video_id(dataset, r.relpath),
                "path": f"{base}/{r.relpath}",
                "dataset": dataset,
                "split": r.split,
                "split_derived": bool(r.split_derived),
                "label": int(r.label),
                "method": r.method,
                "category": r.category,
                "source_id": r.source_id,
                "kind": r.kind,
                "frame_stride": int(r.frame_stride),
                "fake_segments": segs,
                "faces": faces if r.kind == "frames" else "detect",
                "original_id": make_video_id(dataset, r.original) if r.original else "",
                "mask_path": f"{base}/{r.mask}" if r.mask else "",
            }
        )
    dup = [vid for vid, n in Counter(rec["video_id"] for rec in records).items() if n > 1]
    if dup:
        paths = [rec["path"] for rec in records if rec["video_id"] == dup[0]]
        raise InputError(f"{dataset}: duplicate video id {dup[0]!r} for {' and '.join(paths[:2])}")
    records.sort(key=lambda rec: rec["video_id"])
    unpair_absent(records, dataset)
    check_rows(records, dataset)
    check_originals(records, dataset)
    warn_split_pairs(records, dataset)
    return pa.Table.from_pylist(records, schema=MANIFEST_SCHEMA)


_ID_CHARS = re.compile(r"[A-Za-z0-9_-]+")
_STRINGS = ("path", "dataset", "method", "source_id")
_OPTIONAL = ("source_id", "original_id", "mask_path")  # strings that may be empty


def _row_problem(r: dict) -> tuple[str, str] | None:
    """(column, what is wrong) for the first bad value of one manifest row, or None."""
    vid = r.get("video_id")
    if not isinstance(vid, str) or not _ID_CHARS.fullmatch(vid):
        return "video_id", f"must be a non-empty string of A-Z a-z 0-9 _ - only, got {vid!r}"
    for col in (*_STRINGS, "original_id", "mask_path"):
        if not isinstance(r.get(col), str) or (col not in _OPTIONAL and not r[col]):
            return (
                col,
                f"must be a {'' if col in _OPTIONAL else 'non-empty '}string, got {r.get(col)!r}",
            )
    label = r.get("label")
    if isinstance(label, bool) or not isinstance(label, (int, float)) or label not in (0, 1):
        return "label", f"must be 0 (real) or 1 (fake), got {label!r}"
    for col, allowed in (
        ("split", SPLITS),
        ("category", CATEGORIES),
        ("kind", INPUT_KINDS),
        ("faces", FACES),
    ):
        if r.get(col) not in allowed:
            return col, f"must be one of {', '.join(allowed)}, got {r.get(col)!r}"
    orig = r["original_id"]
    if orig and (not _ID_CHARS.fullmatch(orig) or orig == vid):
        return "original_id", f"must be '' or another video's id (A-Z a-z 0-9 _ -), got {orig!r}"
    if (orig or r["mask_path"]) and int(label) != 1:
        col = "original_id" if orig else "mask_path"
        return (
            col,
            f"is set on a real video (label {int(label)}): only a fake has an original or a mask",
        )
    if (int(label) == 0) != (r["category"] == "real"):
        return (
            "category",
            f"{r['category']!r} does not agree with label {int(label)} (category real iff label 0)",
        )
    if not isinstance(r.get("split_derived"), bool):
        return "split_derived", f"must be true or false, got {r.get('split_derived')!r}"
    stride = r.get("frame_stride")
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        return "frame_stride", f"must be an integer >= 1, got {stride!r}"
    segs = r.get("fake_segments")
    if segs is not None:
        if not isinstance(segs, list):
            return "fake_segments", f"must be a list of {{start, end}} or null, got {segs!r}"
        for s in segs:
            a, b = (s.get("start"), s.get("end")) if isinstance(s, dict) else (None, None)
            ok = all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for v in (a, b)
            )
            if not ok or a < 0 or a > b:
                return "fake_segments", f"segment {s!r} needs finite 0 <= start <= end (seconds)"
    return None


def check_rows(rows: list[dict], where: str) -> None:
    """Every row against the manifest schema, once: one line naming the row and the column."""
    for i, r in enumerate(rows):
        bad = _row_problem(r)
        if bad:
            col, what = bad
            vid = r.get("video_id")
            name = f" (video_id {vid!r})" if isinstance(vid, str) and vid else ""
            raise InputError(f"{where}: row {i}{name}: column {col}: {what}")


def unpair_absent(records: list[dict], dataset: str) -> int:
    """In place: a fake whose original is not a row of this manifest (missing from the download,
    or left out by an option) gets original_id "" (so extract never looks for a video it was not
    given). Returns how many, and says so in the log."""
    ids = {rec["video_id"] for rec in records}
    n = 0
    for rec in records:
        if rec["original_id"] and rec["original_id"] not in ids:
            rec["original_id"] = ""
            n += 1
    if n:
        log.warning(
            "%s: %d fake(s) were made from an original that is not in the manifest: unpaired",
            dataset,
            n,
        )
    return n


def check_originals(rows: list[dict], where: str) -> None:
    """A fake's original, when it is in the same manifest, is a real video (an original that is
    not in the manifest is allowed: extract then falls back to the unpaired rule and says so)."""
    label = {r["video_id"]: int(r["label"]) for r in rows}
    for i, r in enumerate(rows):
        orig = r["original_id"]
        if orig and label.get(orig, 0) != 0:
            raise InputError(
                f"{where}: row {i} (video_id {r['video_id']!r}): column original_id: "
                f"{orig!r} is a fake video, not an original"
            )


def warn_split_pairs(rows: list[dict], dataset: str) -> int:
    """Fakes whose original is in another split: still paired (extract reads the original's frames
    only to choose the fake's manipulated faces; nothing of the original is written into the
    fake's split), but said, since it usually means one identity is in two splits. Returns how many."""
    split = {r["video_id"]: r["split"] for r in rows}
    odd = [
        r
        for r in rows
        if r["original_id"] and split.get(r["original_id"], r["split"]) != r["split"]
    ]
    if odd:
        r = odd[0]
        log.warning(
            "%s: %d fake(s) have their original in another split, e.g. %s (%s) from %s (%s): "
            "paired as usual, but the identity is in both splits",
            dataset, len(odd), r["video_id"], r["split"], r["original_id"], split[r["original_id"]],
        )  # fmt: skip
    return len(odd)


def build_manifest(
    dataset: str,
    root: str | Path,
    adapter: str | None = None,
    opts: AdapterOptions | None = None,
    faces: str = "detect",
) -> pa.Table:
    root = Path(root)
    if faces not in FACES:
        raise InputError(f"{dataset}: faces must be one of {', '.join(FACES)}, got {faces!r}")
    if not root.is_dir():
        raise InputError(f"dataset root not found: {root}")
    opts = opts or AdapterOptions()
    rows = list(get_adapter(adapter or dataset)(root, opts))
    if not rows:
        raise InputError(f"{dataset}: no videos found under {root}")
    return rows_to_table(dataset, root, rows, faces)


def write_manifest(table: pa.Table, out: str | Path) -> Path:
    out = output_file(out, "--out")
    with writing(out), writing_to(out) as tmp:
        pq.write_table(table, tmp)
    return out


def read_manifest(path: str | Path) -> pa.Table:
    """Read and check a manifest written by `write_manifest` (or by hand, with the same columns)."""
    path = Path(path)
    try:
        with open_regular(path, "manifest:") as f:
            table = pq.read_table(f)
    except FileNotFoundError:
        raise InputError(f"manifest not found: {path}") from None
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(f"{path}: not a Parquet manifest ({first_line(e)})") from None
    if table.num_rows == 0:
        raise InputError(f"{path}: the manifest is empty (no videos)")
    missing = [n for n in MANIFEST_SCHEMA.names if n not in table.column_names]
    required = {"video_id", "path", "dataset", "split", "label", "method", "category"}
    if required & set(missing):
        raise InputError(f"{path}: missing column(s) {', '.join(sorted(required & set(missing)))}")
    for name in missing:  # optional columns get their defaults
        default = {
            "split_derived": False,
            "source_id": "",
            "kind": "video",
            "frame_stride": 1,
            "faces": "detect",
            "original_id": "",
            "mask_path": "",
        }.get(name)
        field = MANIFEST_SCHEMA.field(name)
        table = table.append_column(field, pa.array([default] * table.num_rows, type=field.type))
    table = table.select(MANIFEST_SCHEMA.names)
    rows = table.to_pylist()
    check_rows(rows, str(path))  # before the cast: 1.5 or a null is named, not cast
    check_originals(rows, str(path))
    try:
        table = table.cast(MANIFEST_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise InputError(
            f"{path}: columns do not fit the manifest schema ({first_line(e)})"
        ) from None
    ids = table.column("video_id").to_pylist()
    dup = [vid for vid, n in Counter(ids).items() if n > 1]
    if dup:
        raise InputError(f"{path}: duplicate video id {dup[0]!r}")
    return table
